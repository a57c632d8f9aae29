"""The fast zip reader: central directory parsed once, members served as byte ranges."""

import io
import zipfile

import numpy as np
import pytest
import zarr

from eolab.core.errors import InputError
from eolab.zarrio.zipreader import LocalSource, ZipRangeStore, ZipReader


def _payload(i: int) -> bytes:
    return (f"member {i};".encode() * (i % 7 + 1))[: 1 + (i * 37) % 300]


def _write_zip(path, n, **open_kwargs):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            with zf.open(f"d{i % 13}/m{i}", "w", **open_kwargs) as fh:
                fh.write(_payload(i))


def test_many_entries_read_back_exactly_with_one_directory_read(tmp_path):
    path = tmp_path / "many.zip"
    _write_zip(path, 3000)
    reader = ZipReader.open(path)
    at_open = reader.reads
    assert at_open <= 2  # the tail (and the central directory if it did not fit)
    assert len(reader.names()) == 3000
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            assert reader.read(name) == zf.read(name)
    assert reader.reads - at_open == 3000  # one ranged read per member, no local headers


def test_byte_ranges_within_a_member(tmp_path):
    path = tmp_path / "r.zip"
    data = bytes(range(256)) * 40
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a", b"x" * 10)
        zf.writestr("b", data)
    with ZipReader.open(path) as reader:
        assert reader.read("b", 100, 356) == data[100:356]
        assert reader.read("b", 10_000, 20_000) == data[10_000:]
        assert reader.read("b", 5) == data[5:]


def test_zip64_from_forced_local_headers(tmp_path):
    path = tmp_path / "z64.zip"
    _write_zip(path, 50, force_zip64=True)
    with ZipReader.open(path) as reader, zipfile.ZipFile(path) as zf:
        assert sorted(reader.names()) == sorted(zf.namelist())
        for name in zf.namelist():
            assert reader.read(name) == zf.read(name)


def test_zip64_end_records_with_more_than_65535_entries(tmp_path):
    path = tmp_path / "huge.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(65_600):
            zf.writestr(f"e{i}", i.to_bytes(4, "little"))
    raw = path.read_bytes()
    assert b"PK\x06\x06" in raw[-200:]  # the ZIP64 end record is really there
    with ZipReader.open(path) as reader:
        assert len(reader.entries) == 65_600
        for i in (0, 1, 65_535, 65_599):
            assert reader.read(f"e{i}") == i.to_bytes(4, "little")


class _Unseekable(io.RawIOBase):
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def test_data_descriptor_and_deflated_members(tmp_path):
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:
        zf.writestr(zipfile.ZipInfo("stored"), b"s" * 1000, compress_type=zipfile.ZIP_STORED)
        zf.writestr(zipfile.ZipInfo("deflated"), b"abc" * 1000, compress_type=zipfile.ZIP_DEFLATED)
    path = tmp_path / "stream.zip"
    path.write_bytes(bytes(sink.buf))
    with ZipReader.open(path) as reader:
        assert all(e.flags & 0x08 for e in reader.entries.values())  # data descriptors
        assert reader.read("stored") == b"s" * 1000
        assert reader.read("deflated") == b"abc" * 1000
        assert reader.read("deflated", 3, 9) == b"abcabc"


def test_not_a_zip_names_the_file(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"definitely not a zip archive" * 10)
    with pytest.raises(InputError, match="bad.zip"):
        ZipReader.open(bad)
    with pytest.raises(InputError, match="missing.zip"):
        LocalSource(tmp_path / "missing.zip")


def test_truncated_zip_is_an_input_error(tmp_path):
    path = tmp_path / "t.zip"
    _write_zip(path, 20)
    raw = path.read_bytes()
    path.write_bytes(raw[:-30])
    with pytest.raises(InputError, match="t.zip"):
        ZipReader.open(path)


def _zarr_zip(tmp_path):
    store = tmp_path / "cube.zarr"
    root = zarr.open_group(store, mode="w")
    rng = np.random.default_rng(0)
    plain = rng.integers(0, 60000, (6, 3, 40, 40), dtype="uint16")
    a = root.create_array(
        "t/2024/10m/data", shape=plain.shape, chunks=(2, 3, 16, 16), dtype="uint16"
    )
    a[:] = plain
    s = root.create_array(
        "sharded", shape=plain.shape, chunks=(1, 3, 8, 8), shards=(6, 3, 40, 40), dtype="uint16"
    )
    s[:] = plain
    path = tmp_path / "cube.zarr.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(store.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(store).as_posix())
    return path, plain


def test_zarr_opens_the_zip_through_the_store(tmp_path):
    path, plain = _zarr_zip(tmp_path)
    store = ZipRangeStore.from_location(path)
    root = zarr.open_group(store, mode="r")
    assert set(root.group_keys()) == {"t"}
    np.testing.assert_array_equal(
        root["t/2024/10m/data"][:, :, 5:30, 7:39], plain[:, :, 5:30, 7:39]
    )
    # sharded: zarr asks for byte ranges inside one member (the shard index, then chunks)
    np.testing.assert_array_equal(root["sharded"][2:4, :, 9:20, 0:40], plain[2:4, :, 9:20, 0:40])
    assert store.read_only and not store.supports_writes
    with pytest.raises(ValueError):
        zarr.open_group(store, mode="r")["t/2024/10m/data"][0, 0, 0, 0] = 1
    store.close()


def test_same_bytes_as_zarrs_own_zipstore(tmp_path):
    path, _ = _zarr_zip(tmp_path)
    ours = zarr.open_array(ZipRangeStore.from_location(path), path="t/2024/10m/data", mode="r")
    theirs = zarr.open_array(
        zarr.storage.ZipStore(path, mode="r"), path="t/2024/10m/data", mode="r"
    )
    np.testing.assert_array_equal(ours[:], theirs[:])
