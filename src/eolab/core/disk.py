"""Free disk space: the one place eolab asks how much room a folder has and refuses early."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from eolab.core.errors import DiskSpaceError

GiB = 2**30
#: The errnos of a full disk or an exhausted quota.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: OSError) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    return exc.errno in DISK_FULL


@contextlib.contextmanager
def disk_full_error(describe: Callable[[OSError], str]) -> Iterator[None]:
    """Raise a full disk inside the block as `DiskSpaceError` with ``describe(exc)`` as message;
    any other OSError passes unchanged."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskSpaceError(describe(exc)) from exc


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(
    path: Path,
    needed: int,
    *,
    what: str = "this step",
    hint: str = "free some space or choose another folder",
    margin: float = 1.05,
    free: Callable[[Path], int] = free_bytes,
) -> int:
    """Raise `DiskSpaceError` naming ``path`` when ``needed`` bytes (times ``margin``) do not fit.

    Returns the free bytes. ``free`` is injectable so tests need not fill a disk.
    """
    have = int(free(Path(path)))
    if needed * margin > have:
        raise DiskSpaceError(
            f"{path}: {what} needs {needed / GiB:.2f} GiB, only {have / GiB:.2f} GiB free ({hint})"
        )
    return have


def mount_of(path: str | os.PathLike, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """What holds ``path``: ``<device> (<fstype>) at <mount point>``, as ``df`` would name it;
    None where the mount table cannot be read (not Linux)."""
    target = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open(mountinfo, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # <id> <parent> <major:minor> <root> <mount point> <options> [optional…] - <fs> <source> …
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, tail[1], tail[0])
    if best is None:
        return None
    point, source, fstype = best
    return f"{source} ({fstype}) at {point}"
