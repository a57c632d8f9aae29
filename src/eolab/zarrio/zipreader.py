"""A fast read-only reader for zipped Zarr stores: one central-directory read, then ranged reads.

A zipped Zarr (``zip_zarr``) is one object holding thousands of STORED chunk files. Python's
``zipfile`` (and so ``zarr.storage.ZipStore``) reads a local header before every member and
serialises all reads behind one lock; on S3 that is two round trips per chunk, one at a time.
This reader parses the end-of-central-directory record (ZIP64 included) and the central
directory once, works out where every member's bytes start without touching local headers, and
then serves reads as independent byte ranges — ``os.pread`` on a local file, ranged ``GET``s on
S3 — from a thread pool, so zarr's concurrent chunk requests really run concurrently.

No library fit: ``zipfile`` needs a seekable file and reads local headers, fsspec's zip
filesystem wraps ``zipfile``, and ``ZipStore`` takes a local path only.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import zlib
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from eolab.core.errors import InputError

EOCD_SIG = b"PK\x05\x06"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
ZIP64_EOCD_SIG = b"PK\x06\x06"
CENTRAL_SIG = 0x02014B50
LOCAL_SIG = 0x04034B50
EOCD_SIZE = 22
ZIP64_LOCATOR_SIZE = 20
ZIP64_EOCD_SIZE = 56
MAX_COMMENT = 0xFFFF
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
STORED, DEFLATED = 0, 8
FLAG_DATA_DESCRIPTOR = 0x08
FLAG_ENCRYPTED = 0x01
# Bytes read from the end at open: EOCD + longest comment + ZIP64 locator and record, rounded up.
TAIL_BYTES = 1 << 17


class RangeSource(Protocol):
    """Random access to the bytes of one file or object."""

    name: str

    def size(self) -> int: ...

    def read(self, start: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class LocalSource:
    """A local file read with ``os.pread`` (thread-safe: no shared file position).

    Reads are declared random (``POSIX_FADV_RANDOM``): a patch reads a few ranges of a large
    file, and the kernel's readahead (8 MB on some disks) would read several times the bytes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = str(path)
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise InputError(f"{path}: cannot open ({exc.strerror})") from exc
        self._size = os.fstat(self._fd).st_size
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)

    def size(self) -> int:
        return self._size

    def read(self, start: int, length: int) -> bytes:
        data = os.pread(self._fd, length, start)
        if len(data) != length:
            raise InputError(f"{self.name}: short read at {start} ({len(data)} of {length} bytes)")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class S3Source:
    """An S3 object read with ranged ``GET``s through a (thread-safe) boto3 client."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.name = f"s3://{bucket}/{key}"
        self._client, self._bucket, self._key = client, bucket, key
        self._size: int | None = None

    def size(self) -> int:
        if self._size is None:
            try:
                head = self._client.head_object(Bucket=self._bucket, Key=self._key)
            except Exception as exc:  # botocore raises ClientError subclasses
                raise InputError(f"{self.name}: cannot read object ({exc})") from exc
            self._size = int(head["ContentLength"])
        return self._size

    def read(self, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        rng = f"bytes={start}-{start + length - 1}"
        resp = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=rng)
        data = resp["Body"].read()
        if len(data) != length:
            raise InputError(f"{self.name}: short ranged read {rng} ({len(data)} bytes)")
        return data

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One member of the archive, as the central directory describes it."""

    name: str
    method: int
    flags: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int | None  # None: unknown until the local header is read
    crc32: int = 0


def _find_eocd(tail: bytes, name: str) -> int:
    pos = tail.rfind(EOCD_SIG)
    while pos >= 0:
        if pos + EOCD_SIZE <= len(tail):
            (comment_len,) = struct.unpack_from("<H", tail, pos + 20)
            if pos + EOCD_SIZE + comment_len == len(tail):
                return pos
        pos = tail.rfind(EOCD_SIG, 0, pos)
    raise InputError(f"{name}: not a zip file (no end-of-central-directory record)")


