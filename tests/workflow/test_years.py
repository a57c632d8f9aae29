"""Ranges of years, the S3 object quota and batched chip indexing, planned by `snakemake -n`:
every stage runs per tile-year, a 77-tile x 10-year config plans in one go, a bucket over the
quota stops the plan with one line, and an item list becomes ceil(n / b) index jobs + 1 merge
under the Slurm profile."""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from workflow_util import BIN, ROOT, make_workflow_copy

from eolab.lab import bucketplan

pytestmark = pytest.mark.workflow

#: Rules that run once per tile-year of sentinel2.tiles x years (source cdse).
PER_TILE_YEAR = ("intake_cdse", "safe_to_cog", "safe_to_zarr", "safe_to_zarr_sharded",
                 "zip_zarr", "chips_items", "chips_index", "report_sentinel2")  # fmt: skip
#: Rules that run once per lab tile-year (benchmark.patch_load.tiles), and once per format.
PER_LAB_TILE_YEAR = ("stage_zip_temp", "stage_unzip_temp", "stage_unzip_s3",
                     "benchmark_patch_load", "plot_file_sizes", "plot_patch_load")  # fmt: skip
PER_LAB_FORMAT = ("stage_copy_temp", "stage_upload_s3", "stage_download_s3")
ONCE = ("fixtures_benv2", "benv2_tiles", "chips_catalog", "chips_merge", "chips_prechip",
        "report_benv2", "report_chips", "report_provenance", "report_intake", "all")  # fmt: skip


