"""Staging between storages, timed: network → temp, network → S3, S3 → temp, zip/unzip on temp,
and a zipped Zarr unzipped from S3 straight to temp as it streams.

Every format is a :class:`Dataset`: a root folder, an entry point relative to it (products
manifest, COG listing, Zarr store, zip) and the relative paths of all its files. Staging keeps
those relative paths, so a staged copy opens exactly like the original. Each operation returns a
:class:`Timing` (seconds, bytes, objects) that the CLI writes as JSON.

Copies land in a fresh folder under the temp root and are removed by the caller's
``scratch_area`` unless kept; timings are to the page cache, as ``cp``/``rsync`` measure them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eolab.core.errors import InputError
from eolab.core.progress import bar as progress_bar
from eolab.lab import formats

MULTIPART_CHUNK = 16 * 1024 * 1024
#: Parts of one large file moved at once (files themselves move ``workers`` at a time).
PART_CONCURRENCY = 4


@dataclass(frozen=True)
class Dataset:
    """One format's files: ``root / entry`` opens it; ``files`` are relative to ``root``."""

    format: str
    root: Path
    entry: str
    files: tuple[str, ...]

    @property
    def entry_path(self) -> Path:
        return self.root / self.entry

    def nbytes(self) -> int:
        return sum((self.root / f).stat().st_size for f in self.files)

    def relocated(self, root: Path) -> Dataset:
        """The same dataset under another root (a staged copy)."""
        return Dataset(self.format, Path(root), self.entry, self.files)


def dataset(fmt: str, entry: str | os.PathLike) -> Dataset:
    """The dataset of format ``fmt`` whose entry point (manifest, listing, store, zip) is given."""
    form = formats.get(fmt)
    entry = Path(entry)
    if not entry.exists():
        raise InputError(f"{entry}: {fmt} input not found")
    return Dataset(fmt, entry.parent, entry.name, tuple(form.files(entry)))


@dataclass
class Timing:
    """What one staging operation moved and how long it took."""

    operation: str
    format: str
    source: str
    destination: str
    seconds: float
    bytes: int
    objects: int
    workers: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["mb_per_s"] = self.mb_per_s
        doc["objects_per_s"] = self.objects / self.seconds if self.seconds > 0 else None
        return doc


@contextlib.contextmanager
def scratch_area(temp_root: Path, keep: bool = False) -> Iterator[Path]:
    """A fresh folder under the temp root, removed on exit unless ``keep``."""
    area = Path(temp_root) / f"eolab-stage-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    area.mkdir(parents=True)
    try:
        yield area
    finally:
        if not keep:
            shutil.rmtree(area, ignore_errors=True)


def _run_parallel(
    func: Callable[[str], int], items: list[str], workers: int, desc: str
) -> tuple[float, int]:
    """Apply ``func`` (returns bytes moved) to every item in threads; (seconds, total bytes)."""
    start = time.perf_counter()
    total = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        bar = progress_bar(total=len(items), desc=desc, unit="file", disable=None)
        for moved in pool.map(func, items):
            total += moved
            bar.update()
        bar.close()
    return time.perf_counter() - start, total


def copy_dataset(ds: Dataset, dest_root: Path, workers: int = 8) -> tuple[Dataset, Timing]:
    """Copy every file of ``ds`` under ``dest_root`` (relative paths kept), in threads."""
    dest_root = Path(dest_root)
    for parent in {str(Path(f).parent) for f in ds.files}:
        (dest_root / parent).mkdir(parents=True, exist_ok=True)

    def one(rel: str) -> int:
        shutil.copyfile(ds.root / rel, dest_root / rel)
        return (dest_root / rel).stat().st_size

    seconds, nbytes = _run_parallel(one, list(ds.files), workers, f"copy {ds.format}")
    timing = Timing(
        "copy", ds.format, str(ds.root), str(dest_root), seconds, nbytes, len(ds.files), workers
    )
    return ds.relocated(dest_root), timing


def upload_dataset(ds: Dataset, client: Any, bucket: str, prefix: str, workers: int = 8) -> Timing:
    """Upload every file of ``ds`` to ``s3://bucket/prefix/<rel>``: files in parallel, each
    large file as a parallel multipart upload (``client`` should pool
    ``s3_connections(workers)`` connections)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=PART_CONCURRENCY,
    )

    def one(rel: str) -> int:
        path = ds.root / rel
        client.upload_file(str(path), bucket, _join(prefix, rel), Config=config)
        return path.stat().st_size

    seconds, nbytes = _run_parallel(one, list(ds.files), workers, f"upload {ds.format}")
    return Timing(
        "upload",
        ds.format,
        str(ds.root),
        f"s3://{bucket}/{prefix}",
        seconds,
        nbytes,
        len(ds.files),
        workers,
        {"multipart_chunk": MULTIPART_CHUNK},
    )


def download_dataset(
    ds: Dataset, client: Any, bucket: str, prefix: str, dest_root: Path, workers: int = 8
) -> tuple[Dataset, Timing]:
    """Download the objects of ``ds`` from ``s3://bucket/prefix/`` under ``dest_root``."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=PART_CONCURRENCY,
    )
    dest_root = Path(dest_root)
    for parent in {str(Path(f).parent) for f in ds.files}:
        (dest_root / parent).mkdir(parents=True, exist_ok=True)

    def one(rel: str) -> int:
        client.download_file(bucket, _join(prefix, rel), str(dest_root / rel), Config=config)
        return (dest_root / rel).stat().st_size

    seconds, nbytes = _run_parallel(one, list(ds.files), workers, f"download {ds.format}")
    timing = Timing(
        "download",
        ds.format,
        f"s3://{bucket}/{prefix}",
        str(dest_root),
        seconds,
        nbytes,
        len(ds.files),
        workers,
    )
    return ds.relocated(dest_root), timing


