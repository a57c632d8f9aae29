"""Streamed unzip: a zipped Zarr in S3 (or any byte stream) straight into a plain store folder.

Instead of downloading the zip to node-local disk and then extracting it (every byte written
twice, read once more, and nothing extracted before the download ends), the object's bytes are
parsed as they arrive and each member is written to its file at once: transfer and extraction
overlap (a reader thread pulls the HTTP body ahead of the writer through a small queue).

- **S3 object** (:func:`unzip_s3`): the central directory is read first with one ranged GET of
  the tail (it gives every member's offset, sizes and CRC-32, ZIP64 and data descriptors
  included: the local header is then only skipped). The members still to extract are fetched
  with one sequential GET per run of consecutive members (``streams=1``: one GET of the whole
  archive), or split into ``streams`` contiguous groups fetched concurrently by ranged GETs.
- **Byte stream** (:func:`unzip_stream`): a forward-only stream parsed by local headers alone
  (ZIP64 extra fields read; a STORED member with a data descriptor has no size up front and is
  refused, as is anything after the central directory).

Atomic and resumable: members are written into ``.<dest>.unzip-partial`` beside ``dest`` (each
as ``<name>.part``, renamed when its CRC-32 matched), and the folder is renamed onto ``dest`` at
the end. A rerun after a kill keeps every member file already there whose size and CRC-32 match
the central directory and fetches only the rest. A CRC or size mismatch, a truncated stream or
a member name leaving the store is an ``InputError`` naming the zip and the member.
"""

from __future__ import annotations

import os
import queue
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from eolab.core.atomic import fsync_dir
from eolab.core.errors import InputError
from eolab.core.lock import exclusive
from eolab.zarrio.zipreader import (
    DEFLATED,
    FLAG_DATA_DESCRIPTOR,
    FLAG_ENCRYPTED,
    LOCAL_HEADER,
    LOCAL_SIG,
    STORED,
    S3Source,
    ZipEntry,
    ZipReader,
)

