"""CDSE intake against real servers on 127.0.0.1: ``rustac serve`` (STAC API) serving items made
from fixture SAFE products, moto_server holding them in bucket ``eodata`` under the real key
layout, and a fault-injecting proxy in front of moto (503 SlowDown, 500, 429, 403, cut bodies,
flipped bytes). No HTTP mocks."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from faultproxy import FaultProxy

from eolab.core.errors import ConfigError, InputError, RemoteError
from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET, free_port
from eolab.intake import search
from eolab.intake.intake import IntakeSettings, run_intake
from eolab.intake.items import item_from_safe, safe_key
from eolab.intake.s3 import AccessDenied, EndpointUnreachable
from eolab.sentinel2.products import product_paths, read_manifest
from eolab.sentinel2.safe import read_safe

pytestmark = pytest.mark.integration

TILE = "35VLH"
YEAR = 2024
CLOUD = [5.0, 50.0, 95.0]  # eo:cloud_cover given to the fixture items, in time order
BANDS4 = ("B02", "B03", "B04", "B05")
SAMPLE = "cdse/S2A_MSIL1C_20240116T000741_N0510_R130_T51CVP_20240116T010505.json"
BIN = Path(sys.executable).parent


# --- fixtures: SAFE products, STAC API, S3 --------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    from eolab.fixtures.sentinel2 import generate_tile_year

    root = tmp_path_factory.mktemp("s2fixtures")
    generate_tile_year(
        root,
        tile=TILE,
        year=YEAR,
        dates=len(CLOUD),
        scale=183,
        seed=7,
        baseline="05.10",
        manifest=root / "fixtures.json",
    )
    return root


@pytest.fixture(scope="module")
def safes(fixture_root) -> list[Path]:
    return product_paths(fixture_root / "fixtures.json")


@pytest.fixture(scope="module")
def items(safes) -> list[dict]:
    out = []
    for safe, cloud in zip(safes, CLOUD, strict=True):
        item = item_from_safe(safe, "s3://eodata/")
        item["properties"]["eo:cloud_cover"] = cloud
        out.append(item)
    return out


def _decoys(items: list[dict]) -> list[dict]:
    """A neighbour tile's product over the same area (intersects finds it, grid:code must not),
    and three extra products on one busy day of 2025 (for the result-cap test)."""
    neighbour = copy.deepcopy(items[0])
    neighbour["id"] = neighbour["id"].replace(f"_T{TILE}_", "_T35VLJ_")
    neighbour["properties"]["grid:code"] = "MGRS-35VLJ"
    busy = []
    for hour in (1, 8, 15):
        extra = copy.deepcopy(items[1])
        extra["id"] = f"{extra['id']}_BUSY{hour:02d}"
        when = f"2025-02-28T{hour:02d}:00:00.000Z"
        for key in ("datetime", "start_datetime", "end_datetime"):
            extra["properties"][key] = when
        busy.append(extra)
    return [neighbour, *busy]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory, items) -> str:
    """``rustac serve`` on a free port with the fixture items and the decoys."""
    exe = BIN / "rustac"
    if not exe.exists():
        pytest.skip("rustac CLI not installed (pip install rustac)")
    folder = tmp_path_factory.mktemp("stac")
    ndjson = folder / "items.ndjson"
    ndjson.write_text("".join(json.dumps(i) + "\n" for i in [*items, *_decoys(items)]))
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [str(exe), "serve", "--create-collections", "--addr", addr, str(ndjson)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://{addr}/", proc)
        yield f"http://{addr}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def eodata(s3_server, fixture_root) -> dict[str, bytes]:
    """Bucket ``eodata`` on moto with every fixture file under its CDSE key; {key: bytes}."""
    import boto3

    s3_server.reset()
    client = boto3.client("s3", **s3_server.client_kwargs())
    client.create_bucket(Bucket="eodata")
    objects = {}
    for path in sorted((fixture_root / "Sentinel-2").rglob("*")):
        if path.is_file():
            key = path.relative_to(fixture_root).as_posix()
            objects[key] = path.read_bytes()
            client.put_object(Bucket="eodata", Key=key, Body=objects[key])
    yield objects
    s3_server.reset()


@pytest.fixture()
def proxy(s3_server, eodata):
    with FaultProxy(s3_server.endpoint_url) as p:
        yield p


@pytest.fixture()
def aws_env(monkeypatch, tmp_path):
    """Credentials from the AWS environment only (no config files of the machine)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def settings(stac_url: str, endpoint: str, **kw) -> IntakeSettings:
    base = dict(
        stac_url=stac_url,
        endpoint_url=endpoint,
        region="us-east-1",
        workers=4,
        retries=3,
        requests_per_minute=None,
    )
    return IntakeSettings(**(base | kw))


