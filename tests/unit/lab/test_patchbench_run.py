"""The patch-load benchmark end to end on a tiny generated tile-year (2 dates, 60/30/10 px):
result JSON shape, ratios from the measured means, the registry's object counts, identical
pixels across formats, and a format that returns other pixels stopping the run."""

import json
import shutil

import jsonschema
import numpy as np
import pytest

from eolab.core.disk import mount_of
from eolab.lab import formats
from eolab.lab.patchbench import RESULT_SCHEMA, MismatchError, format_report, run
from eolab.lab.staging import dataset

TILE, YEAR = "35VLH", 2024
DATES = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """safe, cog, zarr and zarr-zip datasets of one tiny tile-year, made by eolab's own code."""
    from eolab.fixtures.sentinel2 import generate_tile_year
    from eolab.sentinel2 import cog, datacube
    from eolab.sentinel2.products import product_paths
    from eolab.zarrio import zipzarr

    root = tmp_path_factory.mktemp("tiny-lab")
    manifest = root / f"{TILE}_{YEAR}.json"
    generate_tile_year(
        root / "safe", tile=TILE, year=YEAR, dates=DATES, scale=183, seed=3, manifest=manifest
    )
    paths = product_paths(manifest)
    listing = root / "cog" / f"{TILE}_{YEAR}.json"
    cog.products_to_cog(paths, root / "cog" / TILE, listing=listing, progress=False)
    store = root / "zarr" / f"{TILE}_{YEAR}.zarr"
    datacube.to_zarr(store, paths, progress=False)
    zipped = root / "zarr-zip" / f"{TILE}_{YEAR}.zarr.zip"
    zipzarr.zip_store(store, zipped)
    entries = {"safe": manifest, "cog": listing, "zarr": store, "zarr-zip": zipped}
    return {fmt: dataset(fmt, entry) for fmt, entry in entries.items()}


def _run(datasets, tmp_path, **kw):
    options = dict(
        storages=("network", "temp"),
        repeats=2,
        seed=5,
        temp_root=tmp_path / "temp",
        workers=2,
        drop_caches=False,
        echo=lambda _: None,
    )
    return run(datasets, TILE, YEAR, **{**options, **kw})


