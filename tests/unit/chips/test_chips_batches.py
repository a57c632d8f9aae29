"""A STAC item list indexed in batches (one GeoParquet per batch) merges into the same partitioned
index as the per-item indexes, file for file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from chips_data import CHIP, convert_tile

from eolab.chips.batches import batch_count, batch_of, index_batch, read_item_list
from eolab.chips.index import load_items
from eolab.chips.merge import merge_indexes
from eolab.cli import main
from eolab.core.errors import InputError


@pytest.fixture(scope="module")
def tiles(tmp_path_factory, s2_products, s2_products_south):
    root = tmp_path_factory.mktemp("chips-batches")
    north = convert_tile(root / "north", s2_products, "35VLH", zarr=False)
    south = convert_tile(root / "south", s2_products_south, "51CVP", zarr=False)
    return north, south


@pytest.fixture(scope="module")
def item_list(tiles, tmp_path_factory) -> Path:
    """The 6 item JSONs of both tiles, one per line: relative, absolute, with a comment."""
    folder = tmp_path_factory.mktemp("list")
    items = [i for t in tiles for i in load_items([t.collection])]
    hrefs = [Path(i.get_self_href()) for i in items]
    lines = ["# six items of two tiles", ""]
    lines += [str(h) if n % 2 else str(Path("..") / h.relative_to(folder.parent)) for n, h in
              enumerate(hrefs)]  # fmt: skip
    path = folder / "items.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_list_batches_cover_every_item_once(item_list):
    paths = read_item_list(item_list)
    assert len(paths) == 6 and all(p.is_file() for p in paths)
    assert [batch_count(n, 4) for n in (0, 1, 4, 5, 6, 10_000)] == [1, 1, 1, 2, 2, 2500]
    assert batch_count(10_000, 500) == 20
    batches = [batch_of(paths, b, 4) for b in range(batch_count(len(paths), 4))]
    assert [len(b) for b in batches] == [4, 2] and sum(batches, []) == paths
    with pytest.raises(InputError, match="batch 2 out of range: the list has 2 batches"):
        batch_of(paths, 2, 4)


def test_merged_batches_equal_the_merged_per_item_index(tiles, item_list, tmp_path):
    batch_files = []
    for batch in range(2):
        out = tmp_path / "batches" / f"{batch:04d}.parquet"
        rows = index_batch(item_list, batch, 4, out, chip_size=CHIP)
        assert rows == pq.read_metadata(out).num_rows > 0
        batch_files.append(out)
    batched = merge_indexes(batch_files, tmp_path / "batched")
    per_item = merge_indexes([t.index_dir for t in tiles], tmp_path / "per_item")
    assert batched["items"] == per_item["items"] == 6
    assert batched["chips"] == per_item["chips"] and batched["platforms"] == per_item["platforms"]
    files = sorted(p.relative_to(tmp_path / "per_item") for p in
                   (tmp_path / "per_item").rglob("*.parquet"))  # fmt: skip
    assert files == sorted(
        p.relative_to(tmp_path / "batched") for p in (tmp_path / "batched").rglob("*.parquet")
    )
    for rel in files:
        assert pq.read_table(tmp_path / "batched" / rel).equals(
            pq.read_table(tmp_path / "per_item" / rel)
        ), rel


def test_cli_index_batch_writes_one_file(item_list, tmp_path, capsys):
    out = tmp_path / "0001.parquet"
    args = ["chips", "index-batch", str(item_list), "--batch", "1", "--batch-size", "4"]
    main([*args, "--out", str(out), "--chip-size", str(CHIP)])
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"batch 1: {pq.read_metadata(out).num_rows} chips in {out}"
    assert set(pq.read_table(out, columns=["item_id"]).column("item_id").to_pylist()) == {
        Path(p).stem for p in read_item_list(item_list)[4:]
    }


def test_unreadable_list_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.txt: item list not readable"):
        read_item_list(tmp_path / "missing.txt")