def intake(stac_api, proxy, out, start="2024-01-01", end="2025-01-01", **kw):
    """The intake of the fixture tile-year; monthly STAC windows unless ``window_hours`` is
    given (the day loop itself is tested above and in the complete download)."""
    kw.setdefault("window_hours", 744)
    return run_intake(
        TILE, start, end, out, settings=settings(stac_api, proxy.url, **kw), progress=False
    )


def local_files(out: Path) -> dict[str, bytes]:
    root = out / "Sentinel-2"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- items --------------------------------------------------------------------------------------


def test_item_from_safe_has_the_shape_of_a_real_cdse_item(samples, items, safes):
    real = json.loads((samples / SAMPLE).read_text())
    ours = items[0]
    assert ours["id"] == safes[0].name.removesuffix(".SAFE")
    assert set(ours) == set(real) - {"stac_extensions"} | {"stac_extensions"}
    assert set(real["assets"]) - set(ours["assets"]) <= {"thumbnail"}
    for key in ("grid:code", "eo:cloud_cover", "platform", "processing:version", "datetime"):
        assert key in ours["properties"], key
        assert type(ours["properties"][key]) is type(real["properties"][key]), key
    assert ours["properties"]["grid:code"] == f"MGRS-{TILE}"
    enclosure = next(link for link in ours["links"] if link["rel"] == "enclosure")
    real_enclosure = next(link for link in real["links"] if link["rel"] == "enclosure")
    assert enclosure["type"] == real_enclosure["type"]
    assert enclosure["href"] == f"s3://eodata/{safe_key_of(safes[0])}/"
    for band in ("B02", "B8A", "B12"):
        ours_b, real_b = ours["assets"][band], real["assets"][band]
        assert set(real_b) >= {"href", "file:size", "file:checksum", "proj:code"}
        assert ours_b["file:checksum"][:4] == real_b["file:checksum"][:4] == "1620"
        assert ours_b["href"].startswith(enclosure["href"] + "GRANULE/")
        assert "/IMG_DATA/" in ours_b["href"] and "/IMG_DATA/" in real_b["href"]
    assert ours["assets"]["safe_manifest"]["file:checksum"][:6] == "d50110"


def safe_key_of(safe: Path) -> str:
    return safe_key(read_safe(safe))


def test_fixture_keys_follow_the_cdse_layout(eodata, safes):
    for safe in safes:
        key = safe_key_of(safe)
        assert key.startswith("Sentinel-2/MSI/L1C/2024/")
        assert any(k.startswith(key + "/") for k in eodata)
        assert f"{key}/manifest.safe" in eodata


# --- search -------------------------------------------------------------------------------------


def test_search_loops_over_utc_days_and_keeps_only_the_tile(stac_api, items):
    client = search.open_client(stac_api, retries=1)
    seen = []
    start, end = search.parse_date("2024-01-01"), search.parse_date("2025-01-01")
    result = search.search_tile(client, TILE, start, end, on_window=lambda w, n: seen.append(w))
    assert result.strategy == "intersects"  # rustac advertises no filter extension
    assert len(seen) == 366
    assert all(w.end - w.start == dt.timedelta(days=1) and w.start.hour == 0 for w in seen)
    ids = [i["id"] for i in result.items]
    assert sorted(ids) == sorted(i["id"] for i in items)
    # the neighbour tile's product was returned by the server, then dropped on grid:code
    day0 = items[0]["properties"]["datetime"][:10]
    counts = {w.start.strftime("%Y-%m-%d"): n for w, n in result.windows}
    assert counts[day0] == 2
    assert not any("T35VLJ" in i for i in ids)


def test_search_cloud_filter(stac_api, items):
    client = search.open_client(stac_api, retries=1)
    start, end = search.parse_date("2024-01-01"), search.parse_date("2025-01-01")
    result = search.search_tile(
        client, TILE, start, end, max_cloud_cover=50, window=dt.timedelta(days=31)
    )
    kept = {i["id"] for i in result.items}
    assert items[0]["id"] in kept and items[1]["id"] in kept
    assert items[2]["id"] not in kept  # 95 %
    assert all(i["properties"]["eo:cloud_cover"] <= 50 for i in result.items)


