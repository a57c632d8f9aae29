"""kill -9 at random points of a streaming-deletion run, then a rerun: nothing is ever lost.

The CLI runs in its own process group (main process, fork server, workers) and the whole
group gets SIGKILL, as when a node or a job is killed. Kill points are random: after a random
number of journaled patches plus a random delay of up to 60 ms, so they land while outputs are
written, while the journal is appended, while sources are deleted, and while stores are built.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from eolab.benv2.convert import TilesOptions, convert, npz_relpath
from eolab.benv2.names import (
    ALL_BANDS,
    SNOW_CLOUD_METADATA,
    npz_key,
    refmap_path,
    s1_band_path,
    s2_band_path,
)
from eolab.benv2.writers import read_npz
from eolab.fixtures.benv2 import generate

N_PATCHES = 24


def _sources(root: Path, row) -> list[Path]:
    files = [s2_band_path(root / "BigEarthNet-S2", row.patch_id, b) for b in ALL_BANDS[:12]]
    files += [s1_band_path(root / "BigEarthNet-S1", row.s1_name, p) for p in ("VV", "VH")]
    return files + [refmap_path(root / "Reference_Maps", row.patch_id)]


def _verified(journal: Path) -> int:
    try:
        return journal.read_text().count('"kind":"verified"')
    except FileNotFoundError:
        return 0


def _same_as_reference(path: Path, ref: Path) -> bool:
    got, want = read_npz(path), read_npz(ref)
    return got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def _check_nothing_lost(src: Path, out: Path, ref: Path, meta) -> tuple[int, int]:
    """Every patch either has all its sources or a complete output equal to the reference.

    Returns (complete outputs, patches with sources deleted)."""
    complete = deleted = 0
    for row in meta.itertuples():
        rel = npz_relpath(row.split, row.patch_id)
        missing = [f for f in _sources(src, row) if not f.exists()]
        if missing:
            deleted += 1
            assert (out / rel).is_file(), f"{row.patch_id}: sources deleted, output missing"
            assert _same_as_reference(out / rel, ref / rel), f"{row.patch_id}: output differs"
        if (out / rel).is_file():  # any file under its final name is complete (atomic rename)
            assert _same_as_reference(out / rel, ref / rel), f"{row.patch_id}: torn output"
            complete += 1
    return complete, deleted


def test_kill_9_anywhere_then_rerun_loses_nothing(tmp_path):
    pristine = tmp_path / "pristine"
    generate(pristine, patches=N_PATCHES, seed=11)
    meta = pq.read_table(pristine / "metadata.parquet").to_pandas()
    ref = tmp_path / "reference"
    common = dict(workers=2, progress=False, store=False)
    convert(TilesOptions.for_root(pristine, ref, **common))
    src = Path(shutil.copytree(pristine, tmp_path / "src"))
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "eolab", "benv2", "tiles", "--root", str(src), "--out_dir", str(out),
        "--delete-sources", "--no-progress", "--workers", "2", "--shard_patches", "8",
        "--batch", "1", "--commit_every", "3",
    ]  # fmt: skip
    rng = np.random.default_rng(2024)
    states = []
    for attempt in range(4):
        # kill after a few more patches are journaled; the last time once all are (the last
        # deletions or the store build)
        done = _verified(out / "journal.jsonl")
        after = N_PATCHES if attempt == 3 else min(N_PATCHES, done + int(rng.integers(1, 9)))
        proc = subprocess.Popen(
            cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _verified(out / "journal.jsonl") >= after:
                break
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0, 0.06)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        states.append(_check_nothing_lost(src, out, ref, meta))
    print("kill states (complete outputs, patches with deleted sources):", states)
    assert any(0 < deleted < N_PATCHES for _, deleted in states), f"no mid-run kill: {states}"

    final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert _check_nothing_lost(src, out, ref, meta) == (N_PATCHES, N_PATCHES)
    # every selected source is deleted in the end; the snow/cloud patches were not selected
    snow = pq.read_table(pristine / SNOW_CLOUD_METADATA).to_pandas()
    left = sorted(str(p) for p in src.rglob("*.tif"))
    assert left == sorted(str(f) for row in snow.itertuples() for f in _sources(src, row))
    assert not list(out.rglob("*.tmp")), "no temporary file is left"
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["done"] == N_PATCHES
    from eolab.benv2.store import PatchStore

    for split, group in meta.groupby("split"):
        with PatchStore(out / "zarr" / f"{split}.zarr") as store:
            assert len(store) == len(group)
            first = sorted(group.patch_id)[0]
            want = read_npz(ref / npz_relpath(split, first))
            assert np.array_equal(store.read(0), np.stack([want[npz_key(b)] for b in ALL_BANDS]))
