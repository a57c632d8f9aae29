"""The sharded-as-chunks view: same pixels as zarr's own sharding path, indexes read once."""

import json
import math

import numpy as np
import pytest
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore

from eolab.core.errors import InputError
from eolab.lab.patchload import CountingStore
from eolab.zarrio.shardview import RangeReadLocalStore, ShardedAsChunks

SHAPE, SHARDS, CHUNKS = (5, 3, 70, 90), (4, 3, 32, 64), (2, 3, 16, 16)


class IndexCounter(CountingStore):
    """Counts the suffix-range reads (shard indexes) besides all requests."""

    def __init__(self, store):
        super().__init__(store)
        self.index_reads = 0

    async def get(self, key, prototype, byte_range=None):
        if isinstance(byte_range, SuffixByteRequest):
            self.index_reads += 1
        return await super().get(key, prototype, byte_range)


def write_store(root, separator="/"):
    """A group with a sharded array (partial edge shards, one region never written), a plain
    array, consolidated metadata; returns the array's values."""
    rng = np.random.default_rng(3)
    values = rng.integers(1, 60000, SHAPE, dtype="uint16")
    values[:, :, 40:, :] = 0  # fill value: chunks there are not written
    group = zarr.open_group(LocalStore(root), mode="w", zarr_format=3)
    arr = group.create_array(
        "cube/data",
        shape=SHAPE,
        dtype="uint16",
        chunks=CHUNKS,
        shards=SHARDS,
        fill_value=0,
        chunk_key_encoding={"name": "default", "separator": separator},
    )
    arr[...] = values
    group.create_array("cube/x", shape=(90,), dtype="float64", chunks=(90,))[...] = np.arange(90)
    zarr.consolidate_metadata(LocalStore(root))
    return values


def selections():
    rng = np.random.default_rng(5)
    yield (slice(None),) * 4
    for _ in range(12):
        start = [int(rng.integers(0, n)) for n in SHAPE]
        stop = [int(rng.integers(s + 1, n + 1)) for s, n in zip(start, SHAPE, strict=True)]
        yield tuple(slice(a, b) for a, b in zip(start, stop, strict=True))


@pytest.mark.parametrize("separator", ["/", "."])
def test_view_reads_the_same_pixels_as_zarr_sharding(tmp_path, separator):
    values = write_store(tmp_path / "s.zarr", separator)
    direct = zarr.open_array(LocalStore(tmp_path / "s.zarr", read_only=True), path="cube/data")
    view = ShardedAsChunks(RangeReadLocalStore(tmp_path / "s.zarr"))
    viewed = zarr.open_array(view, path="cube/data", mode="r")
    assert viewed.shards is None and viewed.chunks == CHUNKS  # zarr sees plain chunks
    assert direct.shards == SHARDS
    for sel in selections():
        np.testing.assert_array_equal(viewed[sel], values[sel])
        np.testing.assert_array_equal(viewed[sel], direct[sel])


def test_view_through_consolidated_metadata_and_plain_arrays_pass_through(tmp_path):
    values = write_store(tmp_path / "s.zarr")
    view = ShardedAsChunks(RangeReadLocalStore(tmp_path / "s.zarr"))
    group = zarr.open_group(view, mode="r", use_consolidated=True)
    data = group["cube/data"]
    assert data.chunks == CHUNKS
    np.testing.assert_array_equal(data[...], values)
    np.testing.assert_array_equal(group["cube/x"][...], np.arange(90))
    plain_meta = (tmp_path / "s.zarr" / "cube" / "x" / "zarr.json").read_bytes()
    proto = default_buffer_prototype()
    assert sync(view.get("cube/x/zarr.json", proto)).to_bytes() == plain_meta