def test_a_window_at_the_result_cap_is_split(stac_api, items):
    client = search.open_client(stac_api, retries=1)
    day = search.Window(search.parse_date("2025-02-28"), search.parse_date("2025-03-01"))
    result = search.search_tile(client, TILE, day.start, day.end, cap=2, page_size=1)
    busy = sorted(i["id"] for i in result.items if "_BUSY" in i["id"])
    assert len(busy) == 3
    first, count = result.windows[0]
    assert first == day and count == 2  # the whole day reached the cap of 2: split
    # busy products at 01, 08, 15 h: 00-12 h holds two (split again), 12-24 h one
    hours = [((w.end - w.start) / dt.timedelta(hours=1), n) for w, n in result.windows]
    assert hours == [(24, 2), (12, 2), (6, 1), (6, 1), (12, 1)]
    kept = [(w, n) for w, n in result.windows if n < 2]
    assert sum(n for _, n in kept) == 3  # the windows that were not split hold every product
    covered = sorted((w.start, w.end) for w, _ in kept)
    assert covered[0][0] == day.start and covered[-1][1] == day.end
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
    with pytest.raises(RemoteError, match="paging cap"):
        search.search_tile(client, TILE, day.start, day.end, cap=1)


class _FilterStac:
    """A minimal STAC API that advertises the filter extension (as CDSE does), evaluates the
    CQL2 ``=``/``<=``/``and`` it receives, and records each search body."""

    def __init__(self, items: list[dict]):
        self.items = items
        self.bodies: list[dict] = []

    def __enter__(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, doc):
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                root = f"http://{self.headers['Host']}/"
                self._send(
                    {
                        "type": "Catalog",
                        "id": "cdse-like",
                        "description": "filter-capable test API",
                        "stac_version": "1.1.0",
                        "conformsTo": [
                            "https://api.stacspec.org/v1.0.0/core",
                            "https://api.stacspec.org/v1.0.0/item-search",
                            "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
                            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
                        ],
                        "links": [
                            {"rel": "self", "href": root},
                            {"rel": "root", "href": root},
                            {
                                "rel": "search",
                                "href": root + "search",
                                "type": "application/geo+json",
                                "method": "POST",
                            },
                        ],
                    }
                )

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.bodies.append(body)
                lo, hi = body["datetime"].split("/")
                found = [
                    i
                    for i in api.items
                    if lo <= i["properties"]["datetime"] <= hi and _cql2(body["filter"], i)
                ]
                self._send({"type": "FeatureCollection", "features": found, "links": []})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _cql2(expr: dict, item: dict) -> bool:
    op, args = expr["op"], expr["args"]
    if op == "and":
        return all(_cql2(a, item) for a in args)
    value = item["properties"].get(args[0]["property"])
    return value == args[1] if op == "=" else value is not None and value <= args[1]


def test_filter_capable_server_gets_a_cql2_query(items):
    decoy = copy.deepcopy(items[0])
    decoy["id"] += "_OTHER"
    decoy["properties"]["grid:code"] = "MGRS-35VLJ"
    with _FilterStac([*items, decoy]) as api:
        client = search.open_client(api.url, retries=1)
        start, end = search.parse_date("2024-01-01"), search.parse_date("2024-04-01")
        result = search.search_tile(client, TILE, start, end, max_cloud_cover=60)
    assert result.strategy == "filter"
    assert len(api.bodies) == 91  # one query per UTC day
    body = api.bodies[0]
    assert body["filter-lang"] == "cql2-json"
    assert body["filter"] == search.cql2_filter(TILE, 60)
    assert "intersects" not in body and body["collections"] == ["sentinel-2-l1c"]
    expected = [
        i["id"]
        for i in items
        if i["properties"]["datetime"] < "2024-04-01" and i["properties"]["eo:cloud_cover"] <= 60
    ]
    assert expected and [i["id"] for i in result.items] == expected


# --- download -----------------------------------------------------------------------------------


