"""The store lock (one writer, names its holder, dies with it) and the free-space check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from eolab.core.disk import check_free_space, free_bytes
from eolab.core.errors import DiskSpaceError, LockedError
from eolab.core.lock import exclusive, lock_path_for

HOLD = """
import sys, time
from eolab.core.lock import exclusive
with exclusive(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(target):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"locked"
    return proc


def test_second_writer_gets_one_line_naming_the_holder(tmp_path):
    target = tmp_path / "cube.zarr"
    proc = _holder(target)
    try:
        with pytest.raises(LockedError) as err, exclusive(target):
            pass
        msg = str(err.value)
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg
        assert str(target) in msg and "stale lock" in msg
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path):
    target = tmp_path / "cube.zarr"
    proc = _holder(target)
    proc.kill()  # kill -9: no cleanup ran
    proc.wait()
    assert lock_path_for(target).exists()
    with exclusive(target):
        assert f'"pid": {os.getpid()}' in lock_path_for(target).read_text()
    with exclusive(target):  # released after the block, reusable
        pass


def test_same_process_cannot_lock_twice(tmp_path):
    target = tmp_path / "x"
    with exclusive(target), pytest.raises(LockedError), exclusive(target):
        pass


def test_check_free_space_refuses_with_path_and_sizes(tmp_path):
    with pytest.raises(DiskSpaceError, match=r"needs 2\.00 GiB, only 1\.00 GiB free"):
        check_free_space(tmp_path, 2 * 2**30, what="staging", margin=1.0, free=lambda p: 2**30)
    assert check_free_space(tmp_path, 10, free=lambda p: 100) == 100
    assert free_bytes(tmp_path / "not" / "yet") == free_bytes(tmp_path)


def test_disk_full_error_turns_only_a_full_disk_into_one_message(tmp_path):
    import errno

    from eolab.core.disk import disk_full_error

    for code in (errno.ENOSPC, errno.EDQUOT):
        with (
            pytest.raises(DiskSpaceError, match=r"^x\.bin: full \(rerun\)$"),
            disk_full_error(lambda exc: f"{exc.filename}: full (rerun)"),
        ):
            raise OSError(code, "no space", "x.bin")
    with pytest.raises(PermissionError), disk_full_error(lambda exc: "never"):
        raise PermissionError(errno.EACCES, "denied", "y")


def test_mount_of_names_the_deepest_mount_holding_a_path(tmp_path):
    from eolab.core.disk import mount_of

    table = tmp_path / "mountinfo"
    table.write_text(
        "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
        "40 22 259:2 / /scratch rw,relatime shared:9 - lustre 10.0.0.1@o2ib:/fs rw\n"
        "41 22 259:3 / /scratch2 rw - xfs /dev/nvme0n1 rw\n"
        "42 22 0:55 / /my\\040disk rw - tmpfs tmpfs rw\n"
    )
    assert (
        mount_of("/scratch/project/a.zarr", str(table)) == "10.0.0.1@o2ib:/fs (lustre) at /scratch"
    )
    assert mount_of("/scratch2", str(table)) == "/dev/nvme0n1 (xfs) at /scratch2"
    assert mount_of("/scratchy/x", str(table)) == "/dev/vda1 (ext4) at /"  # not /scratch
    assert mount_of("/my disk/x", str(table)) == "tmpfs (tmpfs) at /my disk"
    assert mount_of("/x", str(tmp_path / "missing")) is None
