"""STAC dataset downloader against real servers on 127.0.0.1.

A fault-injecting threaded HTTP server (Range, cuts, 429/5xx/403, corrupt bytes) serves a
generated dataset; nginx (when installed) serves the real su_sar archive rewritten to local URLs;
moto_server serves s3:// hrefs.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from eolab.download.fetch import ChecksumMismatch, Fetcher, FetchError, RetryPolicy
from eolab.download.filters import make_filters
from eolab.download.stac_dataset import DownloadFailed, StacDatasetOptions, download_stac_dataset
from eolab.fixtures.localhttp import Fault, LocalHTTPServer, NginxServer, nginx_available
from eolab.fixtures.stac_dataset import footprint, generate, make_archive

pytestmark = pytest.mark.integration

N = 20
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A generated dataset (catalog + archive) behind the fault-injecting server."""
    root = tmp_path_factory.mktemp("www")
    with LocalHTTPServer(root) as server:
        gen = generate(root / "gen", items=N, base_url=f"{server.url}/gen", asset_bytes=4096)
        make_archive(root / "gen" / "catalog", root / "archives" / "gen_dataset.tar.gz", "gen_main")
        yield server, gen, root
        server.clear()


@pytest.fixture()
def server(served):
    srv = served[0]
    srv.clear()
    yield srv
    srv.clear()


def options(out: Path, **kwargs) -> StacDatasetOptions:
    return StacDatasetOptions(out=out, progress=False, retry=FAST, **kwargs)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def asset_gets(server) -> list:
    return [r for r in server.requests if r.method == "GET" and "/files/" in r.path]


def test_archive_url_full_download_then_cheap_rerun(served, server, tmp_path):
    _, gen, _ = served
    url = f"{server.url}/archives/gen_dataset.tar.gz"
    summary = download_stac_dataset(url, options(tmp_path))
    folder = tmp_path / "gen_dataset"
    assert summary["catalog"]["items"] == N and summary["catalog"]["reindexed"]
    d = summary["download"]
    assert (d["downloaded"], d["failed"], d["present"]) == (len(gen["files"]), 0, 0)
    assert d["verified"] == {"file:checksum": len(gen["files"])}
    for href, info in gen["files"].items():  # every byte as served, every file where expected
        rel = info["rel"]
        if rel == "documentation.pdf":
            dest = folder / "source" / "_common" / "documentation.pdf"
        elif rel == "train_split.csv":
            dest = folder / "labels" / "_common" / "train_split.csv"
        else:
            dest = folder / rel
        assert sha(dest) == info["sha256"], href
    # shared assets fetched once, not once per item
    gets = asset_gets(server)
    assert sum(r.path.endswith("documentation.pdf") for r in gets) == 1
    assert len(gets) == len(gen["files"])
    assert list(csv.reader(open(folder / "_download-errors.csv"))) == [
        ["path", "href", "error", "http_status", "attempts"]
    ]
    assert json.loads((folder / "_download-summary.json").read_text())["download"]["downloaded"]

    server.clear()
    again = download_stac_dataset(url, options(tmp_path))
    assert again["catalog"]["reindexed"] is False
    assert again["download"]["downloaded"] == 0
    assert again["download"]["present"] == len(gen["files"])
    assert asset_gets(server) == []  # nothing fetched again
    assert [r.method for r in server.requests] == ["HEAD"]  # only the archive's validators


def test_filters_combined_from_catalog_folder(served, server, tmp_path):
    _, gen, root = served
    bbox = "-9.55,40.0,-9.25,40.05"  # items 4..7
    summary = download_stac_dataset(
        str(root / "gen" / "catalog"),
        options(
            tmp_path,
            filters=make_filters(
                collections=["source=B02", "labels"], datetime="2020-01-05/2020-01-07", bbox=bbox
            ),
        ),
    )
    folder = tmp_path / "eolab_test_dataset"
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "_" != p.name[0]
    )
    # items 4 (Jan 5-15), 5 (Jan 6), 6 (Jan 7) in the bbox and the window; source only B02
    assert files == [
        "labels/_common/train_split.csv",
        "labels/labels_000005/labels.geojson",
        "source/source_000004/B02.tif",
        "source/source_000006/B02.tif",
    ]
    assert summary["selected"]["files"] == 4


