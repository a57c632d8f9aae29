"""The S3 object plan: counts per format checked against real converted stores and folders, the
layouts' buckets and prefixes, the quota line, and the years of a config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from eolab.core.config_checks import value_problems
from eolab.lab import bucketplan
from eolab.lab.formats import entry_files
from eolab.sentinel2 import datacube
from eolab.sentinel2.cog import CogOptions, products_to_cog
from eolab.sentinel2.products import product_paths

ROOT = Path(__file__).resolve().parents[3]
FIXTURE_SCALE = 61  # the s2_products fixture: 3 dates at 180/90/30 px
DATES = 3
# Small blocks so 3 dates cover several time and spatial blocks of every group.
CHUNKS = {"10m": (2, 64, 64), "20m": (2, 32, 32), "60m": (2, 16, 16)}
SHARDS = {"10m": (2, 128, 128), "20m": (2, 64, 64), "60m": (2, 32, 32)}


def defaults() -> dict:
    """The embedded config with every schema default filled in (as the Snakefile sees it)."""
    import jsonschema

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    _fill(config, schema)
    jsonschema.validate(config, schema)
    return config


def _fill(config: dict, schema: dict) -> None:
    for key, sub in (schema.get("properties") or {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict) and sub.get("properties"):
            _fill(config[key], sub)


@pytest.mark.parametrize("kind", ["zarr", "zarr-sharded"])
def test_zarr_count_equals_the_objects_of_a_real_store(tmp_path, s2_products, kind):
    spec = datacube.CubeSpec(chunks=CHUNKS, shards=SHARDS if kind == "zarr-sharded" else None)
    store = tmp_path / "35VLH_2024.zarr"
    datacube.to_zarr(store, product_paths(s2_products), spec, progress=False)
    objects = entry_files(kind, store)
    # Every product of the fixture has one baseline (label code 0 = the fill value): Zarr writes
    # no processing_baseline chunk in any of the 3 groups, the plan counts one per group.
    assert not [o for o in objects if "/processing_baseline/c/" in o]
    blocks = SHARDS if kind == "zarr-sharded" else CHUNKS
    assert bucketplan.zarr_objects(DATES, FIXTURE_SCALE, blocks) == len(objects) + 3
    assert (
        bucketplan.format_objects(kind, DATES, FIXTURE_SCALE, {"chunks": CHUNKS, "shards": SHARDS})
        == len(objects) + 3
    )


def test_cog_and_safe_counts_equal_the_files_staged(tmp_path, s2_products):
    listing = tmp_path / "cog" / "35VLH_2024.json"
    products_to_cog(
        product_paths(s2_products),
        tmp_path / "cog" / "35VLH" / "2024",
        CogOptions(blocksize=64),
        listing=listing,
        progress=False,
        tile="35VLH",
        year=2024,
    )
    assert bucketplan.format_objects("cog", DATES, FIXTURE_SCALE, {}) == len(
        entry_files("cog", listing)
    )
    assert bucketplan.format_objects("safe", DATES, FIXTURE_SCALE, {}) == len(
        entry_files("safe", s2_products)
    )
    assert bucketplan.format_objects("zarr-zip", DATES, FIXTURE_SCALE, {}) == 1


def test_full_size_tile_year_of_the_puhti_config():
    """190 dates of a full tile, the default chunks: 10 x 22 x 22 + 5 x 22 x 22 + 3 x 15 x 15
    data chunks (10m, 20m, 60m) plus metadata; the shards of config/puhti-35VLH-2024.yaml."""
    chunks = {"10m": (20, 512, 512), "20m": (40, 256, 256), "60m": (80, 128, 128)}
    shards = {"10m": (40, 4096, 4096), "20m": (80, 2048, 2048), "60m": (160, 1024, 1024)}
    data = 10 * 22 * 22 + 5 * 22 * 22 + 3 * 15 * 15
    meta = bucketplan.zarr_objects(190, 1, chunks) - data
    assert data == 7935  # the figure the puhti config's comment gives
    assert 0 < meta < 100
    assert bucketplan.zarr_objects(190, 1, shards) == meta + 5 * 3 * 3 + 3 * 3 * 3 + 2 * 2 * 2


@pytest.mark.parametrize(
    "layout, expected",
    [
        ("shared", ("eolab-lab", "lab")),
        ("tile-prefix", ("eolab-lab", "lab/35VLH")),
        ("tile-bucket", ("eolab-lab-35vlh", "lab")),
    ],
)
def test_tile_location_per_layout(layout, expected):
    s3 = {"bucket": "eolab-lab", "prefix": "/lab/", "layout": layout}
    assert bucketplan.tile_location(s3, "35VLH") == expected


def test_years_list_range_and_single_year():
    assert bucketplan.sentinel2_years({"year": 2024}) == [2024]
    assert bucketplan.sentinel2_years({"year": 2024, "years": [2024, 2020, 2024]}) == [2020, 2024]
    assert bucketplan.sentinel2_years({"year": 2024, "years": {"start": 2015, "end": 2024}}) == [
        *range(2015, 2025)
    ]
    assert bucketplan.years_problems({"years": {"start": 2024, "end": 2020}}) == [
        "config sentinel2.years: start 2024 is after end 2020"
        " (the range is inclusive: start <= end)"
    ]


def finland(layout: str) -> dict:
    """77 real-size tiles x 10 years, every lab format staged to S3."""
    config = defaults()
    # Zone 35's column letters J..R x row letters: 77 valid MGRS tile ids.
    tiles = [f"35V{c}{r}" for c in "JKLMNPQR" for r in "ABCDEFGHJKLMN"][:77]
    config["sentinel2"].update(source="cdse", tiles=tiles)
    config["sentinel2"]["years"] = {"start": 2015, "end": 2024}
    config["benchmark"]["patch_load"]["tiles"] = None
    config["storage"]["s3"]["layout"] = layout
    return config


def test_objects_per_bucket_add_up_per_layout():
    config = finland("tile-bucket")
    zarr = config["sentinel2_convert"]["zarr"]
    per_year = sum(
        bucketplan.format_objects(f, 190, 1, zarr)
        for f in config["benchmark"]["patch_load"]["formats"]
    )
    per_tile = bucketplan.objects_per_bucket(config)
    assert len(per_tile) == 77 and set(per_tile.values()) == {10 * per_year}
    assert "eolab-lab-35vja" in per_tile
    for layout in ("shared", "tile-prefix"):
        assert bucketplan.objects_per_bucket(finland(layout)) == {"eolab-lab": 77 * 10 * per_year}


def test_quota_is_one_line_naming_the_bucket_and_the_way_out():
    shared = finland("shared")
    (line,) = value_problems(shared)
    n = bucketplan.objects_per_bucket(shared)["eolab-lab"]
    assert line == (
        f"config storage.s3: bucket eolab-lab would hold {n} objects, over"
        " storage.s3.max_objects_per_bucket 500000 (layout shared):"
        " use storage.s3.layout: tile-bucket (one bucket per tile)"
    )
    # One bucket per tile holds 10 years of one tile: within Allas' quota.
    assert value_problems(finland("tile-bucket")) == []
    tight = finland("tile-bucket")
    tight["storage"]["s3"]["max_objects_per_bucket"] = 1000
    (line,) = value_problems(tight)
    assert "(and 76 more buckets)" in line and "over storage.s3.max_objects_per_bucket 1000" in line
    tight["storage"]["s3"]["max_objects_per_bucket"] = None
    assert value_problems(tight) == []


def test_the_embedded_demo_plans_within_the_quota():
    config = defaults()
    assert value_problems(config) == []
    assert list(bucketplan.objects_per_bucket(config)) == ["eolab-lab"]


def test_a_per_tile_bucket_name_over_63_characters_is_one_line():
    config = finland("tile-bucket")
    config["storage"]["s3"]["bucket"] = "b" * 58  # + "-35vja": 64 characters
    (line,) = value_problems(config)
    assert line.startswith(f"config storage.s3.bucket: {'b' * 58}-") and "is 64 characters" in line
    config["storage"]["s3"]["bucket"] = "b" * 57
    assert value_problems(config) == []
