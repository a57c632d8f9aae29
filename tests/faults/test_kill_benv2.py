"""kill -9 at seeded random points of ``eolab benv2 tiles --delete-sources``, then a rerun: the
outputs equal a clean run's and every selected source is deleted; a second writer on the same
output folder gets the lock line. (tests/unit/benv2/test_benv2_kill.py checks every kill state
in detail; this counts kills for the fault tally.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from fault_util import EOLAB, cube_contents, run, run_killed, same_contents, timed

from eolab.benv2.writers import read_npz
from eolab.fixtures.benv2 import generate

N_PATCHES = 12


def tiles(src: Path, out: Path, delete: bool = True) -> list[str]:
    return [*EOLAB, "benv2", "tiles", "--root", str(src), "--out_dir", str(out),
            "--no-progress", "--workers", "1", "--shard_patches", "4", "--batch", "1",
            "--commit_every", "2"] + (["--delete-sources"] if delete else [])  # fmt: skip


def outputs(out: Path) -> dict:
    got = {}
    for npz in sorted(out.rglob("*.npz")):
        for key, value in read_npz(npz).items():
            got[f"{npz.relative_to(out).as_posix()}:{key}"] = np.asarray(value)
    for store in sorted((out / "zarr").glob("*.zarr")):
        got.update({f"{store.name}/{k}": v for k, v in cube_contents(store).items()})
    return got


def test_kill_9_during_tiles_with_deletion_then_rerun_equals_a_clean_run(tmp_path, tally):
    pristine = tmp_path / "pristine"
    generate(pristine, patches=N_PATCHES, seed=5)
    clean_src = Path(shutil.copytree(pristine, tmp_path / "clean-src"))
    wall = timed(tiles(clean_src, tmp_path / "clean"))
    want = outputs(tmp_path / "clean")
    left_clean = sorted(p.relative_to(clean_src) for p in clean_src.rglob("*.tif"))
    killed = 0
    for k, frac in enumerate(np.random.default_rng(404).uniform(0.45, 1.0, 3)):
        src = Path(shutil.copytree(pristine, tmp_path / f"src{k}"))
        out = tmp_path / f"out{k}"
        if not run_killed(tiles(src, out), frac * wall):
            continue
        killed += 1
        tally["kills"] += 1
        rerun = run(tiles(src, out))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert sorted(p.relative_to(src) for p in src.rglob("*.tif")) == left_clean
        same = same_contents(outputs(out), want)
        tally["recovered"] += same
        tally["lost"] += not same
        assert same, f"{out}: differs from a clean run after kill -9 and rerun"
    assert killed, "no kill landed while the run was going"
