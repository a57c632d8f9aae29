"""Atomic writes: write under a temporary name in the same folder, fsync, rename.

A crash leaves either the old file or the new one, never a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success fsync it and rename it onto ``dest``.

    Works for files and directories (a directory is renamed whole; an existing one is replaced).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        if tmp.is_dir() and dest.is_dir():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(dest: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``dest`` for writing; it replaces ``dest`` only on success."""
    with atomic_path(dest) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``dest``."""
    with atomic_open(dest, "wb") as fh:
        fh.write(data)


def write_json(dest: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write ``obj`` as JSON (sorted keys, trailing newline) to ``dest``."""
    with atomic_open(dest, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent, sort_keys=True, default=str)
        fh.write("\n")


def remove_temps(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """Remove what `atomic_path` left in ``folder`` for ``name`` when its process was killed
    (``.<name>.<random>.tmp`` files and folders). Call it only while holding the output's lock:
    a live writer's temporary looks the same."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
