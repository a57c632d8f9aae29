"""kill -9 (SIGKILL of the whole process group) at seeded random points of ``eolab sentinel2
to-zarr`` (new store and append) and ``to-cog``, then a rerun: the result must equal a clean run
(pixels, times, labels, attributes), with no temporary left behind."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import rasterio
from fault_util import EOLAB, cube_contents, run, run_killed, same_contents, timed

from eolab.sentinel2 import datacube
from eolab.sentinel2.products import product_paths

SMALL = "10m:2x64x64,20m:2x32x32,60m:2x16x16"
KILLS = 5


def to_zarr(safes: list[Path], store: Path) -> list[str]:
    paths = [str(p) for p in safes]
    return [*EOLAB, "sentinel2", "to-zarr", *paths, "--store", str(store), "--chunks", SMALL,
            "--workers", "1", "--quiet"]  # fmt: skip


def to_cog(safes: list[Path], out: Path) -> list[str]:
    paths = [str(p) for p in safes]
    return [*EOLAB, "sentinel2", "to-cog", *paths, str(out / "cogs"), "--listing",
            str(out / "list.json"), "--blocksize", "16", "--workers", "1", "--quiet"]  # fmt: skip


def delays(seed: int, wall: float, n: int = KILLS) -> list[float]:
    """Kill delays over the second half of a clean run's wall time (the first half is mostly
    interpreter start and imports)."""
    return sorted(np.random.default_rng(seed).uniform(0.45, 1.0, n) * wall)


def recover_and_compare(cmd: list[str], store: Path, want: dict, tally) -> None:
    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    assert datacube.unfinished(store) == ""
    assert not datacube.staging_dir(store).exists(), "staging files left behind"
    assert not list(store.rglob("*.partial")), "temporary files of atomic writes left behind"
    with warnings.catch_warnings():  # zarr warns on litter in a group (the rerun may, not after)
        warnings.filterwarnings("error", message=".*not recognized as a component")
        same = same_contents(cube_contents(store), want)
    tally["recovered"] += same
    tally["lost"] += not same
    assert same, f"{store}: differs from a clean run after kill -9 and rerun"


def test_kill_9_while_creating_a_store_then_rerun_equals_a_clean_run(tmp_path, s2_manifest, tally):
    safes = product_paths(s2_manifest)
    clean = tmp_path / "clean.zarr"
    wall = timed(to_zarr(safes, clean))
    want = cube_contents(clean)
    killed = 0
    # three kill points while the groups are created (a few ms after the first group's
    # metadata appears), the others anywhere in the second half of the run
    rng = np.random.default_rng(101)
    points = [(d, "35VLH/2024/10m/zarr.json") for d in rng.uniform(0, 0.02, 3)]
    points += [(d, None) for d in delays(102, wall, 3)]
    for k, (delay, after) in enumerate(points):
        store = tmp_path / f"k{k}.zarr"
        if not run_killed(to_zarr(safes, store), delay, after and store / after):
            continue
        killed += 1
        tally["kills"] += 1
        recover_and_compare(to_zarr(safes, store), store, want, tally)
    assert killed, "no kill landed while the run was going"


def test_kill_9_while_appending_an_earlier_date_then_rerun_equals_a_clean_run(
    tmp_path, s2_manifest, tally
):
    """The base store holds dates 1 and 3; appending date 2 restages the stored block."""
    safes = product_paths(s2_manifest)
    clean = tmp_path / "clean.zarr"
    assert run(to_zarr(safes, clean)).returncode == 0
    want = cube_contents(clean)
    base = tmp_path / "base.zarr"
    assert run(to_zarr([safes[0], safes[2]], base)).returncode == 0
    wall = timed(to_zarr(safes, Path(shutil.copytree(base, tmp_path / "timing.zarr"))))
    killed = 0
    # two kill points while stored dates are moved to staging, three anywhere later
    points = [(d, True) for d in np.random.default_rng(201).uniform(0, 0.05, 2)]
    points += [(d, False) for d in delays(202, wall, 3)]
    for k, (delay, restaging) in enumerate(points):
        store = Path(shutil.copytree(base, tmp_path / f"k{k}.zarr"))
        after = datacube.staging_dir(store) if restaging else None
        if not run_killed(to_zarr(safes, store), delay, after):
            continue
        killed += 1
        tally["kills"] += 1
        recover_and_compare(to_zarr(safes, store), store, want, tally)
    assert killed, "no kill landed while the run was going"


def cog_contents(out: Path) -> dict:
    """Pixels, georeferencing, band metadata of every COG, the product.json files, the listing."""
    got = {"listing": (out / "list.json").read_text()}
    for tif in sorted((out / "cogs").rglob("*.tif")):
        with rasterio.open(tif) as src:
            rel = tif.relative_to(out).as_posix()
            got[rel] = src.read()
            got[rel + "@meta"] = json.dumps(
                [src.crs.to_wkt(), list(src.transform), src.descriptions, src.scales,
                 src.offsets, [src.tags(i + 1) for i in range(src.count)], src.overviews(1)],
                default=str,
            )  # fmt: skip
    for doc in sorted((out / "cogs").rglob("product.json")):
        got[doc.relative_to(out).as_posix()] = doc.read_text()
    return got


def test_kill_9_during_to_cog_then_rerun_equals_a_clean_run_and_leaves_no_temp(
    tmp_path, s2_manifest, tally
):
    safes = product_paths(s2_manifest)
    clean = tmp_path / "clean"
    wall = timed(to_cog(safes, clean))
    want = cog_contents(clean)
    killed = 0
    for k, delay in enumerate(delays(303, wall, 4)):
        out = tmp_path / f"k{k}"
        if not run_killed(to_cog(safes, out), delay):
            continue
        killed += 1
        tally["kills"] += 1
        rerun = run(to_cog(safes, out))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert not list((out / "cogs").glob(".*.tmp")), "a killed run's temporary folder is left"
        same = same_contents(cog_contents(out), want)
        tally["recovered"] += same
        tally["lost"] += not same
        assert same, f"{out}: differs from a clean run after kill -9 and rerun"
    assert killed, "no kill landed while the run was going"