def test_run_writes_the_result_document_with_ratios_and_counts(tiny, tmp_path):
    (tmp_path / "temp").mkdir()
    doc = _run(tiny, tmp_path)
    jsonschema.validate(json.loads(json.dumps(doc)), RESULT_SCHEMA)
    assert set(doc["results"]) == {"network", "temp"}
    assert doc["storage_devices"]["temp"] == mount_of(tmp_path / "temp")
    measured = {*tiny, formats.BASELINE}
    for storage, per_format in doc["results"].items():
        assert set(per_format) == measured, storage
        for fmt, entry in per_format.items():
            assert len(entry["durations"]) == 2 and all(d > 0 for d in entry["durations"])
            assert entry["mean_durations"] == pytest.approx(np.mean(entry["durations"]))
            assert entry["band_group_shapes"]["10m"][:2] == [DATES, 4], (storage, fmt)
            assert entry["band_group_shapes"]["60m"][:2] == [DATES, 3], (storage, fmt)
    assert doc["dates"] == DATES and doc["repeats"] == 2 and len(doc["patches"]) == 3
    # ratios are the measured means' quotients
    for storage, per_format in doc["results"].items():
        mean = {f: v["mean_durations"] for f, v in per_format.items()}
        ratios = doc["ratios"][storage]
        assert ratios["zip_vs_zarr_time_ratio"] == pytest.approx(mean["zarr-zip"] / mean["zarr"])
        assert ratios["zarr_vs_xarray_speedup"] == pytest.approx(
            mean[formats.BASELINE] / mean["zarr"]
        )
        assert ratios["sharded_vs_zarr_time_ratio"] is None  # no sharded store measured
    assert doc["ratios"]["zarr_vs_zip_object_ratio"] == doc["objects"]["zarr"]
    # object counts: every file; data objects as the registry defines them
    assert doc["objects"] == {fmt: len(ds.files) for fmt, ds in tiny.items()}
    assert doc["data_objects"]["cog"] == 3 * DATES
    assert doc["data_objects"]["safe"] == (13 + 1) * DATES  # 13 bands + the TCI preview
    assert doc["data_objects"]["zarr-zip"] == 1
    assert 0 < doc["data_objects"]["zarr"] < doc["objects"]["zarr"]
    assert doc["staging"]["copy_temp:zarr"]["objects"] == doc["objects"]["zarr"]
    assert not list((tmp_path / "temp").iterdir())  # the temp copies are gone
    # amplification: returned = the arrays' bytes; decoded from chunk geometry (Zarr formats)
    for storage, per_format in doc["results"].items():
        for fmt, entry in per_format.items():
            shapes = entry["band_group_shapes"].values()
            assert entry["bytes_returned"] == sum(2 * np.prod(s) for s in shapes), (storage, fmt)
            if fmt in ("safe", "cog"):
                assert entry["bytes_decoded"] is None and entry["decode_bound_s"] is None
                continue
            assert entry["bytes_decoded"] >= entry["bytes_returned"]
            assert entry["amplification"] == pytest.approx(
                entry["bytes_decoded"] / entry["bytes_returned"]
            )
            assert entry["decode_bound_s"] > 0
    zarr_entry = doc["results"]["network"]["zarr"]
    assert doc["results"]["network"]["zarr-zip"]["bytes_decoded"] == zarr_entry["bytes_decoded"]
    report = format_report(doc)
    assert f"patch-load {TILE} {YEAR}: {DATES} dates, 2 repeats" in report
    assert "decode bound" in report
    again = _run({"zarr": tiny["zarr"]}, tmp_path, storages=("network",), baseline=False)
    assert again["patches"] == doc["patches"]  # same seed, same tile: same patches


def test_a_format_with_other_pixels_stops_the_run(tiny, tmp_path):
    import zarr

    from eolab.zarrio import zipzarr

    bad_store = tmp_path / "bad" / tiny["zarr"].entry
    shutil.copytree(tiny["zarr"].entry_path, bad_store)
    data = zarr.open_array(str(bad_store / TILE / str(YEAR) / "60m" / "data"), mode="r+")
    first = data[0]
    data[0] = first + 1  # every 60 m pixel of the first date, so any patch sees it
    bad_zip = tmp_path / "bad" / tiny["zarr-zip"].entry
    zipzarr.zip_store(bad_store, bad_zip)
    datasets = {"zarr": tiny["zarr"], "zarr-zip": dataset("zarr-zip", bad_zip)}
    with pytest.raises(MismatchError, match=r"group 60m differs from .* in \d+ pixels"):
        _run(datasets, tmp_path, storages=("network",), baseline=False, repeats=1)


def test_run_draws_the_patches_inside_the_region(tiny, tmp_path):
    from eolab.core.errors import ConfigError
    from eolab.lab.region import Region

    one = {"zarr": tiny["zarr"]}
    options = dict(storages=("network",), baseline=False, repeats=8)
    whole = _run(one, tmp_path, **options)
    left, top, right, bottom = whole["region"]  # default: the whole tile
    assert (right - left, top - bottom) == (600, 600)
    region = Region(left + 60, top - 60, left + 420, top - 420)
    doc = _run(one, tmp_path, region=region, **options)
    jsonschema.validate(json.loads(json.dumps(doc)), RESULT_SCHEMA)
    assert doc["region"] == [left + 60, top - 60, left + 420, top - 420]
    for x_min, y_max, size in doc["patches"]:
        assert size == 300
        assert left + 60 <= x_min and x_min + size <= left + 420
        assert y_max <= top - 60 and y_max - size >= top - 420
    with pytest.raises(ConfigError, match=r"is not inside the tile \(x "):
        _run(one, tmp_path, region=Region(x1=left - 60), **options)