def test_each_shard_index_is_read_once(tmp_path):
    values = write_store(tmp_path / "s.zarr")
    counter = IndexCounter(RangeReadLocalStore(tmp_path / "s.zarr"))
    arr = zarr.open_array(ShardedAsChunks(counter), path="cube/data", mode="r")
    np.testing.assert_array_equal(arr[...], values)
    shard_grid = math.prod(-(-n // s) for n, s in zip(SHAPE, SHARDS, strict=True))
    written = sum(p.is_file() for p in (tmp_path / "s.zarr" / "cube" / "data" / "c").rglob("*"))
    assert written < shard_grid  # some shards were never written: their index reads find none
    assert counter.index_reads == shard_grid
    np.testing.assert_array_equal(arr[1:3, :, 5:30, 10:80], values[1:3, :, 5:30, 10:80])
    assert counter.index_reads == shard_grid  # nothing read twice


def test_corrupt_shard_index_is_a_clear_error(tmp_path):
    write_store(tmp_path / "s.zarr")
    shard = tmp_path / "s.zarr" / "cube" / "data" / "c" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the index, before its crc32c
    shard.write_bytes(bytes(raw))
    arr = zarr.open_array(
        ShardedAsChunks(RangeReadLocalStore(tmp_path / "s.zarr")), path="cube/data", mode="r"
    )
    with pytest.raises(InputError, match="checksum"):
        arr[0, 0, :16, :16]


def test_arrays_the_view_does_not_cover_pass_through(tmp_path):
    store = LocalStore(tmp_path / "n.zarr")
    arr = zarr.create_array(
        store,
        name="nested",
        shape=(64,),
        dtype="int32",
        chunks=(8,),
        shards=(32,),
        fill_value=0,
        chunk_key_encoding={"name": "v2"},
    )
    arr[...] = np.arange(64)
    view = ShardedAsChunks(RangeReadLocalStore(tmp_path / "n.zarr"))
    meta = json.loads(sync(view.get("nested/zarr.json", default_buffer_prototype())).to_bytes())
    assert meta["codecs"][0]["name"] == "sharding_indexed"  # v2 chunk keys: left to zarr
    np.testing.assert_array_equal(zarr.open_array(view, path="nested")[...], np.arange(64))


def test_range_read_local_store_serves_every_kind_of_range(tmp_path):
    (tmp_path / "a").mkdir()
    body = bytes(range(256)) * 40
    (tmp_path / "a" / "blob").write_bytes(body)
    store = RangeReadLocalStore(tmp_path)
    proto = default_buffer_prototype()
    try:
        cases = {
            RangeByteRequest(10, 300): body[10:300],
            RangeByteRequest(10_000, 20_000): body[10_000:],
            OffsetByteRequest(9_000): body[9_000:],
            SuffixByteRequest(77): body[-77:],
            None: body,
        }
        for request, expected in cases.items():
            assert sync(store.get("a/blob", proto, request)).to_bytes() == expected
        assert sync(store.get("a/missing", proto, RangeByteRequest(0, 4))) is None
    finally:
        store.close()


def test_shard_index_at_the_start_of_the_shard(tmp_path):
    from zarr.codecs import BloscCodec, BytesCodec, ShardingCodec, ShardingCodecIndexLocation

    sharding = ShardingCodec(
        chunk_shape=(8, 16),
        codecs=[BytesCodec(), BloscCodec()],
        index_location=ShardingCodecIndexLocation.start,
    )
    arr = zarr.create(
        shape=(50, 70),
        chunks=(32, 32),
        dtype="int32",
        fill_value=0,
        zarr_format=3,
        store=LocalStore(tmp_path / "s.zarr"),
        path="a",
        codecs=[sharding],
    )
    values = np.arange(50 * 70, dtype="int32").reshape(50, 70)
    arr[...] = values
    viewed = zarr.open_array(ShardedAsChunks(RangeReadLocalStore(tmp_path / "s.zarr")), path="a")
    assert viewed.shards is None and viewed.chunks == (8, 16)
    np.testing.assert_array_equal(viewed[...], values)
    np.testing.assert_array_equal(viewed[3:40, 5:66], values[3:40, 5:66])