def s3_connections(workers: int) -> int:
    """Connections a client needs for ``workers`` files with ``PART_CONCURRENCY`` parts each."""
    return max(32, workers * PART_CONCURRENCY)


def _join(prefix: str, rel: str) -> str:
    return f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel


def uploaded(ds: Dataset, client: Any, bucket: str, prefix: str) -> bool:
    """True when every file of ``ds`` is in S3 under ``prefix`` with the same size."""
    sizes: dict[str, int] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=_join(prefix, "")):
        for obj in page.get("Contents", []):
            sizes[obj["Key"]] = obj["Size"]
    return all(sizes.get(_join(prefix, f)) == (ds.root / f).stat().st_size for f in ds.files)


def ensure_uploaded(
    ds: Dataset, client: Any, bucket: str, prefix: str, workers: int = 8
) -> Timing | None:
    """Upload ``ds`` unless it is already there (a configured endpoint, staged by an earlier
    job); a job on a local server of its own always uploads. Returns the timing if it did."""
    if uploaded(ds, client, bucket, prefix):
        return None
    return upload_dataset(ds, client, bucket, prefix, workers)


def zip_store(ds: Dataset, dest: Path) -> tuple[Dataset, Timing]:
    """Zip a Zarr store (ZIP_STORED, entry names relative to the store root) into ``dest``."""
    from eolab.zarrio.zipzarr import zip_store as zip_directory

    if ds.format not in formats.ZARR_STORES:
        raise InputError(f"{ds.entry_path}: only a Zarr store can be zipped, not {ds.format}")
    start = time.perf_counter()
    zip_directory(ds.entry_path, dest)
    seconds = time.perf_counter() - start
    zipped = Dataset(formats.ZIP, dest.parent, dest.name, (dest.name,))
    timing = Timing(
        "zip",
        ds.format,
        str(ds.entry_path),
        str(dest),
        seconds,
        dest.stat().st_size,
        len(ds.files),
        1,
    )
    return zipped, timing


def unzip_store(ds: Dataset, dest: Path, workers: int = 8) -> tuple[Dataset, Timing]:
    """Extract a zipped Zarr into the store folder ``dest``, members written in parallel."""
    from eolab.zarrio.zipreader import ZipReader

    if ds.format != formats.ZIP:
        raise InputError(f"{ds.entry_path}: not a zipped Zarr ({ds.format})")
    start = time.perf_counter()
    with ZipReader.open(ds.entry_path) as reader:
        names = [n for n in reader.names() if not n.endswith("/")]
        for parent in {str(Path(n).parent) for n in names}:
            (dest / parent).mkdir(parents=True, exist_ok=True)

        def one(name: str) -> int:
            data = reader.read(name)
            (dest / name).write_bytes(data)
            return len(data)

        _, nbytes = _run_parallel(one, names, workers, "unzip")
    seconds = time.perf_counter() - start
    files = tuple(f"{dest.name}/{n}" for n in sorted(names))
    timing = Timing(
        "unzip", ds.format, str(ds.entry_path), str(dest), seconds, nbytes, len(names), workers
    )
    return Dataset(formats.ZARR, dest.parent, dest.name, files), timing


def unzip_from_s3(
    ds: Dataset, client: Any, bucket: str, prefix: str, dest: Path, streams: int = 1
) -> tuple[Dataset, Timing]:
    """Extract the zipped Zarr ``ds`` uploaded under ``s3://bucket/prefix/`` straight into the
    store folder ``dest`` as it downloads (``eolab.zarrio.stream_unzip``), no zip on disk."""
    from eolab.zarrio.stream_unzip import unzip_s3

    if ds.format != "zarr-zip":
        raise InputError(f"{ds.entry_path}: not a zipped Zarr ({ds.format})")
    key = _join(prefix, ds.entry)
    result = unzip_s3(client, bucket, key, dest, streams)
    files = tuple(
        sorted(p.relative_to(dest.parent).as_posix() for p in dest.rglob("*") if p.is_file())
    )
    timing = Timing(
        "unzip-s3",
        ds.format,
        f"s3://{bucket}/{key}",
        str(dest),
        result.seconds,
        result.bytes,
        result.members,
        streams,
        {"fetched": result.fetched, "requests": result.requests, "kept": result.kept},
    )
    return Dataset("zarr", dest.parent, dest.name, files), timing


def read_timing(path: str | os.PathLike) -> dict[str, Any]:
    """A timing JSON written by ``eolab stage …``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read staging timing ({exc})") from exc
