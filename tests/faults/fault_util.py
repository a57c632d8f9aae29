"""Helpers of the fault tier (tests/faults): run, kill, compare stores, count outcomes.

A module of its own, not conftest.py: ``from conftest import …`` resolves to whichever conftest
was imported first when other tiers are collected in the same session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import zarr

from eolab.sentinel2.datacube import read_labels

TALLY: Counter = Counter()
EOLAB = [sys.executable, "-m", "eolab"]


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_killed(
    cmd: list[str], delay: float, after: Path | None = None, timeout: float = 300
) -> bool:
    """Start ``cmd`` in its own process group and SIGKILL the group ``delay`` seconds after its
    start, or after ``after`` appeared (a kill point inside a short step, e.g. creating a group).
    Returns whether it was still running (killed) or had already finished."""
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while after is not None and not after.exists() and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
        return True


def timed(cmd: list[str]) -> float:
    """Wall time of a clean run (the range kill delays are drawn from)."""
    t = time.monotonic()
    proc = run(cmd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.monotonic() - t


def one_clear_line(proc: subprocess.CompletedProcess, tally: Counter) -> str:
    """Count a fault's outcome; the error must be exactly one `eolab: error:` line."""
    tally["faults"] += 1
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    if "Traceback" in proc.stderr:
        tally["tracebacks"] += 1
    errors = [x for x in lines if x.startswith("eolab: error: ")]
    if proc.returncode not in (0, 135, -7) and len(errors) == 1 and "Traceback" not in proc.stderr:
        tally["clear"] += 1
    assert proc.returncode not in (0, 135, -signal.SIGBUS), (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def cube_contents(store: Path) -> dict:
    """Every array (values) and every node's attributes of a Zarr store, by path."""
    out = {}
    root = zarr.open_group(store, mode="r", use_consolidated=False)

    def visit(group, prefix: str) -> None:
        out[prefix + "@attrs"] = json.dumps(dict(group.attrs), sort_keys=True, default=str)
        for name, arr in sorted(group.arrays()):
            attrs = dict(arr.attrs)
            if "flag_meanings" in attrs:
                # Label codes: their vocabulary grows in append order, so compare the labels.
                attrs = {k: v for k, v in attrs.items() if not k.startswith("flag_")}
                out[f"{prefix}{name}"] = read_labels(arr)
            else:
                out[f"{prefix}{name}"] = np.asarray(arr[...])
            out[f"{prefix}{name}@attrs"] = json.dumps(attrs, sort_keys=True, default=str)
        for name, sub in sorted(group.groups()):
            visit(sub, f"{prefix}{name}/")

    visit(root, "")
    return out


def same_contents(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray):
            if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True
