"""Two writers on one output, and a full disk: one clear line, never a traceback or a SIGBUS,
and the output stays finishable into exactly what a clean run gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_util import EOLAB, cube_contents, one_clear_line, run, same_contents
from test_kill_sentinel2 import cog_contents, to_cog, to_zarr

from eolab.core.lock import lock_path_for
from eolab.sentinel2 import datacube
from eolab.sentinel2.products import product_paths


def _wait_for_lock(lock: Path, pid: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while f'"pid": {pid}' not in (lock.read_text() if lock.is_file() else ""):
        assert proc.poll() is None, "the first writer ended before taking its lock"
        assert time.monotonic() < deadline, "the first writer never took its lock"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["to-zarr", "to-cog"])
def test_a_second_writer_gets_one_lock_line_and_the_first_finishes(
    tmp_path, s2_manifest, tally, kind
):
    """The first writer is stopped (SIGSTOP) while it holds the lock, so the second one meets it
    for certain; then it continues and its result equals a clean run."""
    safes = product_paths(s2_manifest)
    if kind == "to-zarr":
        target, clean = tmp_path / "s.zarr", tmp_path / "clean.zarr"
        cmd, clean_cmd = to_zarr(safes, target), to_zarr(safes, clean)
        contents = cube_contents
    else:
        target, clean = tmp_path / "out" / "cogs", tmp_path / "clean"
        cmd, clean_cmd = to_cog(safes, tmp_path / "out"), to_cog(safes, clean)
        contents = cog_contents
    assert run(clean_cmd).returncode == 0
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lock(lock_path_for(target), first.pid, first)
        os.kill(first.pid, signal.SIGSTOP)
        second = run(cmd)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    line = one_clear_line(second, tally)
    assert f"is being written by pid {first.pid} on host" in line
    assert "remove the stale lock" in line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    if kind == "to-zarr":
        same = same_contents(contents(target), contents(clean))
    else:
        same = same_contents(contents(tmp_path / "out"), contents(clean))
    tally["lost"] += not same
    assert same, "the first writer's result differs from a clean run"


@pytest.fixture()
def small_disk(tmp_path):
    """A tmpfs mounted under the test folder (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)])
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")

    def resize(size: int) -> None:
        done = run(["mount", "-o", f"remount,size={size}", str(mnt)])
        assert done.returncode == 0, done.stderr

    try:
        yield mnt, resize
    finally:
        run(["umount", "-l", str(mnt)])


def test_disk_full_during_to_zarr_is_one_line_and_the_rerun_completes(
    tmp_path, s2_manifest, tally, small_disk
):
    """Sizes from far too small to about enough: the run stops with one clear line (never
    SIGBUS, exit 135), and with space again the rerun gives exactly the clean store."""
    mnt, resize = small_disk
    safes = product_paths(s2_manifest)
    clean = tmp_path / "clean.zarr"
    assert run(to_zarr(safes, clean)).returncode == 0
    want = cube_contents(clean)
    used = sum(p.stat().st_size for p in clean.rglob("*") if p.is_file())
    for k, fraction in enumerate((0.05, 0.5, 1.2)):
        store = mnt / f"s{k}.zarr"
        resize(max(16 << 10, int(used * fraction) // 4096 * 4096))
        proc = run(to_zarr(safes, store))
        if proc.returncode != 0:
            line = one_clear_line(proc, tally)
            assert "space" in line or "disk full" in line, line
        resize(64 << 20)
        rerun = run(to_zarr(safes, store))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert datacube.unfinished(store) == ""
        same = same_contents(cube_contents(store), want)
        tally["lost"] += not same
        assert same, f"{store}: differs from a clean run after a full disk"
        resize(64 << 20)
        for p in list(mnt.iterdir()):  # room for the next size
            run(["rm", "-rf", str(p)])


def test_zip_second_writer_gets_one_lock_line_and_a_killed_zips_temp_is_removed(
    tmp_path, s2_manifest, tally
):
    from eolab.core.lock import exclusive

    safes = product_paths(s2_manifest)
    store, out = tmp_path / "s.zarr", tmp_path / "zip" / "s.zarr.zip"
    assert run(to_zarr(safes, store)).returncode == 0
    out.parent.mkdir()
    stale = out.parent / f".{out.name}.x1y2z3.tmp"  # a killed zip's temporary
    stale.write_bytes(b"PK partial")
    cmd = [*EOLAB, "zarr", "zip", str(store), str(out)]
    with exclusive(out):
        line = one_clear_line(run(cmd), tally)
    assert f"is being written by pid {os.getpid()}" in line
    assert stale.exists() and not out.exists()
    done = run(cmd)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and out.is_file()


SCRATCH_WRITE = """
import sys
from pathlib import Path
import numpy as np
from eolab.sentinel2 import rawfile
path, how = Path(sys.argv[1]), sys.argv[2]
shape = (4, 512, 512)  # 2 MiB of uint16 on a 64 KiB disk
if how == "open_memmap":
    mm = np.lib.format.open_memmap(path, "w+", np.uint16, shape)
else:
    mm = rawfile.allocate_npy(path, np.uint16, shape)
mm[:] = 7
"""


def test_scratch_files_on_a_full_disk_are_an_error_not_sigbus(tmp_path, tally, small_disk):
    """What the preallocation prevents: a sparse memmap on a full disk dies with SIGBUS (checked
    here so the test proves something); allocate_npy raises one clear DiskSpaceError."""
    mnt, _ = small_disk
    sparse = run([sys.executable, "-c", SCRATCH_WRITE, str(mnt / "a.npy"), "open_memmap"])
    assert sparse.returncode == -signal.SIGBUS, (sparse.returncode, sparse.stderr[-500:])
    (mnt / "a.npy").unlink()
    code = SCRATCH_WRITE
    cli = (
        "from eolab.core.errors import EolabError\nimport sys\ntry:\n"
        + "".join(f"    {line}\n" for line in code.strip().splitlines())
        + "except EolabError as exc:\n    print(f'eolab: error: {exc}', file=sys.stderr)\n"
        + "    sys.exit(1)\n"
    )
    proc = run([sys.executable, "-c", cli, str(mnt / "b.npy"), "allocate"])
    line = one_clear_line(proc, tally)
    assert "no space left for a 2.0 MiB scratch file" in line
    assert not (mnt / "b.npy").exists()


def test_benv2_second_writer_gets_one_lock_line_and_touches_nothing(tmp_path, tally):
    from eolab.core.lock import exclusive
    from eolab.fixtures.benv2 import generate

    src, out = tmp_path / "src", tmp_path / "out"
    generate(src, patches=4, seed=3)
    before = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    cmd = [*EOLAB, "benv2", "tiles", "--root", str(src), "--out_dir", str(out),
           "--no-progress", "--workers", "1", "--delete-sources"]  # fmt: skip
    with exclusive(out):
        line = one_clear_line(run(cmd), tally)
    assert f"is being written by pid {os.getpid()}" in line
    assert sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file()) == before
    assert not (out / "journal.jsonl").exists()