def test_complete_download_is_equal_byte_for_byte(stac_api, proxy, eodata, aws_env, tmp_path):
    out = tmp_path / "cdse"
    doc = intake(stac_api, proxy, out, window_hours=24)  # the real day loop
    assert local_files(out) == eodata
    manifest = read_manifest(out / f"{TILE}_{YEAR}.json")
    assert manifest == doc and doc["source"] == "cdse" and doc["tile"] == TILE
    assert [p["verified"] for p in doc["products"]] == [True] * len(CLOUD)
    for prod, path in zip(doc["products"], product_paths(out / f"{TILE}_{YEAR}.json"), strict=True):
        assert path.is_dir() and path.name == prod["id"] + ".SAFE"
        assert (
            prod["files"] == prod["fetched_files"] == sum(1 for p in path.rglob("*") if p.is_file())
        )
        # manifest.safe's SHA3-256 for what it lists, the item's MD5 for manifest.safe itself,
        # size alone for the rest (HTML banners, rep_info: not listed, as in real products)
        listed = len(read_safe(path).manifest_files())
        checked = prod["checked_by"]
        assert checked == {"sha3_256": listed, "md5": 1, "size": prod["files"] - listed - 1}
    # every object fetched exactly once, over at most 4 kept-alive connections (CDSE quota)
    gets = proxy.object_gets()
    assert len(gets) == len(eodata) == len(set(gets))
    assert proxy.max_open_connections <= 4
    assert proxy.connections <= 8  # reused, not one per request


def test_an_item_without_an_s3_folder_fails_only_itself(proxy, eodata, aws_env, items, tmp_path):
    import copy

    from eolab.intake import s3
    from eolab.intake.download import fetch_products

    broken = copy.deepcopy(items[0])
    broken["id"] += "-NO-S3"
    broken["links"] = [
        link for link in broken.get("links", []) if not link.get("href", "").startswith("s3://")
    ]
    for asset in broken["assets"].values():
        asset["href"] = "https://download.example/odata/x"
        asset.pop("alternate", None)
    client = s3.make_client(proxy.url, region="us-east-1", requests_per_minute=None)
    prods = fetch_products(items + [broken], tmp_path / "cdse", client, progress=False)
    by_id = {p.id: p for p in prods}
    assert set(by_id) == {i["id"] for i in items} | {broken["id"]}
    assert not by_id[broken["id"]].verified
    assert "no s3:// href" in by_id[broken["id"]].problems[0]
    assert all(by_id[i["id"]].verified for i in items)  # the others were fetched and verified
    assert local_files(tmp_path / "cdse") == eodata


def test_interrupted_download_resumes_with_only_the_missing_files(
    stac_api, proxy, eodata, aws_env, tmp_path
):
    out = tmp_path / "cdse"
    proxy.deny_after(len(eodata) // 3)
    with pytest.raises(AccessDenied):
        intake(stac_api, proxy, out)
    assert not (out / f"{TILE}_{YEAR}.json").exists()
    have = local_files(out)
    assert 0 < len(have) < len(eodata)
    assert all(eodata[k] == v for k, v in have.items())  # no partial file under a real name
    proxy.clear()
    doc = intake(stac_api, proxy, out)
    fetched = {p.split("/", 2)[2] for p in proxy.object_gets()}
    assert fetched == set(eodata) - set(have)
    assert local_files(out) == eodata
    assert all(p["verified"] for p in doc["products"])
    assert sum(p["fetched_files"] for p in doc["products"]) == len(fetched)


def test_corrupt_or_truncated_local_files_are_fetched_again(
    stac_api, proxy, eodata, aws_env, tmp_path
):
    out = tmp_path / "cdse"
    intake(stac_api, proxy, out)
    bands = sorted(k for k in eodata if "/IMG_DATA/" in k and k.endswith("_B03.jp2"))
    flipped, truncated = out / bands[0], out / bands[1]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the checksum can tell
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:100])
    stray = truncated.parent / f".{truncated.name}.abc123.tmp"  # left by a killed run
    stray.write_bytes(b"partial")
    proxy.clear()
    doc = intake(stac_api, proxy, out)
    fetched = sorted(p.split("/", 2)[2] for p in proxy.object_gets())
    assert fetched == sorted([bands[0], bands[1]])
    assert local_files(out) == eodata
    assert not stray.exists()
    assert all(p["verified"] for p in doc["products"])
    proxy.clear()
    intake(stac_api, proxy, out)
    assert proxy.object_gets() == []  # a complete tree: nothing fetched


