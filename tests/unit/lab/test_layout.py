"""The layout sweep: names, matched chunks, shard sizing, geometry figures against hand counts,
and a sweep on a generated tile-year whose every layout returns the SAFE products' pixels."""

import json

import numpy as np
import pytest

from eolab.core.errors import ConfigError
from eolab.lab import layout
from eolab.lab.patchload import GROUPS, SafeLoader, ZarrLoader
from eolab.lab.staging import dataset
from eolab.zarrio.shardview import base_store

TILE, YEAR, DATES = "35VLH", 2024, 3


def test_names_parse_and_bad_names_fail():
    lay = layout.parse_layout("year-120-zstd3-sharded")
    assert (lay.time, lay.px, lay.codec, lay.sharded) == ("year", 120, "zstd3", True)
    assert layout.parse_layout("reference").chunks(6) == {
        "10m": (20, 512, 512),
        "20m": (40, 256, 256),
        "60m": (80, 128, 128),
    }
    for bad in ("year-128-zstd3", "month-120-zstd3", "year-120-gzip", "ref-0-lz4", "0-120-lz4"):
        with pytest.raises(ConfigError, match="layout"):
            layout.parse_layout(bad)


def test_chunks_cover_the_same_ground_in_every_group():
    chunks = layout.parse_layout("year-120-lz4").chunks(190)
    assert chunks == {"10m": (190, 120, 120), "20m": (190, 60, 60), "60m": (190, 20, 20)}
    assert layout.parse_layout("ref-60-none").chunks(190)["20m"] == (40, 30, 30)
    assert layout.parse_layout("64-120-zstd3").chunks(190)["60m"] == (64, 20, 20)


def test_shards_are_whole_chunks_within_the_budget():
    lay = layout.parse_layout("year-120-zstd3-sharded")
    budget = 4 << 30
    shards = lay.shards(190, budget)
    for g, (t, y, x) in shards.items():
        ct, cy, cx = lay.chunks(190)[g]
        assert t == ct and y % cy == 0 and x % cx == 0
        bands = layout.BANDS[g]
        assert t * bands * y * x * 2 <= budget or y == cy
    # 10 m: 190 x 4 x 120 x 120 x 2 B = 21.9 MB a chunk; 4 GiB holds 196 of them: 14 x 14
    assert shards["10m"] == (190, 1680, 1680)
    assert layout.parse_layout("year-120-zstd3").shards(190) is None


def test_geometry_of_the_reference_equals_hand_counts():
    geo = layout.geometry(layout.parse_layout("reference"), dates=190)
    # chunks per tile-year: 10 m 10 x 22 x 22, 20 m 5 x 22 x 22, 60 m 3 x 15 x 15
    assert geo["data_objects"] == 10 * 22 * 22 + 5 * 22 * 22 + 3 * 15 * 15 == 7935
    # returned per patch: 190 dates x (4 x 510^2 + 6 x 255^2 + 3 x 85^2) x 2 B
    assert geo["bytes_returned"] == 190 * (4 * 510**2 + 6 * 255**2 + 3 * 85**2) * 2
    # a 510 px patch touches 2 x 2 chunks of 512 px unless it starts on a chunk edge (~4x),
    # and 190 dates fill 200 (10 m, 20 m) or 240 (60 m) dates of chunks
    assert 4.0 < geo["amplification"] < 4.5
    six = layout.geometry(layout.parse_layout("reference"), dates=6)
    assert six["amplification"] > 15  # 6 dates in chunks of 20/40/80: issue 19's ~18x
    small = layout.geometry(layout.parse_layout("year-60-zstd3"), dates=190)
    assert small["amplification"] < geo["amplification"]
    sharded = layout.geometry(layout.parse_layout("year-120-zstd3-sharded"), dates=190)
    assert sharded["data_objects"] == 7 * 7 + 5 * 5 + 1  # 1680 / 1320 / 1840 px shards


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    from eolab.fixtures.sentinel2 import generate_tile_year

    root = tmp_path_factory.mktemp("layout-safe")
    manifest = root / f"{TILE}_{YEAR}.json"
    generate_tile_year(
        root / "safe", tile=TILE, year=YEAR, dates=DATES, scale=61, seed=7, manifest=manifest
    )
    return manifest


def test_every_layout_returns_the_pixels_of_the_safe_products(products, tmp_path):
    from eolab.sentinel2.products import product_paths

    names = ["reference", "year-12-zstd3", "ref-24-lz4-sharded", "year-6-none", "year-12-zstd9"]
    doc = layout.sweep(
        product_paths(products),
        TILE,
        YEAR,
        tmp_path / "work",
        names,
        repeats=2,
        seed=3,
        drop_caches=False,
        workers=2,
        keep=True,
        echo=lambda _: None,
    )
    assert json.loads(json.dumps(doc))["layouts"] == names
    assert doc["dates"] == DATES and len(doc["patches"]) == 3
    safe = SafeLoader(dataset("safe", products), "network", workers=2).open()
    try:
        for name in names:
            r = doc["results"][name]
            assert len(r["warm_s"]) == 2 and r["cold_s"] is None
            assert r["amplification"] == pytest.approx(r["bytes_decoded"] / r["bytes_returned"])
            assert r["amplification"] >= 1 and r["decode_bound_s"] > 0
            assert r["bytes_on_disk"] > 0 and r["conversion_s"] > 0
            assert r["converted_from"] == ("safe" if name == names[0] else "store")
            store = tmp_path / "work" / f"{name}.zarr"
            zl = ZarrLoader("zarr", base_store(str(store)), TILE, YEAR, "local").open()
            try:
                for x, y, size in doc["patches"]:
                    from eolab.lab.patchload import Patch

                    patch = Patch(x, y, size)
                    want, got = safe.load(patch), zl.load(patch)
                    for g in GROUPS:
                        np.testing.assert_array_equal(got[g], want[g], err_msg=f"{name} {g}")
            finally:
                zl.close()
    finally:
        safe.close()
    # one shard per group: the sharded layout's shards are larger than the tiny tile
    assert doc["results"]["ref-24-lz4-sharded"]["data_objects"] == 3
    # shards no larger than the tile (180 px at 10 m): a shard index covers every position
    assert doc["results"]["ref-24-lz4-sharded"]["shards"]["10m"] == [20, 192, 192]
    assert doc["results"]["year-12-zstd3"]["chunks"]["60m"] == [DATES, 2, 2]
    # smaller chunks decode less for the same patches
    amp = {n: doc["results"][n]["amplification"] for n in names}
    assert amp["year-6-none"] < amp["reference"]
    assert doc["recommendation"]["layout"] in names
    report = layout.format_report(doc)
    assert report.splitlines()[-1].startswith("recommendation: ")
    assert all(name in report for name in names)