def test_intersects_true_geometry(served, server, tmp_path):
    _, _, root = served
    (minx, miny, maxx, maxy), _ = footprint(10)  # a triangle: lower-left half of its box
    corner = {
        "type": "Polygon",
        "coordinates": [
            [
                [maxx - 0.01, maxy - 0.01],
                [maxx + 0.005, maxy - 0.01],
                [maxx + 0.005, maxy + 0.005],
                [maxx - 0.01, maxy - 0.01],
            ]
        ],
    }
    summary = download_stac_dataset(
        str(root / "gen" / "catalog"),
        options(tmp_path, filters=make_filters(intersects=json.dumps(corner))),
    )
    assert summary["selected"]["files"] == 0 and asset_gets(server) == []
    by_box = download_stac_dataset(
        str(root / "gen" / "catalog"),
        options(
            tmp_path,
            catalog_only=True,
            filters=make_filters(bbox=f"{maxx - 0.01},{maxy - 0.01},{maxx},{maxy}"),
        ),
    )
    assert by_box["selected"]["files"] == 3  # B02, B03, documentation of item 10


def test_catalog_only_downloads_no_asset(served, server, tmp_path):
    url = f"{server.url}/archives/gen_dataset.tar.gz"
    summary = download_stac_dataset(url, options(tmp_path, catalog_only=True))
    folder = tmp_path / "gen_dataset"
    assert summary["selected"]["files"] == N // 2 * 3 + 2 and "download" not in summary
    assert asset_gets(server) == []
    assert (folder / "_assets.sqlite").is_file() and (folder / "_catalog").is_dir()
    assert not (folder / "source").exists()


def test_cut_mid_file_resumes_at_its_offset(served, server, tmp_path):
    _, gen, root = served
    href, info = next((h, i) for h, i in gen["files"].items() if i["rel"].endswith("B02.tif"))
    path = "/gen/files/" + info["rel"]
    server.add_fault(path, Fault("cut", after=1500))
    result = Fetcher(retry=FAST).fetch(href, tmp_path / "b02.tif", size=info["size"])
    ranges = [r.range for r in server.requests_for(path)]
    assert ranges == [None, "bytes=1500-"]
    assert result.resumed_from == [1500]
    assert sha(tmp_path / "b02.tif") == info["sha256"]
    assert not (tmp_path / "b02.tif.part").exists()


def test_retries_honour_retry_after_and_stop_on_403(served, server, tmp_path):
    _, gen, _ = served
    href, info = next((h, i) for h, i in gen["files"].items() if i["rel"].endswith("B03.tif"))
    path = "/gen/files/" + info["rel"]
    slept = []
    fetcher = Fetcher(retry=FAST, sleep=slept.append)
    server.add_fault(path, Fault("status", 429, headers={"Retry-After": "7"}))
    server.add_fault(path, Fault("status", 503))
    fetcher.fetch(href, tmp_path / "a.tif")
    assert [r.status for r in server.requests_for(path)] == [429, 503, 200]
    assert slept[0] == 7 and 0 <= slept[1] <= FAST.cap  # Retry-After honoured, then backoff
    server.clear()
    server.add_fault(path, Fault("status", 403, times=None))
    with pytest.raises(FetchError, match="403") as err:
        fetcher.fetch(href, tmp_path / "b.tif")
    assert err.value.attempts == 1 and len(server.requests_for(path)) == 1  # no retry on 403


def test_checksum_mismatch_refetched_then_reported(served, server, tmp_path):
    _, gen, root = served
    items = [(h, i) for h, i in gen["files"].items() if i["rel"].endswith(".tif")]
    (bad_href, bad), (_, flaky) = items[0], items[1]
    server.add_fault("/gen/files/" + bad["rel"], Fault("corrupt", times=None))
    server.add_fault("/gen/files/" + flaky["rel"], Fault("corrupt", times=1))
    with pytest.raises(DownloadFailed) as err:
        download_stac_dataset(str(root / "gen" / "catalog"), options(tmp_path))
    msg = str(err.value)
    assert "1 asset(s) failed" in msg and bad["rel"].split("/", 1)[1] in msg
    assert "checksum mismatch" in msg
    assert len(server.requests_for("/gen/files/" + bad["rel"])) == 2  # fetched, re-fetched
    assert len(server.requests_for("/gen/files/" + flaky["rel"])) == 2
    folder = tmp_path / "eolab_test_dataset"
    rows = list(csv.DictReader(open(folder / "_download-errors.csv")))
    assert [r["href"] for r in rows] == [bad_href]
    assert not (folder / bad["rel"]).exists() and not (folder / (bad["rel"] + ".part")).exists()
    assert sha(folder / flaky["rel"]) == flaky["sha256"]
    summary = json.loads((folder / "_download-summary.json").read_text())
    assert summary["download"]["refetched"] == 1 and summary["download"]["failed"] == 1
    # the server is fixed: a rerun fetches only the failed file
    server.clear()
    again = download_stac_dataset(str(root / "gen" / "catalog"), options(tmp_path))
    assert again["download"]["downloaded"] == 1 and again["download"]["failed"] == 0
    assert sha(folder / bad["rel"]) == bad["sha256"]