def finland_tiles(n: int = 77) -> list[str]:
    """``n`` MGRS tiles over Finland's bounding box (59.9-70 N, 20.5-31.5 E): the 100 km
    squares of a 0.5 degree grid of points, named from their UTM zone, latitude band and
    easting/northing letters (eolab.sentinel2.mgrs)."""
    from pyproj import Transformer

    from eolab.sentinel2.mgrs import COLUMN_SETS, LAT_BANDS, ROW_LETTERS, tile_grid

    tiles: set[str] = set()
    for lat in (60 + i / 2 for i in range(20)):
        for lon in (20.5 + i / 2 for i in range(22)):
            zone = int((lon + 180) // 6) + 1
            to_utm = Transformer.from_crs(4326, 32600 + zone, always_xy=True)
            east, north = to_utm.transform(lon, lat)
            column = COLUMN_SETS[zone % 3][int(east // 100_000) - 1]
            row = ROW_LETTERS[(int(north // 100_000) + (0 if zone % 2 else 5)) % 20]
            tile = f"{zone:02d}{LAT_BANDS[int((lat + 80) // 8)]}{column}{row}"
            grid = tile_grid(tile)  # the tile's own georeferencing holds the point
            assert grid.ulx <= east <= grid.ulx + 109_800 and north <= grid.uly, tile
            tiles.add(tile)
    assert len(tiles) >= n and "35VLH" in tiles
    return sorted(tiles)[:n]


def finland_config(layout: str) -> dict:
    return {
        "results": "results/finland",
        "sentinel2": {
            "source": "cdse",
            "tiles": finland_tiles(),
            "years": {"start": 2015, "end": 2024},
        },
        "storage": {"s3": {"layout": layout}},
    }


def job_stats(proc) -> dict[str, int]:
    out = proc.stdout + proc.stderr
    assert "Job stats:" in out, out[-3000:]
    table = out.split("Job stats:")[1].split("Reasons:")[0]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if k != "total"}


def dry_run(tmp_path: Path, config: dict, *args: str, quiet: bool = True, env=None):
    """`snakemake -n` of ``config`` over config/config.yaml in a workflow copy (``quiet``: the
    job stats only; ``env``: the environment, e.g. with CSC_PROJECT for the Slurm profile)."""
    workdir = make_workflow_copy(tmp_path / "wf")
    (workdir / "years.yaml").write_text(yaml.safe_dump(config))
    flags = ["-n", *(["--quiet", "rules"] if quiet else []), "--configfile", "years.yaml"]
    env = dict(env or os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(BIN / "snakemake"), *flags, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_list_and_a_range_of_years_plan_every_stage_per_tile_year(tmp_path):
    one = dry_run(tmp_path / "one", {"sentinel2": {"tiles": ["35VLH"], "year": 2024}})
    listed = dry_run(
        tmp_path / "list", {"sentinel2": {"tiles": ["35VLH"], "years": [2024, 2023]}}, quiet=False
    )
    ranged = dry_run(
        tmp_path / "range",
        {"sentinel2": {"tiles": ["35VLH"], "years": {"start": 2023, "end": 2024}}},
    )
    for proc in (one, listed, ranged):
        assert proc.returncode == 0, proc.stderr[-3000:]
    single, two = job_stats(one), job_stats(listed)
    assert job_stats(ranged) == two
    once = set(ONCE)
    assert set(single) == set(two)
    for rule, count in single.items():
        assert two[rule] == (count if rule in once else 2 * count), rule
    # Both years' outputs are planned, each under its own tile-year name.
    out = listed.stdout + listed.stderr
    for year in (2023, 2024):
        assert f"results/sentinel2/zarr/35VLH_{year}.zarr.summary.json" in out
        assert f"results/stage/unzip_s3/35VLH_{year}.json" in out


def test_77_tiles_by_10_years_dry_run_plans_every_tile_year(tmp_path):
    config = finland_config("tile-bucket")
    start = time.monotonic()
    proc = dry_run(tmp_path, config)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = job_stats(proc)
    tile_years, lab_tile_years = 77 * 10, 1 * 10  # benchmark.patch_load.tiles: [35VLH]
    formats = 5
    expected = {rule: tile_years for rule in PER_TILE_YEAR}
    expected |= {rule: lab_tile_years for rule in PER_LAB_TILE_YEAR}
    expected |= {rule: formats * lab_tile_years for rule in PER_LAB_FORMAT}
    expected |= {rule: 1 for rule in ONCE}
    assert stats == expected
    total = sum(expected.values())
    print(f"77 tiles x 10 years: {total} jobs planned in {seconds:.1f} s")
    assert total == 6380  # 5606 before the report's sections (770 + 4 report jobs)


def test_a_bucket_over_the_object_quota_stops_the_plan_with_one_line(tmp_path):
    config = finland_config("shared")
    config["benchmark"] = {"patch_load": {"tiles": None}}  # every tile staged to S3
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    # The count the plan gives: 77 tiles x 10 years x the five formats' objects, one bucket.
    filled = _with_defaults(config)
    n = bucketplan.objects_per_bucket(filled)["eolab-lab"]
    per_tile_year = sum(
        bucketplan.format_objects(f, 190, 1, filled["sentinel2_convert"]["zarr"])
        for f in ("safe", "cog", "zarr", "zarr-sharded", "zarr-zip")
    )
    assert n == 77 * 10 * per_tile_year > 500_000
    assert lines[0] == (
        f"eolab: error: config storage.s3: bucket eolab-lab would hold {n} objects, over"
        " storage.s3.max_objects_per_bucket 500000 (layout shared):"
        " use storage.s3.layout: tile-bucket (one bucket per tile)"
    )
    assert "Job stats" not in proc.stdout + proc.stderr


def _with_defaults(override: dict) -> dict:
    """config/config.yaml + ``override`` + the schema defaults, as the Snakefile sees them."""
    from snakemake.utils import update_config, validate

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, copy.deepcopy(override))
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


@pytest.mark.parametrize("profile", ["slurm", "local"])
def test_an_item_list_plans_ceil_n_over_b_index_jobs_and_one_merge(tmp_path, profile):
    items, batch_size = 23, 5
    workdir_items = tmp_path / "lists"
    workdir_items.mkdir()
    listing = workdir_items / "many.txt"
    listing.write_text("".join(f"items/item_{i:03d}.json\n" for i in range(items)))
    config = {"chips": {"item_lists": {"many": str(listing)}, "index_batch_size": batch_size}}
    target = "results/chips/index_lists/many"
    env = dict(os.environ, CSC_PROJECT="project_2001234")
    proc = dry_run(
        tmp_path, config, "--profile", f"profiles/{profile}", target, quiet=False, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    batches = math.ceil(items / batch_size)
    assert job_stats(proc) == {"chips_index_batch": batches, "chips_merge_batches": 1}
    out = proc.stdout + proc.stderr
    for b in range(batches):
        assert f"results/chips/index_batches/many/{b:04d}.parquet" in out
    if profile == "slurm":
        # The batches are Slurm jobs with the profile's resources; the merge is a local rule.
        blocks = dict(re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S))
        assert "slurm_partition=small" in blocks["chips_index_batch"]
        assert "runtime=240" in blocks["chips_index_batch"]
        local = re.search(
            r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.M
        )
        assert "    chips_merge_batches,\n" in local.group(1)
        assert "chips_index_batch" not in local.group(1)
