"""SIGTERM (Slurm's scancel, snakemake stopping its jobs) unwinds eolab like Ctrl-C: one line,
exit 143, the scratch copies removed and the local S3 server stopped, not orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from fault_util import EOLAB, run

from eolab.sentinel2.products import product_paths


def moto_servers() -> set[int]:
    """PIDs of the moto_server processes running now."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"moto_server" in (proc / "cmdline").read_bytes():
                found.add(int(proc.name))
        except OSError:  # ended while listed
            continue
    return found


def test_sigterm_stops_the_local_s3_server_and_removes_scratch(tmp_path, s2_manifest, tally):
    store = tmp_path / "cube.zarr"
    safes = [str(p) for p in product_paths(s2_manifest)]
    made = run([*EOLAB, "sentinel2", "to-zarr", *safes, "--store", str(store), "--quiet"])
    assert made.returncode == 0, made.stderr[-2000:]
    temp, log = tmp_path / "temp", tmp_path / "s3.log"
    before = moto_servers()
    out = tmp_path / "feed.json"
    cmd = [*EOLAB, "bench", "train-feed", "--zarr", str(store), "--tile", "35VLH", "--year",
           "2024", "--storages", "temp,s3", "--samples", "64", "--patch-size", "600",
           "--temp-dir", str(temp), "--s3-log", str(log), "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and b"PUT" in log.read_bytes():  # server up, staging under way
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the benchmark ended before it could be terminated"
    started = moto_servers() - before
    assert started, "no local S3 server found while the benchmark ran"
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    tally["faults"] += 1
    lines = [x for x in stderr.splitlines() if x.startswith("eolab:")]  # not the progress bars
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert lines == ["eolab: terminated (SIGTERM); rerun to resume"], stderr[-3000:]
    assert "Traceback" not in stderr
    tally["clear"] += 1
    assert not (moto_servers() & started), "the local S3 server outlived eolab"
    assert not list(temp.glob("*")), f"scratch left behind: {list(temp.iterdir())}"
    assert not out.exists()
