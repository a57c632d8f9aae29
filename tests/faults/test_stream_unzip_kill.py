"""Streamed unzip killed with SIGKILL mid-stream (a real subprocess), then rerun: the rerun
keeps the members the killed run completed (CRC-checked) and the store is identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from eolab.fixtures.random_zarr import random_store
from eolab.zarrio.stream_unzip import partial_dir, unzip_s3, unzip_stream
from eolab.zarrio.zipzarr import zip_store

BUCKET = "kill"
STREAM_CHILD = """
import sys
from eolab.zarrio.stream_unzip import unzip_stream
unzip_stream(sys.stdin.buffer, sys.argv[1])
"""
S3_CHILD = """
import json, sys, boto3
from eolab.zarrio.stream_unzip import unzip_s3
client = boto3.client("s3", **json.loads(sys.argv[1]))
unzip_s3(client, sys.argv[2], sys.argv[3], sys.argv[4])
"""


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    store = random_store(root / "cube.zarr", 48 << 20, seed=11, chunk=256)
    zipped = root / "cube.zarr.zip"
    zip_store(store, zipped)
    return store, zipped


def finished_members(work) -> int:
    if not work.exists():
        return 0
    return sum(1 for p in work.rglob("*") if p.is_file() and not p.name.endswith(".part"))


def wait_for(predicate, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited with {proc.returncode} before the kill")
        time.sleep(0.002)
    raise AssertionError("child made no progress")


def assert_same_store(got, want):
    files = sorted(p.relative_to(want) for p in want.rglob("*") if p.is_file())
    assert sorted(p.relative_to(got) for p in got.rglob("*") if p.is_file()) == files
    for rel in files:
        assert (got / rel).read_bytes() == (want / rel).read_bytes(), rel
    a, b = zarr.open_group(got, mode="r"), zarr.open_group(want, mode="r")
    for name, array in b.arrays():
        np.testing.assert_array_equal(a[name][:], array[:])


def test_stream_killed_after_half_the_bytes_resumes(plain, tmp_path):
    """Deterministic: the child has only the first half of the zip when it is killed."""
    store, zipped = plain
    data = zipped.read_bytes()
    dest = tmp_path / "out" / "cube.zarr"
    proc = subprocess.Popen([sys.executable, "-c", STREAM_CHILD, str(dest)], stdin=subprocess.PIPE)
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    work = partial_dir(dest)
    wait_for(lambda: finished_members(work) >= 20, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not dest.exists()  # killed mid-stream: nothing under the real name
    before = finished_members(work)
    with open(zipped, "rb") as fh:
        result = unzip_stream(fh, dest)
    assert before >= 20 and result.kept >= before - 1  # the last one may be a dangling name
    assert_same_store(dest, store)
    assert not work.exists()


def test_s3_unzip_killed_mid_stream_resumes_without_starting_over(
    plain, tmp_path, s3_server, s3_client
):
    """A real moto server, a real child process streaming the object, SIGKILL mid-stream."""
    store, zipped = plain
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.upload_file(str(zipped), BUCKET, "cube.zarr.zip")
    dest = tmp_path / "cube.zarr"
    args = [json.dumps(s3_server.client_kwargs()), BUCKET, "cube.zarr.zip", str(dest)]
    proc = subprocess.Popen([sys.executable, "-c", S3_CHILD, *args])
    work = partial_dir(dest)
    wait_for(lambda: finished_members(work) >= 40, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not dest.exists(), "the child finished before the kill: not a mid-stream kill"
    result = unzip_s3(s3_client, BUCKET, "cube.zarr.zip", dest)
    assert result.kept >= 39  # 40 finished files; at most the last one's rename was cut short
    # resumed, not restarted: 4 metadata files, 16 tiny aux chunks, then >= 19 band chunks of
    # 128 KB were not fetched again (the rerun reads the 128 KB tail, then from the first
    # missing member on)
    assert result.fetched < zipped.stat().st_size - (1 << 20)
    assert result.requests >= 3  # HEAD, tail, the missing runs: the central directory path
    assert_same_store(dest, store)
