"""Memory-mapped ``.npy`` scratch files whose disk blocks are reserved before any pixel is written.

``np.lib.format.open_memmap`` creates a sparse file: when the disk fills up, the first write to
an unbacked page kills the process with SIGBUS (exit 135, nothing printed). Reserving the whole
file with ``posix_fallocate`` first turns a full disk into ``ENOSPC`` at creation, which is
raised here as a `DiskSpaceError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eolab.core.disk import is_disk_full
from eolab.core.errors import DiskSpaceError


def allocate_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.memmap:
    """A new writable ``.npy`` memmap at ``path`` with all its blocks allocated on disk."""
    path = Path(path)
    try:
        mm = np.lib.format.open_memmap(path, "w+", dtype, shape)
        with open(path, "rb+") as fh:
            size = os.fstat(fh.fileno()).st_size
            if hasattr(os, "posix_fallocate") and size:
                os.posix_fallocate(fh.fileno(), 0, size)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if is_disk_full(exc):
            mib = int(np.prod(shape)) * np.dtype(dtype).itemsize / 2**20
            raise DiskSpaceError(
                f"{path}: no space left for a {mib:.1f} MiB scratch file (free some space, or "
                "choose another folder, and rerun)"
            ) from exc
        raise
    return mm
