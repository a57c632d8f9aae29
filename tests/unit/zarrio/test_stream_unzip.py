"""Streamed unzip S3 -> plain Zarr folder: equal to the plain store, resumable, clear errors.

Real parts: zips written by ``zip_store`` (and by ``zipfile`` for data descriptors, ZIP64 and
deflate), a real moto S3 server over HTTP, real files. The kill -9 tests are in
``tests/faults/test_stream_unzip_kill.py``."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
import zlib

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from eolab.core.errors import InputError
from eolab.fixtures.random_zarr import random_store
from eolab.zarrio import stream_unzip
from eolab.zarrio.stream_unzip import partial_dir, plan_runs, unzip_s3, unzip_stream
from eolab.zarrio.zipreader import ZipReader
from eolab.zarrio.zipzarr import zip_store

BUCKET = "unzip"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A ~3 MB random store of 32 KB chunks, and its zip."""
    root = tmp_path_factory.mktemp("plain")
    store = random_store(root / "cube.zarr", 3 << 20, seed=5, chunk=128)
    zipped = root / "cube.zarr.zip"
    zip_store(store, zipped)
    return store, zipped


@pytest.fixture()
def uploaded(s3_client, plain):
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.upload_file(str(plain[1]), BUCKET, "cube.zarr.zip")
    return s3_client


def tree(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_same_store(got, want):
    assert tree(got) == tree(want)  # byte for byte, same names
    a, b = zarr.open_group(got, mode="r"), zarr.open_group(want, mode="r")
    names = sorted(name for name, _ in b.arrays())
    assert names and sorted(name for name, _ in a.arrays()) == names
    for name in names:
        np.testing.assert_array_equal(a[name][:], b[name][:])
    np.testing.assert_array_equal(a["aux/mask"][:], b["aux/mask"][:])


@pytest.mark.parametrize("streams", [1, 3])
def test_streamed_store_equals_plain_store(uploaded, plain, tmp_path, streams):
    store, zipped = plain
    dest = tmp_path / "out" / "cube.zarr"
    result = unzip_s3(uploaded, BUCKET, "cube.zarr.zip", dest, streams=streams)
    assert_same_store(dest, store)
    n_files = len(tree(store))
    assert (result.members, result.bytes, result.kept) == (
        n_files,
        sum(map(len, tree(store).values())),
        0,
    )
    # streams=1 fresh: one plain GET; 3: HEAD + tail + three ranged groups
    assert result.requests == (1 if streams == 1 else 5)
    assert result.fetched >= zipped.stat().st_size - 200_000
    assert not partial_dir(dest).exists()
    assert not list(dest.rglob("*.part"))


def test_unzip_stream_reads_a_forward_only_stream(plain, tmp_path):
    store, zipped = plain
    with open(zipped, "rb") as fh:
        result = unzip_stream(fh, tmp_path / "s.zarr", name=str(zipped))
    assert_same_store(tmp_path / "s.zarr", store)
    assert result.members == len(tree(store))


class Unseekable(io.RawIOBase):
    """A write-only stream without seek: zipfile then writes data descriptors."""

    def __init__(self):
        self.buffer = io.BytesIO()

    def writable(self):
        return True

    def write(self, b):
        return self.buffer.write(b)


def descriptor_zip() -> tuple[bytes, dict[str, bytes]]:
    """Members with data descriptors, ZIP64 extras and deflate, written by zipfile."""
    rng = np.random.default_rng(3)
    members = {
        f"a/c/{i}": rng.integers(0, 255, 40_000 + i, dtype=np.uint8).tobytes() for i in range(12)
    }
    members["zarr.json"] = json.dumps({"zarr_format": 3, "node_type": "group"}).encode()
    members["a/text"] = b"compressible " * 5000
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == "a/text":
                info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=name.endswith("/3")) as fh:
                fh.write(data)
    return sink.buffer.getvalue(), members


def test_data_descriptors_switch_to_the_central_directory(s3_client, tmp_path):
    data, members = descriptor_zip()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert all(i.flag_bits & 0x08 for i in infos)  # really data descriptors
        assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_object(Bucket=BUCKET, Key="dd.zip", Body=data)
    dest = tmp_path / "dd"
    result = unzip_s3(s3_client, BUCKET, "dd.zip", dest)
    assert tree(dest) == members
    assert result.requests > 1  # the plain GET gave up at the first data descriptor
    with pytest.raises(InputError, match="data descriptor"):
        unzip_stream(io.BytesIO(data), tmp_path / "forward")