CHUNK = 1 << 20
#: Chunks the reader thread may run ahead of the writer (bounded memory: 16 MB).
QUEUE_CHUNKS = 16
#: Bytes of already-extracted members read and dropped rather than starting a new GET.
MAX_SKIP = 8 << 20
#: Members up to this size are written by the writer threads (larger ones as they stream).
INLINE_MAX = 8 << 20
PARTIAL_SUFFIX = ".unzip-partial"
CENTRAL_SIGS = (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07")


@dataclass
class UnzipResult:
    """What one streamed unzip did."""

    source: str
    destination: str
    members: int
    bytes: int  # member bytes in the store
    fetched: int  # bytes transferred (the tail read included)
    kept: int  # members already complete from an earlier run
    requests: int
    seconds: float


def partial_dir(dest: Path) -> Path:
    """The work folder beside ``dest`` (stable, so a rerun finds what an earlier one wrote)."""
    return dest.parent / f".{dest.name}{PARTIAL_SUFFIX}"


def member_path(root: Path, name: str, zip_name: str) -> Path:
    """``root / name`` for a member name that stays inside ``root`` (no absolute, no ``..``)."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or "\\" in name:
        raise InputError(f"{zip_name}: member name {name!r} leaves the store; refusing it")
    return root.joinpath(*parts)


def file_crc(path: Path) -> int:
    """CRC-32 of a file, read in ``CHUNK``s (to keep a member an earlier run finished)."""
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            crc = zlib.crc32(block, crc)
    return crc


class Prefetch:
    """A forward-only reader over ``read(n)`` with a thread reading ``CHUNK``s ahead, so the
    network transfer overlaps the file writes; ``read_exact``/``skip`` for the parser."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        name: str,
        start: int = 0,
        closer: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._closer = closer
        self.position = start
        self.fetched = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_CHUNKS)
        self._buffer = memoryview(b"")
        self._eof = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self._thread.start()

    def _pump(self, read: Callable[[int], bytes]) -> None:
        try:
            while not self._stop.is_set():
                block = read(CHUNK)
                self._queue.put(block)
                if not block:
                    return
        except BaseException as exc:  # handed to the consumer
            self._queue.put(exc)

    def _next(self) -> bool:
        """Take the next chunk from the reader thread; False at the end of the stream."""
        if self._eof:
            return False
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise InputError(f"{self.name}: read failed at byte {self.position} ({item})") from item
        if not item:
            self._eof = True
            return False
        self.fetched += len(item)
        self._buffer = memoryview(item)
        return True

    def chunks(self, n: int) -> Iterator[memoryview]:
        """The next ``n`` bytes as pieces (zero-copy slices of what arrived)."""
        left = n
        while left:
            if not self._buffer and not self._next():
                raise InputError(
                    f"{self.name}: truncated: stream ended at byte {self.position} "
                    f"({left} bytes short)"
                )
            piece = self._buffer[:left]
            self._buffer = self._buffer[len(piece) :]
            self.position += len(piece)
            left -= len(piece)
            yield piece

    def read_exact(self, n: int) -> bytes:
        return b"".join(self.chunks(n))

    def skip(self, n: int) -> None:
        for _ in self.chunks(n):
            pass

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes without consuming them (fewer at the end of the stream)."""
        while len(self._buffer) < n:
            rest = bytes(self._buffer)
            if not self._next():
                self._buffer = memoryview(rest)
                break
            self._buffer = memoryview(rest + bytes(self._buffer))
        return bytes(self._buffer[:n])

    def close(self) -> None:
        """Stop reading (closing the source first, so an error does not fetch the rest)."""
        self._stop.set()
        if self._closer is not None:
            try:
                self._closer()
            except Exception:  # noqa: BLE001 - closing is best effort; the error that matters is raised
                pass
        while self._thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)


@dataclass(frozen=True)
class Member:
    """What the writer needs of a member (from the central directory or a local header)."""

    name: str
    method: int
    compressed_size: int
    size: int
    crc32: int


class Writer:
    """Writes members under ``root``: ``<name>.part`` first, renamed once size and CRC match.

    Creating a file or folder costs a millisecond or more on some filesystems, which for
    thousands of chunk files outweighs the bytes: members up to ``INLINE_MAX`` are handed whole
    to ``workers`` threads (at most ``4 * workers`` in flight, so memory stays bounded); larger
    ones are written piece by piece as they arrive. Use as a context manager: leaving it waits
    for every write and raises the first failure."""

    def __init__(self, root: Path, zip_name: str, workers: int = 8) -> None:
        self.root = root
        self.zip_name = zip_name
        self._pool = ThreadPoolExecutor(workers, "unzip-write") if workers > 1 else None
        self._slots = threading.Semaphore(4 * workers)
        self._pending: list[Future] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._pool is None:
            return
        self._pool.shutdown(wait=True)
        if exc_type is None:
            self._raise_failed(all_done=True)

    def path(self, name: str) -> Path:
        return member_path(self.root, name.rstrip("/"), self.zip_name)

    def complete(self, member: Member) -> bool:
        """True when the member's file is already there with the right size and CRC-32."""
        path = self.path(member.name)
        try:
            if path.stat().st_size != member.size:
                return False
        except OSError:
            return False
        return file_crc(path) == member.crc32

    def write(self, member: Member, pieces: Iterator[memoryview]) -> None:
        """Write the member's (compressed) bytes from ``pieces``, checking size and CRC-32."""
        if member.name.endswith("/"):
            self.path(member.name).mkdir(parents=True, exist_ok=True)
            for _ in pieces:
                pass
            return
        if self._pool is None or member.compressed_size > INLINE_MAX:
            self._write(member, pieces)
            return
        data = b"".join(pieces)
        self._raise_failed()
        self._slots.acquire()
        future = self._pool.submit(self._write, member, iter((data,)))
        future.add_done_callback(lambda _: self._slots.release())
        with self._lock:
            self._pending.append(future)

    def _raise_failed(self, all_done: bool = False) -> None:
        """Raise the first failed background write; forget the finished ones."""
        with self._lock:
            done = [f for f in self._pending if all_done or f.done()]
            self._pending = [f for f in self._pending if not (all_done or f.done())]
        for future in done:
            future.result()

    def _write(self, member: Member, pieces: Iterator[memoryview | bytes]) -> None:
        path = self.path(member.name)
        part = path.with_name(path.name + ".part")
        try:
            fh = open(part, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # folders only when needed: creating one is slow
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(part, "wb")  # noqa: SIM115
        crc, size = 0, 0
        inflate = zlib.decompressobj(-15) if member.method == DEFLATED else None
        with fh:
            for piece in pieces:
                data = inflate.decompress(piece) if inflate else piece
                crc = zlib.crc32(data, crc)
                size += len(data)
                fh.write(data)
            if inflate:
                tail = inflate.flush()
                crc, size = zlib.crc32(tail, crc), size + len(tail)
                fh.write(tail)
        if size != member.size or crc != member.crc32:
            part.unlink()
            raise InputError(
                f"{self.zip_name}: member {member.name!r} is corrupt: {size} bytes with CRC-32 "
                f"{crc:08x}, the zip says {member.size} bytes with CRC-32 {member.crc32:08x}"
            )
        os.replace(part, path)


def check_supported(zip_name: str, name: str, method: int, flags: int) -> None:
    """Refuse an encrypted member, or one compressed other than STORED or DEFLATED."""
    if flags & FLAG_ENCRYPTED:
        raise InputError(f"{zip_name}: member {name!r} is encrypted")
    if method not in (STORED, DEFLATED):
        raise InputError(f"{zip_name}: member {name!r} uses compression method {method}")


def _local_data_start(stream: Prefetch, entry: ZipEntry) -> None:
    """Skip the member's local header (its lengths may differ from the central directory's)."""
    header = stream.read_exact(LOCAL_HEADER.size)
    fields = LOCAL_HEADER.unpack(header)
    if fields[0] != LOCAL_SIG:
        raise InputError(
            f"{stream.name}: no local header for {entry.name!r} at byte {entry.header_offset}"
        )
    stream.skip(fields[9] + fields[10])


def extract_run(stream: Prefetch, run: list[ZipEntry], writer: Writer, done: set[str]) -> int:
    """Extract the members of ``run`` (by offset) from ``stream``, positioned at the first
    one's local header; members in ``done`` are read past. Returns member bytes written."""
    written = 0
    for entry in run:
        if stream.position > entry.header_offset:
            raise InputError(f"{stream.name}: members overlap at {entry.name!r}")
        stream.skip(entry.header_offset - stream.position)
        _local_data_start(stream, entry)
        member = Member(entry.name, entry.method, entry.compressed_size, entry.size, entry.crc32)
        if entry.name in done:
            stream.skip(entry.compressed_size)
            continue
        writer.write(member, stream.chunks(entry.compressed_size))
        written += entry.size
    return written


def plan_runs(
    entries: list[ZipEntry], done: set[str], end: int, streams: int
) -> list[tuple[int, int, list[ZipEntry]]]:
    """``(start, stop, members)`` byte ranges to fetch: runs of members still to extract (done
    members in a gap under ``MAX_SKIP`` are read through), cut into about ``streams`` groups of
    similar size when ``streams`` > 1. ``end`` is where the last member's bytes end."""
    ordered = sorted(entries, key=lambda e: e.header_offset)
    stops = [e.header_offset for e in ordered[1:]] + [end]
    todo = sum(stop - e.header_offset for e, stop in zip(ordered, stops, strict=True)
               if e.name not in done)  # fmt: skip
    target = todo / streams if streams > 1 else float("inf")
    runs: list[tuple[int, int, list[ZipEntry]]] = []
    current: list[ZipEntry] = []
    passed: list[ZipEntry] = []  # done members since the run's last member
    run_start = run_stop = size = 0
    for entry, stop in zip(ordered, stops, strict=True):
        if entry.name in done:
            if current:
                passed.append(entry)
            continue
        if current and (entry.header_offset - run_stop > MAX_SKIP or size >= target):
            runs.append((run_start, run_stop, current))
            current, passed, size = [], [], 0
        if not current:
            run_start = entry.header_offset
        current += passed + [entry]
        passed = []
        size += stop - entry.header_offset
        run_stop = stop
    if current:
        runs.append((run_start, run_stop, current))
    return runs


def _finish(work: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(work, dest)
    fsync_dir(dest.parent)


def _kept_members(writer: Writer, entries: list[ZipEntry]) -> set[str]:
    """Names of members a previous run completed (right size and CRC-32)."""
    done = set()
    for entry in entries:
        member = Member(entry.name, entry.method, entry.compressed_size, entry.size, entry.crc32)
        if not entry.name.endswith("/") and writer.complete(member):
            done.add(entry.name)
    return done


class NeedsDirectory(InputError):
    """A member the local headers alone cannot place (a data descriptor: sizes after the data)."""


def extract_local(reader: Prefetch, writer: Writer) -> tuple[int, int, int]:
    """Extract members front to back by their local headers until the central directory;
    members already complete are read past. Returns (members, kept, bytes)."""
    members = kept = total = 0
    while True:
        signature = reader.peek(4)
        if signature in CENTRAL_SIGS or (not signature and members):
            return members, kept, total
        if signature != LOCAL_HEADER_SIG:
            raise InputError(
                f"{reader.name}: not a zip stream (no local header at byte {reader.position})"
            )
        member = _read_local_header(reader, reader.name)
        if member.name.endswith("/"):
            writer.write(member, reader.chunks(member.compressed_size))
            continue
        members += 1
        total += member.size
        if writer.complete(member):
            reader.skip(member.compressed_size)
            kept += 1
        else:
            writer.write(member, reader.chunks(member.compressed_size))


def unzip_s3(
    client: Any,
    bucket: str,
    key: str,
    dest: str | os.PathLike,
    streams: int = 1,
    workers: int = 8,
) -> UnzipResult:
    """Extract ``s3://bucket/key`` (a zip) into the plain folder ``dest`` as it downloads.

    ``streams`` = 1 on a fresh start: one plain GET of the object parsed by local headers (no
    other request; a member with a data descriptor switches to the central directory). A
    rerun, or ``streams`` > 1: the central directory first (one ranged GET of the tail), then
    ranged GETs of the members still missing: one per run, or ``streams`` concurrent groups.
    ``workers`` threads create the member files."""
    dest = Path(dest)
    start_time = time.perf_counter()
    name = f"s3://{bucket}/{key}"
    with exclusive(dest):
        work = partial_dir(dest)
        fresh = not work.exists() or not any(work.iterdir())
        work.mkdir(parents=True, exist_ok=True)
        result = None
        if streams == 1 and fresh:
            try:
                with Writer(work, name, workers) as writer:
                    result = _whole_get(client, bucket, key, writer)
            except NeedsDirectory:
                pass  # the members written so far are kept by the ranged path
        if result is None:
            with Writer(work, name, workers) as writer:
                result = _ranged(client, bucket, key, writer, streams)
        _finish(work, dest)
    result.destination = str(dest)
    result.seconds = time.perf_counter() - start_time
    return result


def _whole_get(client: Any, bucket: str, key: str, writer: Writer) -> UnzipResult:
    """One GET of the whole object, extracted by local headers as it arrives."""
    try:
        resp = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore raises ClientError subclasses
        raise InputError(f"{writer.zip_name}: cannot read object ({exc})") from exc
    body = resp["Body"]
    reader = Prefetch(body.read, writer.zip_name, closer=body.close)
    try:
        members, kept, total = extract_local(reader, writer)
    finally:
        reader.close()
    return UnzipResult(writer.zip_name, "", members, total, reader.fetched, kept, 1, 0.0)


def _ranged(client: Any, bucket: str, key: str, writer: Writer, streams: int) -> UnzipResult:
    """The central directory first, then ranged GETs of the members still to extract."""
    source = S3Source(client, bucket, key)
    reader = ZipReader(source)  # one ranged GET of the tail (two for a huge directory)
    entries = list(reader.entries.values())
    for entry in entries:
        check_supported(source.name, entry.name, entry.method, entry.flags)
        writer.path(entry.name)  # refuse names leaving the store before writing anything
    done = _kept_members(writer, entries)
    runs = plan_runs(entries, done, reader.directory_offset, streams)
    fetched = [reader.bytes_read]
    lock = threading.Lock()

    def fetch(run: tuple[int, int, list[ZipEntry]]) -> None:
        run_start, run_stop, members = run
        resp = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={run_start}-{run_stop - 1}")
        body = resp["Body"]
        stream = Prefetch(body.read, source.name, run_start, closer=body.close)
        try:
            extract_run(stream, members, writer, done)
        finally:
            stream.close()
        with lock:
            fetched[0] += stream.fetched

    if len(runs) > 1 and streams > 1:
        with ThreadPoolExecutor(streams) as pool:
            list(pool.map(fetch, runs))
    else:
        for run in runs:
            fetch(run)
    for entry in entries:
        if entry.name.endswith("/"):
            writer.path(entry.name).mkdir(parents=True, exist_ok=True)
    files = [e for e in entries if not e.name.endswith("/")]
    requests = 1 + reader.reads + len(runs)  # the HEAD for the size, the tail, the runs
    return UnzipResult(
        source.name, "", len(files), sum(e.size for e in files), fetched[0], len(done),
        requests, 0.0,
    )  # fmt: skip


def unzip_stream(
    stream: BinaryIO, dest: str | os.PathLike, name: str = "<stream>", workers: int = 8
) -> UnzipResult:
    """Extract a zip read front to back from ``stream`` (no seeking) into the folder ``dest``,
    by local headers only; a rerun keeps members already complete (their bytes are read past)."""
    dest = Path(dest)
    start_time = time.perf_counter()
    with exclusive(dest):
        work = partial_dir(dest)
        work.mkdir(parents=True, exist_ok=True)
        reader = Prefetch(stream.read, name)
        try:
            with Writer(work, name, workers) as writer:
                members, kept, total = extract_local(reader, writer)
        finally:
            reader.close()
        _finish(work, dest)
    seconds = time.perf_counter() - start_time
    return UnzipResult(name, str(dest), members, total, reader.fetched, kept, 1, seconds)


LOCAL_HEADER_SIG = struct.pack("<I", LOCAL_SIG)


def _read_local_header(reader: Prefetch, zip_name: str) -> Member:
    """Parse one local header (ZIP64 extra field included) and leave ``reader`` at the data."""
    fields = LOCAL_HEADER.unpack(reader.read_exact(LOCAL_HEADER.size))
    _, _, flags, method, _, _, crc, csize, size, n_len, e_len = fields
    raw = reader.read_exact(n_len)
    name = raw.decode("utf-8" if flags & 0x800 else "cp437")
    extra = reader.read_exact(e_len)
    check_supported(zip_name, name, method, flags)
    if flags & FLAG_DATA_DESCRIPTOR:
        raise NeedsDirectory(
            f"{zip_name}: member {name!r} has a data descriptor (sizes after the data): "
            "a forward-only stream cannot extract it; use unzip_s3 (central directory first)"
        )
    if 0xFFFFFFFF in (size, csize):
        size, csize = _local_zip64(extra, size, csize, zip_name, name)
    return Member(name, method, csize, size, crc)


def _local_zip64(extra: bytes, size: int, csize: int, zip_name: str, name: str) -> tuple[int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 0x0001 and length >= 16:
            return struct.unpack_from("<QQ", extra, pos + 4)
        pos += 4 + length
    raise InputError(f"{zip_name}: member {name!r} has ZIP64 sizes without a ZIP64 extra field")