def test_throttling_5xx_cut_bodies_and_corrupt_transfers_are_retried(
    stac_api, proxy, eodata, aws_env, tmp_path
):
    image = sorted(k for k in eodata if "/IMG_DATA/" in k)
    b02, b03, b04, b05 = (next(k for k in image if k.endswith(f"_{b}.jp2")) for b in BANDS4)
    manifest = sorted(k for k in eodata if k.endswith("/manifest.safe"))[1]
    proxy.add_faults(b02, "503", "500")
    proxy.add_faults(b03, "cut")
    proxy.add_faults(b04, "corrupt")
    proxy.add_faults(b05, "429")
    proxy.add_faults(manifest, "503")
    out = tmp_path / "cdse"
    doc = intake(stac_api, proxy, out)
    assert local_files(out) == eodata
    assert all(p["verified"] for p in doc["products"])

    def calls(key):
        return [(e.status, e.range, e.fault) for e in proxy.log if e.path == f"/eodata/{key}"]

    assert [c[0] for c in calls(b02)] == [503, 500, 200]
    assert [c[0] for c in calls(b05)][0] == 429 and calls(b05)[-1][0] == 200
    assert [c[0] for c in calls(manifest)] == [503, 200]
    cut = calls(b03)
    assert cut[0][2] == "cut" and cut[-1][0] == 206  # resumed with a Range request
    assert cut[-1][1] == f"bytes={len(eodata[b03]) // 2}-"
    assert [(c[0], c[2]) for c in calls(b04)] == [(200, "corrupt"), (200, None)]


def test_403_is_one_clear_line_without_secrets(stac_api, proxy, tmp_path):
    proxy.deny_after(0)
    secret = "sEcReT-never-printed-1234"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIAEOLABTEST", AWS_SECRET_ACCESS_KEY=secret)
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [str(BIN / "eolab"), "intake", "cdse", "--tile", TILE, "--start", "2024-01-01",
         "--end", "2024-12-31", "--out", str(tmp_path / "cdse"), "--stac-url", stac_api,
         "--endpoint-url", proxy.url, "--region", "us-east-1", "--window-hours", "744"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("eolab: error:")]
    assert len(errors) == 1
    assert "access denied" in errors[0] and "403" in errors[0] and "AccessDenied" in errors[0]
    assert "Traceback" not in proc.stderr
    assert secret not in proc.stdout + proc.stderr
    assert "AKIAEOLABTEST" not in proc.stdout + proc.stderr


def test_clear_errors_for_unknown_tile_empty_results_and_unreachable_endpoints(
    stac_api, proxy, aws_env, tmp_path
):
    with pytest.raises(ConfigError, match="MGRS tile id"):
        run_intake("99ZZZ", "2024-01-01", "2024-02-01", tmp_path)
    with pytest.raises(InputError, match="no sentinel-2-l1c products of tile 35VLH"):
        intake(stac_api, proxy, tmp_path, start="2023-01-01", end="2023-03-01", window_hours=744)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteError, match="unreachable"):
        no_stac = settings(dead + "/", proxy.url, retries=0)
        run_intake(TILE, "2024-01-01", "2024-02-01", tmp_path, settings=no_stac)
    with pytest.raises(EndpointUnreachable, match="unreachable"):
        year = settings(stac_api, dead, retries=0, window_hours=8784)
        run_intake(TILE, "2024-01-01", "2025-01-01", tmp_path, settings=year)
    assert not list(tmp_path.rglob("*.json"))


def test_missing_credentials_are_a_config_error(monkeypatch, tmp_path):
    from eolab.intake.s3 import make_client

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no S3 credentials"):
        make_client("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        make_client("http://127.0.0.1:9", profile="nope")


def test_cli_search_only_lists_products_and_downloads_nothing(stac_api, items, tmp_path):
    from click.testing import CliRunner

    from eolab.cli.intake import intake

    args = ["cdse", "--tile", TILE, "--year", "2024", "--out", str(tmp_path / "out")]
    args += ["--stac-url", stac_api, "--max-cloud-cover", "50", "--search-only"]
    result = CliRunner().invoke(intake, args)
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines() if line.startswith("S2")]
    assert [line[0] for line in lines] == [i["id"] for i in items[:2]]
    assert not (tmp_path / "out").exists()
