"""OSErrors and sqlite errors become one-line user errors naming the file, with a hint."""

import errno
import sqlite3

import pytest

from eolab.core.errors import (
    DiskSpaceError,
    EolabError,
    InputError,
    OutputError,
    from_os_error,
    from_sqlite_error,
)


@pytest.mark.parametrize(
    "code, cls, what",
    [
        (errno.EROFS, OutputError, "read-only file system (choose a writable folder)"),
        (errno.ENOSPC, DiskSpaceError, "no space left on device (free some space"),
        (errno.EDQUOT, DiskSpaceError, "disk quota exceeded"),
        (errno.EACCES, OutputError, "permission denied"),
        (errno.ENOTDIR, OutputError, "a file is in the way"),
        (errno.ENOENT, InputError, "no such file or folder (check the path)"),
    ],
)
def test_os_errors_by_errno(code, cls, what):
    err = from_os_error(OSError(code, "ignored", "/data/out"))
    assert isinstance(err, cls)
    assert str(err).startswith(f"/data/out: {what}")


def test_os_error_without_a_file_name_takes_the_given_path():
    err = from_os_error(OSError(errno.ENOSPC, "No space left on device"), "/scratch/x.npy")
    assert str(err).startswith("/scratch/x.npy: no space left on device")


def test_unknown_errno_keeps_the_system_message():
    err = from_os_error(OSError(errno.EIO, "Input/output error", "/dev/sdz"))
    assert type(err) is EolabError and str(err) == "/dev/sdz: Input/output error"


def test_rename_names_both_files():
    err = from_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"))
    assert str(err).startswith("/a -> /b: ")


def test_sqlite_disk_full_names_the_database(tmp_path):
    err = from_sqlite_error(sqlite3.OperationalError("database or disk is full"), tmp_path / "x")
    assert isinstance(err, DiskSpaceError) and str(err).startswith(f"{tmp_path / 'x'}: ")
    assert from_sqlite_error(sqlite3.OperationalError("no such table: t")) is None


@pytest.mark.parametrize(
    "name, expected",
    [
        ("/o/.listing.json.crowtb85.tmp", "/o/listing.json"),
        ("/o/.S2A_X.SAFE.a7xvm9sh.tmp", "/o/S2A_X.SAFE"),
        (".cube.zarr.k2_9abcd.json.tmp", "cube.zarr"),
        ("/o/listing.json", "/o/listing.json"),
        ("/o/.hidden.tmp", "/o/.hidden.tmp"),
    ],
)
def test_user_path(name, expected):
    from eolab.core.errors import user_path

    assert user_path(name) == expected
