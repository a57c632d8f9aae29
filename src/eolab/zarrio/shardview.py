"""A read-only view of a Zarr v3 store in which every sharded array looks like a plain chunked
array of its inner chunks.

Why: zarr 3.1 reads the inner chunks of one shard one after another and copies each decoded
chunk twice (into a shard-sized buffer, then into the result), on the event-loop thread. Seen
through this view, zarr's ordinary chunk path fetches the same byte ranges of the same shard
objects (the shard index once per shard, then one ranged read per inner chunk), all of them
concurrently, and copies each decoded chunk once. The stored bytes are the same either way;
only the order and the copies differ.

How: when an array's ``zarr.json`` (or a group's consolidated metadata) passes through, a
sharded array's metadata is rewritten to its inner chunk shape and inner codecs, and the
array is remembered. A read of inner chunk ``c/t/b/y/x`` becomes a ranged read of its shard,
the range taken from the shard index (read once per shard, crc32c checked, kept for the view's
lifetime: a few KB per shard). Arrays whose layout this does not cover (nested sharding, other
chunk key encodings or index codecs) pass through unchanged and zarr reads them as before.

``RangeReadLocalStore`` serves the ranged reads of local stores from one open, random-access
file per shard; ``read_store`` opens a local or ``s3://`` store through both.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.abc.store import ByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore, WrapperStore

from eolab.core.errors import InputError
from eolab.zarrio.zipreader import LocalSource, byte_bounds

EMPTY = 2**64 - 1  # offset and length of a chunk that was never written
CRC_BYTES = 4


@dataclass(frozen=True)
class ShardLayout:
    """Where an inner chunk of a sharded array lives."""

    chunks_per_shard: tuple[int, ...]
    separator: str
    index_at_end: bool
    index_crc: bool

    @property
    def index_nbytes(self) -> int:
        return 16 * math.prod(self.chunks_per_shard) + (CRC_BYTES if self.index_crc else 0)

    def locate(self, coords: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        """(shard key suffix, position in the shard) of an inner chunk."""
        shard = tuple(c // n for c, n in zip(coords, self.chunks_per_shard, strict=True))
        inner = tuple(c % n for c, n in zip(coords, self.chunks_per_shard, strict=True))
        return "c" + "".join(f"{self.separator}{s}" for s in shard), inner


def _layout(meta: dict[str, Any]) -> tuple[ShardLayout, dict[str, Any]] | None:
    """The layout and the rewritten metadata of a sharded array, or None to pass it through."""
    codecs = meta.get("codecs") or []
    encoding = meta.get("chunk_key_encoding") or {}
    if meta.get("node_type") != "array" or len(codecs) != 1:
        return None
    if codecs[0].get("name") != "sharding_indexed" or encoding.get("name") != "default":
        return None
    config = codecs[0].get("configuration", {})
    inner_codecs = config.get("codecs", [])
    index_names = [c.get("name") for c in config.get("index_codecs", [])]
    little = all(
        c.get("configuration", {}).get("endian", "little") == "little"
        for c in config.get("index_codecs", [])
        if c.get("name") == "bytes"
    )
    if index_names not in (["bytes"], ["bytes", "crc32c"]) or not little:
        return None
    if any(c.get("name") == "sharding_indexed" for c in inner_codecs):
        return None
    shard_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    chunk_shape = config["chunk_shape"]
    layout = ShardLayout(
        chunks_per_shard=tuple(s // c for s, c in zip(shard_shape, chunk_shape, strict=True)),
        separator=encoding.get("configuration", {}).get("separator", "/"),
        index_at_end=config.get("index_location", "end") == "end",
        index_crc=index_names[-1] == "crc32c",
    )
    rewritten = dict(meta)
    rewritten["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": chunk_shape}}
    rewritten["codecs"] = inner_codecs
    return layout, rewritten


def _array_prefixes(key: str) -> list[str]:
    """Where the array path of chunk ``key`` may end, for "/" and "." separated chunk keys."""
    parts = key.split("/")
    prefixes = ["/".join(parts[:-1]) + "/" if len(parts) > 1 else ""]  # ".../c.0.1"
    digits = 0
    for i in range(len(parts) - 1, -1, -1):  # ".../c/0/1": the last "c" followed by numbers
        if parts[i] == "c" and digits:
            prefixes.append("/".join(parts[:i]) + "/" if i else "")
            break
        if not parts[i].isdigit():
            break
        digits += 1
    return prefixes


def _chunk_coords(key: str, prefix: str, separator: str) -> tuple[int, ...] | None:
    rest = key[len(prefix) :]
    if not rest.startswith("c" + separator):
        return None
    parts = rest[2:].split(separator)
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


class ShardedAsChunks(WrapperStore):
    """See the module docstring. Read-only; wrap the store a loader reads from."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._arrays: dict[str, ShardLayout] = {}  # array path prefix ("a/b/") -> layout
        self._indexes: dict[str, np.ndarray] = {}  # shard key -> (..., 2) offsets and lengths
        self._pending: dict[str, asyncio.Future[np.ndarray]] = {}

    async def get(self, key: str, prototype: Any, byte_range: ByteRequest | None = None) -> Any:
        if key == "zarr.json" or key.endswith("/zarr.json"):
            return await self._metadata(key, prototype, byte_range)
        target = self._chunk_target(key)
        if target is None:
            return await self._store.get(key, prototype, byte_range)
        layout, shard_key, inner = target
        index = await self._index(layout, shard_key, prototype)
        start, length = (int(v) for v in index[inner])
        if start == EMPTY and length == EMPTY:
            return None  # zarr fills it with the fill value, as the sharding codec would
        begin, end = byte_bounds(byte_range, length)  # within the chunk, then in the shard
        return await self._store.get(
            shard_key, prototype, RangeByteRequest(start + begin, start + end)
        )

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
        return list(
            await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges))
        )

    async def _metadata(self, key: str, prototype: Any, byte_range: ByteRequest | None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        if buf is None or byte_range is not None:
            return buf
        meta = json.loads(buf.to_bytes())
        prefix = key[: -len("zarr.json")]
        if not self._rewrite(prefix, meta):
            return buf
        return prototype.buffer.from_bytes(json.dumps(meta).encode())

    def _rewrite(self, prefix: str, meta: dict[str, Any]) -> bool:
        """Rewrite ``meta`` (an array, or a group's consolidated entries) in place; changed?"""
        changed = False
        found = _layout(meta)
        if found is not None:
            layout, rewritten = found
            self._arrays[prefix] = layout
            meta.clear()
            meta.update(rewritten)
            changed = True
        consolidated = (meta.get("consolidated_metadata") or {}).get("metadata") or {}
        for name, child in consolidated.items():
            # nested entries are listed flat under the consolidating group ("a", "a/b", ...)
            found = _layout(child)
            if found is not None:
                self._arrays[f"{prefix}{name}/"] = found[0]
                consolidated[name] = found[1]
                changed = True
        return changed

    def _chunk_target(self, key: str) -> tuple[ShardLayout, str, tuple[int, ...]] | None:
        """(layout, shard key, position in the shard) if ``key`` is an inner chunk of a viewed
        array."""
        for prefix in _array_prefixes(key):
            layout = self._arrays.get(prefix)
            if layout is not None:
                coords = _chunk_coords(key, prefix, layout.separator)
                if coords is None or len(coords) != len(layout.chunks_per_shard):
                    return None
                suffix, inner = layout.locate(coords)
                return layout, prefix + suffix, inner
        return None

    async def _index(self, layout: ShardLayout, shard_key: str, prototype: Any) -> np.ndarray:
        if shard_key in self._indexes:
            return self._indexes[shard_key]
        pending = self._pending.get(shard_key)
        if pending is None:  # the first chunk of this shard reads the index; the others wait
            pending = asyncio.ensure_future(self._read_index(layout, shard_key, prototype))
            self._pending[shard_key] = pending
        try:
            index = await pending
        finally:
            self._pending.pop(shard_key, None)
        self._indexes[shard_key] = index
        return index

    async def _read_index(self, layout: ShardLayout, shard_key: str, prototype: Any) -> np.ndarray:
        n = layout.index_nbytes
        request = SuffixByteRequest(n) if layout.index_at_end else RangeByteRequest(0, n)
        buf = await self._store.get(shard_key, prototype, request)
        if buf is None:  # no shard object: every chunk in it is empty
            return np.full((*layout.chunks_per_shard, 2), EMPTY, dtype="<u8")
        raw = buf.to_bytes()
        if len(raw) != n:
            raise InputError(f"{shard_key}: shard index is {len(raw)} bytes, expected {n}")
        if layout.index_crc:
            import google_crc32c

            body, stored = raw[:-CRC_BYTES], raw[-CRC_BYTES:]
            if np.uint32(google_crc32c.value(body)).tobytes() != stored:
                raise InputError(f"{shard_key}: shard index checksum does not match")
            raw = body
        return np.frombuffer(raw, dtype="<u8").reshape(*layout.chunks_per_shard, 2)


class RangeReadLocalStore(LocalStore):
    """A read-only local zarr store whose ranged reads (shard indexes and the chunks inside a
    shard) go through one open, random-access :class:`eolab.zarrio.zipreader.LocalSource` per file
    instead of an open, seek and buffered read per request."""

    def __init__(self, root: str | os.PathLike) -> None:
        super().__init__(root, read_only=True)
        self._sources: dict[str, Any] = {}
        self._sources_lock = threading.Lock()

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        if byte_range is None:
            return await super().get(key, prototype)
        if prototype is None:
            prototype = default_buffer_prototype()
        try:
            data = await asyncio.to_thread(self._read_range, key, byte_range)
        except FileNotFoundError:
            return None
        return prototype.buffer.from_bytes(data)

    def _source(self, key: str) -> Any:
        with self._sources_lock:
            if key not in self._sources:
                path = self.root / key
                if not path.is_file():
                    raise FileNotFoundError(path)
                self._sources[key] = LocalSource(path)
            return self._sources[key]

    def _read_range(self, key: str, byte_range: Any) -> bytes:
        source = self._source(key)
        start, end = byte_bounds(byte_range, source.size())
        return source.read(start, max(0, end - start))

    def close(self) -> None:
        with self._sources_lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()
        super().close()


def base_store(location: str | os.PathLike, s3: Any = None) -> Any:
    """A read-only zarr store for a local path or an ``s3://bucket/key`` URL (through ``s3``, an
    :class:`eolab.core.s3.S3Access`, or s3fs's defaults); local ranged reads as above."""
    text = str(location)
    if text.startswith("s3://"):
        import s3fs
        from zarr.storage import FsspecStore

        fs = (
            s3.filesystem(asynchronous=True)
            if s3 is not None
            else s3fs.S3FileSystem(asynchronous=True)
        )
        return FsspecStore(fs, path=text[len("s3://") :], read_only=True)
    return RangeReadLocalStore(text)


def read_store(location: str | os.PathLike, s3: Any = None) -> ShardedAsChunks:
    """``base_store`` with sharded arrays seen as chunks."""
    return ShardedAsChunks(base_store(location, s3))


def close_s3_session(store: Any) -> None:
    """Close the aiohttp session of an asynchronous s3fs behind a store opened by
    ``base_store`` (in zarr's event loop, where it was opened); other stores: nothing to do."""
    while isinstance(store, WrapperStore):
        store = store._store
    fs = getattr(store, "fs", None)
    creator = getattr(fs, "_s3creator", None)
    if creator is not None:
        from zarr.core.sync import sync

        sync(creator.__aexit__(None, None, None))
        fs._s3 = None
