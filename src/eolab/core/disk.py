"""Free disk space: the one place eolab asks how much room a folder has and refuses early."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from eolab.core.errors import DiskSpaceError

GiB = 2**30


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


def open_memmap(path: Path, dtype, shape: tuple[int, ...]):
    """A new ``.npy`` memmap (mode ``w+``) whose blocks are all allocated now.

    numpy creates the file sparse; on a full disk the kernel then kills the process with SIGBUS
    at the first write through the map. Allocating up front turns that into a clear
    `DiskSpaceError` naming the file, before any work is done.
    """
    import numpy as np

    from eolab.core.errors import from_os_error

    try:
        mm = np.lib.format.open_memmap(path, "w+", dtype, shape)
        with open(path, "r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
    except OSError as exc:
        Path(path).unlink(missing_ok=True)
        raise from_os_error(exc, path) from exc
    return mm
