"""Exceptions the command line turns into one clear line and a non-zero exit."""

from __future__ import annotations

import errno
import os
import re


class EolabError(Exception):
    """Base class: a user-facing error whose message names the file or key and the reason."""

    exit_code = 1


class ConfigError(EolabError):
    """A configuration value is missing or wrong."""


class InputError(EolabError):
    """An input file is missing, truncated, corrupt or not what was expected."""


class DiskSpaceError(EolabError):
    """Not enough free disk space to continue safely."""


class RemoteError(EolabError):
    """A remote service (HTTP, S3, STAC) refused or failed a request."""


class LockedError(EolabError):
    """Another live process is writing the same output."""


class OutputError(EolabError):
    """An output cannot be written: read-only filesystem, no permission, a file in the way."""


# errno -> (what went wrong, hint, error class); the message is "<file>: <what> (<hint>)"
_OS_ERRORS: dict[int, tuple[str, str, type[EolabError]]] = {
    errno.EROFS: ("read-only file system", "choose a writable folder", OutputError),
    errno.ENOSPC: (
        "no space left on device",
        "free some space or choose another folder",
        DiskSpaceError,
    ),
    errno.EDQUOT: (
        "disk quota exceeded",
        "free some space or choose another folder",
        DiskSpaceError,
    ),
    errno.EACCES: (
        "permission denied",
        "check the owner and mode of the file or folder",
        OutputError,
    ),
    errno.EPERM: ("operation not permitted", "check the owner and mode of the file", OutputError),
    errno.ENOTDIR: (
        "a file is in the way where a folder is expected",
        "remove it or choose another path",
        OutputError,
    ),
    errno.EISDIR: ("is a folder, a file was expected", "give a file path", InputError),
    errno.ENOENT: ("no such file or folder", "check the path", InputError),
    errno.EEXIST: ("already exists", "remove it or choose another path", OutputError),
    errno.EMFILE: ("too many open files", "raise the limit with ulimit -n", EolabError),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path", InputError),
}


# the temporary name of an atomic write (eolab.core.atomic): ".<name>.<8 random chars><suffix>.tmp"
_ATOMIC_TMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}[^/]*\.tmp$")


def user_path(filename: str | bytes | os.PathLike | int) -> str:
    """The path the user asked for: an atomic write's temporary name becomes its target's."""
    path = str(filename) if isinstance(filename, int) else os.fsdecode(filename)
    head, _, tail = path.rpartition("/")
    match = _ATOMIC_TMP.match(tail)
    if match is None:
        return path
    return f"{head}/{match['name']}" if head else match["name"]


def from_os_error(exc: OSError, path: str | os.PathLike | None = None) -> EolabError:
    """The `EolabError` for an OSError: "<file>: <what> (<hint>)", chosen by errno.

    ``path`` names the file when the OSError does not (zarr, sqlite and GDAL often lose it).
    """
    name = exc.filename if exc.filename is not None else path
    what, hint, cls = _OS_ERRORS.get(
        exc.errno or 0, (exc.strerror or str(exc) or type(exc).__name__, "", EolabError)
    )
    if exc.filename2 is not None:
        name = f"{user_path(name)} -> {user_path(exc.filename2)}"
    where = f"{user_path(name)}: " if name is not None else ""
    return cls(f"{where}{what}" + (f" ({hint})" if hint else ""))


def from_sqlite_error(exc: Exception, path: str | os.PathLike | None = None) -> EolabError | None:
    """The `EolabError` for a sqlite3 error that is about the disk, else None."""
    text = str(exc).lower()
    where = f"{os.fsdecode(path)}: " if path is not None else "sqlite database: "
    if "disk is full" in text:
        return DiskSpaceError(
            f"{where}database or disk is full (free some space or choose another folder)"
        )
    if "readonly database" in text or "read-only" in text:
        return OutputError(f"{where}read-only database (choose a writable folder)")
    return None