def test_zip64_local_headers_and_deflate_by_local_headers(s3_client, tmp_path):
    rng = np.random.default_rng(4)
    members = {f"c/{i}": rng.bytes(30_000 + i) for i in range(6)} | {"t": b"abc" * 9000}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:  # seekable: no data descriptors
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if name == "t" else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                fh.write(data)
    data = buf.getvalue()
    # every local header says "sizes in the ZIP64 extra field"
    assert data[18:26] == b"\xff" * 8 and data.count(b"PK\x03\x04") == len(members)
    unzip_stream(io.BytesIO(data), tmp_path / "a")
    assert tree(tmp_path / "a") == members
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_object(Bucket=BUCKET, Key="z64.zip", Body=data)
    assert unzip_s3(s3_client, BUCKET, "z64.zip", tmp_path / "b").requests == 1
    assert tree(tmp_path / "b") == members


def corrupt_copy(zipped, tmp_path, member):
    """A copy of the zip with one byte of ``member``'s data flipped."""
    with ZipReader.open(zipped) as reader:
        entry = reader.info(member)
    data = bytearray(zipped.read_bytes())
    data[entry.data_offset + entry.size // 2] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("streams", [1, 2])
def test_corrupt_member_is_a_clear_error_and_no_store_appears(s3_client, plain, tmp_path, streams):
    _, zipped = plain
    bad = corrupt_copy(zipped, tmp_path, "band00/c/5/0")
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.upload_file(str(bad), BUCKET, "bad.zip")
    dest = tmp_path / "out"
    with pytest.raises(InputError) as err:
        unzip_s3(s3_client, BUCKET, "bad.zip", dest, streams=streams)
    message = str(err.value)
    assert "s3://unzip/bad.zip" in message and "'band00/c/5/0'" in message and "CRC-32" in message
    assert not dest.exists()
    assert not (partial_dir(dest) / "band00/c/5/0").exists()


def test_truncated_and_foreign_objects_are_clear_errors(s3_client, plain, tmp_path):
    _, zipped = plain
    data = zipped.read_bytes()
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_object(Bucket=BUCKET, Key="cut.zip", Body=data[: len(data) // 2])
    s3_client.put_object(Bucket=BUCKET, Key="noise.zip", Body=np.random.default_rng(1).bytes(9000))
    with pytest.raises(InputError, match=r"truncated: stream ended at byte \d+"):
        unzip_s3(s3_client, BUCKET, "cut.zip", tmp_path / "cut")
    with pytest.raises(InputError, match="not a zip"):
        unzip_s3(s3_client, BUCKET, "noise.zip", tmp_path / "noise")
    with pytest.raises(InputError, match="not a zip file"):  # the central directory path
        unzip_s3(s3_client, BUCKET, "noise.zip", tmp_path / "noise2", streams=2)
    assert not (tmp_path / "cut").exists()


def test_member_names_leaving_the_store_are_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("zarr.json", b"{}")
        zf.writestr("../escaped", b"x")
    with pytest.raises(InputError, match="leaves the store"):
        unzip_stream(io.BytesIO(buf.getvalue()), tmp_path / "d" / "store")
    assert not (tmp_path / "d" / "escaped").exists()


def test_rerun_keeps_crc_checked_members_and_fetches_only_the_rest(
    uploaded, plain, tmp_path, monkeypatch
):
    store, zipped = plain
    dest = tmp_path / "cube.zarr"
    work = partial_dir(dest)
    files = sorted(tree(store))
    kept = files[: len(files) // 2]  # an earlier run finished the first half (zip order differs)
    for name in kept:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store / name, work / name)
    damaged = kept[-1]  # right size, wrong bytes: must be fetched again
    (work / damaged).write_bytes(bytes(len((store / damaged).read_bytes())))
    (work / "band00" / "c" / "junk.part").parent.mkdir(parents=True, exist_ok=True)
    (work / "band00" / "c" / "junk.part").write_bytes(b"half")
    monkeypatch.setattr(stream_unzip, "MAX_SKIP", 0)  # every kept member splits the GETs
    result = unzip_s3(uploaded, BUCKET, "cube.zarr.zip", dest)
    assert result.kept == len(kept) - 1
    assert result.fetched < zipped.stat().st_size * 0.75
    leftover = dest / "band00" / "c" / "junk.part"
    leftover.unlink()  # a stray file of the killed run stays where it was; nothing else differs
    assert_same_store(dest, store)


def test_plan_runs_cover_every_missing_member_once_in_balanced_groups(plain):
    _, zipped = plain
    with ZipReader.open(zipped) as reader:
        entries = list(reader.entries.values())
        end = reader.directory_offset
    done = {e.name for e in entries[10:20]}
    for streams in (1, 2, 4):
        runs = plan_runs(entries, done, end, streams)
        names = [e.name for _, _, members in runs for e in members if e.name not in done]
        assert sorted(names) == sorted(e.name for e in entries if e.name not in done)
        for start, stop, members in runs:
            assert start == members[0].header_offset < stop <= end
        if streams == 4:
            sizes = [stop - start for start, stop, _ in runs]
            assert len(runs) >= 4 and max(sizes) < 2.5 * min(sizes)


def test_crc_in_zip_entries_matches_the_data(plain):
    store, zipped = plain
    with ZipReader.open(zipped) as reader:
        for entry in list(reader.entries.values())[:20]:
            assert entry.crc32 == zlib.crc32((store / entry.name).read_bytes())


def test_stage_unzip_s3_writes_the_staging_timing(
    plain, tmp_path, s3_server, s3_client, monkeypatch
):
    # s3_client: the shared server is emptied afterwards
    from eolab.cli.stage import stage
    from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "LOCAL_SCRATCH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
    _, zipped = plain
    out, temp = tmp_path / "unzip_s3.json", tmp_path / "temp"
    args = ["unzip-s3", "--format", "zarr-zip", "--input", zipped, "--tile", "35VLH",
            "--year", "2024", "--timing", out, "--temp-dir", temp, "--streams", "2",
            "--s3-endpoint-url", s3_server.endpoint_url, "--s3-bucket", "unzip-stage"]  # fmt: skip
    result = CliRunner().invoke(stage, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    with zipfile.ZipFile(zipped) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    assert doc["operation"] == "unzip-s3" and doc["format"] == "zarr-zip"
    assert doc["objects"] == len(infos) and doc["bytes"] == sum(i.file_size for i in infos)
    assert doc["storage"] == {"from": "s3", "to": "temp"} and doc["workers"] == 2
    assert doc["extra"]["requests"] >= 3 and doc["uploaded_first"]["objects"] == 1
    assert {"seconds", "mb_per_s", "objects_per_s", "environment", "temp_source"} <= set(doc)
    assert list(temp.iterdir()) == []


def test_bench_unzip_s3_compares_every_variant_on_the_same_server(
    tmp_path, s3_server, s3_client, monkeypatch
):
    # s3_client: the shared server is emptied afterwards
    from eolab.cli import main
    from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
    out = tmp_path / "bench.json"
    main(["bench", "unzip-s3", "--size-mb", "2", "--repeats", "1", "--streams", "1,2", "--http",
          "--temp-dir", str(tmp_path / "t"), "--s3-endpoint-url", s3_server.endpoint_url,
          "--s3-bucket", "bench", "--out", str(out)])  # fmt: skip
    doc = json.loads(out.read_text())
    variants = [
        "download+unzip",
        "get+unzip",
        "stream",
        "ranged-2",
        "http-get+unzip",
        "http-stream",
    ]
    assert sorted(doc["results"]) == sorted(variants)
    assert doc["members"] > 10 and doc["zip_bytes"] > 2 << 20
    base = doc["results"]["download+unzip"]["median_s"]
    stream = doc["results"]["stream"]
    assert stream["ratio_to_download_unzip"] == pytest.approx(stream["median_s"] / base)
    assert stream["paired_with"] == "get+unzip"
    assert doc["results"]["http-stream"]["paired_with"] == "http-get+unzip"
    assert list((tmp_path / "t").iterdir()) == []
