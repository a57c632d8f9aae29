"""Zarr directory store -> one zip file (STORED entries), readable by ``zarr.storage.ZipStore``.

Writing a store piece by piece through ``ZipStore`` leaves duplicate entries (a rewritten
``zarr.json`` is appended again), so a finished directory store is zipped instead: entry names
relative to the store root, ``zarr.json`` files first (shallow to deep, so a reader that streams
the archive meets all metadata before any chunk), then chunks in path order; no compression
(chunks are compressed already and readers need byte ranges); ZIP64 whenever sizes or counts
need it; fixed timestamps, so the same store always gives the same bytes. The zip is written
under a temporary name and renamed when complete; one writer per zip (a lock beside it), and
the temporary file of a killed run is removed by the next.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from eolab.core import atomic, lock
from eolab.core.disk import disk_full_error
from eolab.core.errors import InputError

METADATA_NAME = "zarr.json"
#: Files in a store that are not part of it (zarr's unfinished atomic writes).
SKIP_SUFFIXES = (".partial",)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
COPY_BUFFER = 1 << 20


def store_files(store: Path) -> list[tuple[str, Path]]:
    """(entry name, path) of every file of a store: metadata first, then data, each sorted."""
    files = []
    for dirpath, dirnames, filenames in os.walk(store):
        dirnames.sort()
        for name in filenames:
            if name.endswith(SKIP_SUFFIXES):
                continue
            path = Path(dirpath) / name
            files.append((path.relative_to(store).as_posix(), path))

    def order(item: tuple[str, Path]) -> tuple:
        rel = item[0]
        is_meta = rel.rsplit("/", 1)[-1] == METADATA_NAME
        return (0, rel.count("/"), rel) if is_meta else (1, 0, rel)

    return sorted(files, key=order)


def check_finished(store: Path) -> None:
    """Refuse a store that is missing its root metadata or has an unfinished cube append."""
    from eolab.sentinel2 import datacube

    if not (store / METADATA_NAME).is_file():
        raise InputError(f"{store}: not a Zarr v3 store (no {METADATA_NAME})")
    problem = datacube.unfinished(store)
    if problem:
        raise InputError(f"{store}: unfinished append ({problem}); rerun the conversion first")


def zip_store(store: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Zip a finished directory store into ``out``; returns entry count and sizes.

    One writer per zip (a lock beside it); temporaries of a killed run are removed first."""
    store, out = Path(store), Path(out)
    check_finished(store)
    files = store_files(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    with lock.exclusive(out):
        atomic.remove_temps(out.parent, out.name)
        with disk_full_error(
            lambda exc: f"{out}: disk full while zipping {store} (free some space and rerun)"
        ):
            total = _write_zip(files, out)
    return {"zip": str(out), "entries": len(files), "bytes": total}


def _write_zip(files: list[tuple[str, Path]], out: Path) -> int:
    total = 0
    with (
        atomic.atomic_path(out) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = path.stat().st_size
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, COPY_BUFFER)
            total += info.file_size
    return total