def parse_end_records(tail: bytes, tail_offset: int, name: str) -> tuple[int, int, int]:
    """(entry count, central directory offset, central directory size) from the file's tail.

    ``tail`` holds the last bytes of the file, starting at absolute offset ``tail_offset``.
    ZIP64 records are used when the classic fields are saturated or a locator is present.
    """
    pos = _find_eocd(tail, name)
    disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _ = struct.unpack_from(
        "<HHHHIIH", tail, pos + 4
    )
    loc = pos - ZIP64_LOCATOR_SIZE
    if loc >= 0 and tail[loc : loc + 4] == ZIP64_LOCATOR_SIG:
        _, _, z64_offset, _ = struct.unpack_from("<IIQI", tail, loc)
        rel = z64_offset - tail_offset
        if rel < 0 or tail[rel : rel + 4] != ZIP64_EOCD_SIG:
            raise InputError(f"{name}: ZIP64 end record not found at {z64_offset}")
        (_, _, _, _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset) = struct.unpack_from(
            "<IQHHIIQQQQ", tail, rel
        )
    elif 0xFFFF in (n_total, n_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise InputError(f"{name}: ZIP64 fields without a ZIP64 locator")
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise InputError(f"{name}: multi-disk zip archives are not supported")
    return n_total, cd_offset, cd_size


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Apply the ZIP64 extended-information field (id 0x0001) to saturated sizes/offset."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if tag != 0x0001:
            continue
        fields = iter(struct.unpack_from(f"<{len(body) // 8}Q", body))
        if size == 0xFFFFFFFF:
            size = next(fields)
        if csize == 0xFFFFFFFF:
            csize = next(fields)
        if offset == 0xFFFFFFFF:
            offset = next(fields)
        break
    return size, csize, offset


def parse_central_directory(cd: bytes, count: int, cd_offset: int, name: str) -> list[ZipEntry]:
    """Every entry of the central directory, with data offsets inferred where safe.

    A member's data ends where the next local header (or the central directory) begins; without
    a data descriptor (flag bit 3) it therefore starts ``compressed_size`` bytes earlier, and no
    local header needs reading. Entries with a data descriptor keep ``data_offset=None``.
    """
    raw: list[tuple[str, int, int, int, int, int, int]] = []
    pos = 0
    for _ in range(count):
        if pos + CENTRAL_HEADER.size > len(cd):
            raise InputError(f"{name}: central directory truncated")
        fields = CENTRAL_HEADER.unpack_from(cd, pos)
        sig, _, _, flags, method, _, _, crc, csize, size, n_len, e_len, c_len, _, _, _, offset = (
            fields
        )
        if sig != CENTRAL_SIG:
            raise InputError(f"{name}: bad central directory entry at {cd_offset + pos}")
        start = pos + CENTRAL_HEADER.size
        raw_name = cd[start : start + n_len]
        entry_name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        extra = cd[start + n_len : start + n_len + e_len]
        size, csize, offset = _zip64_extra(extra, size, csize, offset)
        raw.append((entry_name, method, flags, csize, size, offset, crc))
        pos = start + n_len + e_len + c_len
    ends = sorted({r[5] for r in raw} | {cd_offset})
    next_start = {a: b for a, b in zip(ends, ends[1:], strict=False)}
    entries = []
    for entry_name, method, flags, csize, size, offset, crc in raw:
        data_offset = None
        if not flags & FLAG_DATA_DESCRIPTOR:
            data_offset = next_start[offset] - csize
        entries.append(ZipEntry(entry_name, method, flags, csize, size, offset, data_offset, crc))
    return entries


class ZipReader:
    """Random access to the members of one zip archive (local file or S3 object).

    The central directory is read once at construction; ``read`` then costs one ranged read
    (two for members with a data descriptor, whose local header must be read once).
    """

    def __init__(self, source: RangeSource) -> None:
        self.source = source
        self.name = source.name
        self.bytes_read = 0
        self.reads = 0
        self._lock = threading.Lock()
        self.entries = self._read_directory()

    @classmethod
    def open(cls, location: str | os.PathLike, s3_client: Any = None) -> ZipReader:
        """A reader for a local path or an ``s3://bucket/key`` URL (needs ``s3_client``)."""
        text = str(location)
        if text.startswith("s3://"):
            if s3_client is None:
                raise InputError(f"{text}: an S3 client is needed to read it")
            bucket, _, key = text[5:].partition("/")
            return cls(S3Source(s3_client, bucket, key))
        return cls(LocalSource(Path(text)))

    def _raw_read(self, start: int, length: int) -> bytes:
        data = self.source.read(start, length)
        with self._lock:
            self.bytes_read += len(data)
            self.reads += 1
        return data

    def _read_directory(self) -> dict[str, ZipEntry]:
        total = self.source.size()
        if total < EOCD_SIZE:
            raise InputError(f"{self.name}: not a zip file ({total} bytes)")
        tail_offset = max(0, total - TAIL_BYTES)
        tail = self._raw_read(tail_offset, total - tail_offset)
        count, cd_offset, cd_size = parse_end_records(tail, tail_offset, self.name)
        if cd_offset + cd_size > total:
            raise InputError(f"{self.name}: central directory beyond the end of the file")
        if cd_offset >= tail_offset:
            cd = tail[cd_offset - tail_offset : cd_offset - tail_offset + cd_size]
        else:
            cd = self._raw_read(cd_offset, cd_size)
        entries = parse_central_directory(cd, count, cd_offset, self.name)
        self.directory_offset = cd_offset  # where the last member's bytes end
        return {e.name: e for e in entries}

    def names(self) -> list[str]:
        return list(self.entries)

    def info(self, name: str) -> ZipEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise KeyError(f"{self.name}: no member {name!r}") from None

    def _data_offset(self, entry: ZipEntry) -> int:
        if entry.data_offset is not None:
            return entry.data_offset
        header = self._raw_read(entry.header_offset, LOCAL_HEADER.size)
        fields = LOCAL_HEADER.unpack(header)
        if fields[0] != LOCAL_SIG:
            raise InputError(f"{self.name}: bad local header for {entry.name!r}")
        offset = entry.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]
        resolved = ZipEntry(**{**_asdict(entry), "data_offset": offset})
        self.entries[entry.name] = resolved
        return offset

    def read(self, name: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a member (all of it by default); one ranged read if STORED."""
        entry = self.info(name)
        if entry.flags & FLAG_ENCRYPTED:
            raise InputError(f"{self.name}: member {name!r} is encrypted")
        end = entry.size if end is None else min(end, entry.size)
        start = min(max(start, 0), end)
        offset = self._data_offset(entry)
        if entry.method == STORED:
            return self._raw_read(offset + start, end - start)
        if entry.method == DEFLATED:
            data = zlib.decompress(self._raw_read(offset, entry.compressed_size), -15)
            return data[start:end]
        raise InputError(f"{self.name}: member {name!r} uses compression method {entry.method}")

    def read_many(self, names: Iterable[str], workers: int = 8) -> dict[str, bytes]:
        """Several whole members, read concurrently."""
        names = list(names)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return dict(zip(names, pool.map(self.read, names), strict=True))

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _asdict(entry: ZipEntry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in entry.__slots__}


def byte_bounds(byte_range: ByteRequest | None, size: int) -> tuple[int, int]:
    """``[start, end)`` of a zarr byte request within an object (or member) of ``size`` bytes."""
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        return byte_range.start, min(byte_range.end, size)
    if isinstance(byte_range, OffsetByteRequest):
        return byte_range.offset, size
    if isinstance(byte_range, SuffixByteRequest):
        return max(0, size - byte_range.suffix), size
    raise TypeError(f"unexpected byte range {byte_range!r}")


class ZipRangeStore(Store):
    """A read-only zarr v3 store over a :class:`ZipReader`; reads run concurrently in threads.

    ``prefix`` selects a folder inside the archive as the store root (empty: the archive root).
    """

    supports_writes = False
    supports_deletes = False
    supports_listing = True
    supports_partial_writes = False

    def __init__(self, reader: ZipReader, prefix: str = "", workers: int = 16) -> None:
        super().__init__(read_only=True)
        self.reader = reader
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_location(
        cls, location: str | os.PathLike, s3_client: Any = None, workers: int = 16
    ) -> ZipRangeStore:
        """A store over a local zip path or an ``s3://`` URL."""
        return cls(ZipReader.open(location, s3_client=s3_client), workers=workers)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ZipRangeStore)
            and other.reader.name == self.reader.name
            and other.prefix == self.prefix
        )

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return f"zipranges://{self.reader.name}/{self.prefix}"

    def __repr__(self) -> str:
        return f"ZipRangeStore({str(self)!r})"

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="zipranges")
            return self._pool

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _get_sync(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None
    ) -> Buffer | None:
        entry = self.reader.entries.get(self._key(key))
        if entry is None:
            return None
        start, end = byte_bounds(byte_range, entry.size)
        return prototype.buffer.from_bytes(self.reader.read(entry.name, start, end))

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if self._key(key) not in self.reader.entries:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), self._get_sync, key, prototype, byte_range
        )

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        return self._key(key) in self.reader.entries

    async def getsize(self, key: str) -> int:
        entry = self.reader.entries.get(self._key(key))
        if entry is None:
            raise FileNotFoundError(key)
        return entry.size

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    def _keys(self) -> list[str]:
        n = len(self.prefix)
        return [
            k[n:] for k in self.reader.entries if k.startswith(self.prefix) and not k.endswith("/")
        ]

    async def list(self) -> AsyncIterator[str]:
        for key in self._keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        prefix = prefix + "/" if prefix else ""
        seen: set[str] = set()
        for key in self._keys():
            if key.startswith(prefix):
                child = key[len(prefix) :].split("/", 1)[0]
                if child and child not in seen:
                    seen.add(child)
                    yield child

    def close(self) -> None:
        super().close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
        self.reader.close()