def test_cli_exit_code_and_malicious_archive_refused(tmp_path):
    bad = tmp_path / "evil.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name in ("evil/catalog.json", "evil/../../escaped.json"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eolab",
            "download",
            "stac-dataset",
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "eolab: error:" in proc.stderr and "climbs out with '..'" in proc.stderr
    assert not (tmp_path / "escaped.json").exists()
    assert not (tmp_path / "out" / "evil" / "_catalog").exists()


def _rewrite_sample(archive: Path, out_archive: Path, www: Path, base: str) -> dict[str, bytes]:
    """Copy the real archive (junk and pax headers included) with asset hrefs pointing at
    ``base``; write the files they name under ``www``; return {url path: bytes}."""
    prefix = "https://radiantearth.blob.core.windows.net/mlhub/"
    served: dict[str, bytes] = {}
    with (
        tarfile.open(archive) as src,
        tarfile.open(out_archive, "w:gz", format=tarfile.PAX_FORMAT) as dst,
    ):
        members = src.getmembers()
        blobs = {m.name: src.extractfile(m).read() for m in members if m.isfile()}
        for m in members:
            data = blobs.get(m.name)
            if data is not None and re.search(r"_\d{4}\.json$", m.name):
                item = json.loads(data)
                folder = m.name.rsplit("/", 1)[0]
                for key, asset in item["assets"].items():
                    rel = asset["href"].removeprefix(prefix)
                    asset["href"] = f"{base}/mlhub/{rel}"
                    if key == "labels":
                        content = blobs[f"{folder}/labels.geojson"]
                    elif key == "training_features_descriptions":
                        content = blobs[f"{folder}/training_features_descriptions.csv"]
                    else:
                        content = b"%PDF-1.4 documentation stand-in\n"
                    served[f"/mlhub/{rel}"] = content
                data = json.dumps(item, indent=4).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    for rel, content in served.items():
        (www / rel.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (www / rel.lstrip("/")).write_bytes(content)
    return served


def test_real_archive_rewritten_to_local_urls(samples, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    use_nginx = nginx_available() is not None
    server = NginxServer(www) if use_nginx else LocalHTTPServer(www)
    with server:
        archive = www / "su_sar_moisture_content.tar.gz"
        served = _rewrite_sample(
            samples / "stac-dataset" / "su_sar_moisture_content.tar.gz", archive, www, server.url
        )
        # a partial file from an interrupted run: the first half of one label file
        folder = tmp_path / "out" / "su_sar_moisture_content"
        label = "su_sar_moisture_content/su_sar_moisture_content_0003/labels.geojson"
        content = served["/mlhub/su-sar-moisture-content/feature_0003.geojson"]
        (folder / label).parent.mkdir(parents=True)
        (folder / (label + ".part")).write_bytes(content[:1000])
        with tarfile.open(archive) as tar:  # the copy keeps the macOS junk and xattr headers
            members = tar.getmembers()
        assert any(m.name.endswith("/._.DS_Store") for m in members)
        assert any("SCHILY.xattr.com.apple.FinderInfo" in m.pax_headers for m in members)
        summary = download_stac_dataset(
            f"{server.url}/su_sar_moisture_content.tar.gz", options(tmp_path / "out")
        )
        log = server.access_log.read_text() if use_nginx else ""
    assert summary["catalog"]["items"] == 8
    assert summary["download"]["failed"] == 0
    assert summary["download"]["downloaded"] == 8 + 2  # 8 labels, 2 shared files once
    collection = folder / "su_sar_moisture_content"
    assert sorted(p.name for p in (collection / "_common").iterdir()) == [
        "documentation.pdf",
        "training_features_descriptions.csv",
    ]
    for i in range(1, 9):
        got = (collection / f"su_sar_moisture_content_000{i}" / "labels.geojson").read_bytes()
        assert got == served[f"/mlhub/su-sar-moisture-content/feature_000{i}.geojson"]
    assert (folder / label).read_bytes() == content
    junk = [
        p
        for p in (folder / "_catalog").rglob("*")
        if p.name.startswith("._") or p.name == ".DS_Store"
    ]
    assert junk == []
    if use_nginx:  # nginx answered the resume with the range asked for
        assert "206 bytes=1000- /mlhub/su-sar-moisture-content/feature_0003.geojson" in log


def test_s3_hrefs_from_moto(s3_server, s3_client, tmp_path, monkeypatch):
    kwargs = s3_server.client_kwargs()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", kwargs["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", kwargs["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3_client.create_bucket(Bucket="stac-assets")
    gen = generate(tmp_path / "gen", items=4, base_url="s3://stac-assets", asset_bytes=3000)
    for href, info in gen["files"].items():
        s3_client.put_object(
            Bucket="stac-assets",
            Key=href.removeprefix("s3://stac-assets/"),
            Body=(tmp_path / "gen" / "files" / info["rel"]).read_bytes(),
        )
    summary = download_stac_dataset(
        str(tmp_path / "gen" / "catalog"),
        options(tmp_path / "out", s3_endpoint=s3_server.endpoint_url),
    )
    assert (
        summary["download"]["downloaded"] == len(gen["files"]) and not summary["download"]["failed"]
    )
    b02 = tmp_path / "out" / "eolab_test_dataset" / "source" / "source_000000" / "B02.tif"
    assert (
        b02.read_bytes()
        == (tmp_path / "gen" / "files" / "source/source_000000/B02.tif").read_bytes()
    )
    # resume from a partial file with a ranged GetObject; the S3 ETag (md5) is checked too
    href = next(h for h in gen["files"] if h.endswith("source_000002/B03.tif"))
    data = (tmp_path / "gen" / "files" / "source/source_000002/B03.tif").read_bytes()
    dest = tmp_path / "resume" / "b03.tif"
    dest.parent.mkdir()
    (dest.parent / "b03.tif.part").write_bytes(data[:1234])
    res = Fetcher(retry=FAST, s3_endpoint=s3_server.endpoint_url).fetch(href, dest)
    assert res.resumed_from == [1234] and res.verified == "S3 ETag"
    assert dest.read_bytes() == data
    (dest.parent / "c.tif.part").write_bytes(b"\x00" * 1234)  # a corrupt prefix is caught
    with pytest.raises(ChecksumMismatch):
        Fetcher(retry=FAST, s3_endpoint=s3_server.endpoint_url, checksum_retries=0).fetch(
            href, dest.parent / "c.tif"
        )


def test_read_timeout_retried_and_content_md5_checked(served, server, tmp_path):
    _, gen, _ = served
    href, info = next((h, i) for h, i in gen["files"].items() if i["rel"].endswith("2/B02.tif"))
    path = "/gen/files/" + info["rel"]
    data = (served[2] / "gen" / "files" / info["rel"]).read_bytes()
    fetcher = Fetcher(retry=FAST, timeout=(5.0, 0.2))
    server.add_fault(path, Fault("stall", delay=1.0))
    server.content_md5[path] = base64.b64encode(hashlib.md5(data).digest()).decode()
    try:
        res = fetcher.fetch(href, tmp_path / "a.tif")  # no catalog checksum given here
        assert res.verified == "Content-MD5" and res.attempts == 2
        assert len(server.requests_for(path)) == 2  # the stalled one timed out, then retried
        server.content_md5[path] = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        with pytest.raises(ChecksumMismatch, match="Content-MD5"):
            fetcher.fetch(href, tmp_path / "b.tif")
    finally:
        server.content_md5.clear()


def test_one_run_per_folder_and_disk_space_checked_first(served, server, tmp_path):
    from eolab.core.errors import DiskSpaceError, InputError
    from eolab.download.stac_dataset import run_lock

    _, _, root = served
    folder = tmp_path / "eolab_test_dataset"
    folder.mkdir()
    with run_lock(folder):  # a run in progress
        with pytest.raises(InputError, match="another download is running"):
            download_stac_dataset(str(root / "gen" / "catalog"), options(tmp_path))
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "huge",
        "collection": "c",
        "bbox": [0, 0, 1, 1],
        "geometry": None,
        "properties": {"datetime": None},
        "links": [],
        "assets": {"data": {"href": f"{server.url}/huge.bin", "file:size": 10**18}},
    }
    (tmp_path / "huge.json").write_text(json.dumps(item))
    with pytest.raises(DiskSpaceError, match="need .* GiB"):
        download_stac_dataset(str(tmp_path / "huge.json"), options(tmp_path / "out"))
    assert server.requests == []


def test_remote_static_catalog_url(served, server, tmp_path):
    _, gen, _ = served
    url = f"{server.url}/gen/catalog/catalog.json"
    summary = download_stac_dataset(
        url, options(tmp_path, filters=make_filters(collections=["labels"]), workers=4)
    )
    assert summary["dataset"] == "eolab_test_dataset"
    assert summary["catalog"]["items"] == N  # every item document fetched over HTTP
    item_gets = [r for r in server.requests if r.path.endswith(".json") and "/labels_" in r.path]
    assert len(item_gets) == N // 2
    folder = tmp_path / "eolab_test_dataset" / "labels"
    assert sorted(p.name for p in folder.iterdir()) == ["_common"] + [
        f"labels_{i:06d}" for i in range(1, N, 2)
    ]
    assert summary["download"]["downloaded"] == N // 2 + 1
