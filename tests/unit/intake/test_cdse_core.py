"""CDSE intake, pure parts: time windows, tile filters, item parsing, file plans, checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from eolab.core.errors import ConfigError, InputError
from eolab.intake import search
from eolab.intake.plan import MANIFEST, asset_checksums, plan_files, safe_prefix
from eolab.intake.s3 import RequestPacer
from eolab.intake.verify import item_checksum, local_file_ok, manifest_checksum
from eolab.sentinel2.safe import ManifestEntry

UTC = dt.UTC
SAMPLE = "cdse/S2A_MSIL1C_20240116T000741_N0510_R130_T51CVP_20240116T010505.json"


@pytest.fixture(scope="module")
def real_item(samples) -> dict:
    return json.loads((samples / SAMPLE).read_text())


# --- time windows -------------------------------------------------------------------------------


def test_day_windows_cover_a_leap_year_as_utc_days():
    wins = search.time_windows(
        search.parse_date("2024-01-01"), search.parse_date("2025-01-01"), dt.timedelta(days=1)
    )
    assert len(wins) == 366
    assert all(w.end - w.start == dt.timedelta(days=1) for w in wins)
    assert all(a.end == b.start for a, b in zip(wins, wins[1:], strict=False))
    assert all(w.start.hour == 0 and w.start.tzinfo == UTC for w in wins)
    assert wins[0].stac_interval() == "2024-01-01T00:00:00.000Z/2024-01-01T23:59:59.999Z"
    assert wins[-1].stac_interval() == "2024-12-31T00:00:00.000Z/2024-12-31T23:59:59.999Z"


def test_window_size_is_a_parameter_and_last_window_is_clipped():
    start, end = search.parse_date("2024-03-01"), search.parse_date("2024-03-04T06:00")
    wins = search.time_windows(start, end, dt.timedelta(hours=36))
    hours = [(w.end - w.start) / dt.timedelta(hours=1) for w in wins]
    assert hours == [36, 36, 6]
    assert wins[-1].end == end


@pytest.mark.parametrize(
    "start, end, window",
    [
        ("2024-01-02", "2024-01-01", 1),
        ("2024-01-01", "2024-01-01", 1),
        ("2024-01-01", "2024-02-01", 0),
    ],
)
def test_bad_ranges_and_windows_are_config_errors(start, end, window):
    with pytest.raises(ConfigError):
        search.time_windows(search.parse_date(start), search.parse_date(end), dt.timedelta(window))


def test_window_halves_meet_exactly():
    win = search.Window(search.parse_date("2024-05-01"), search.parse_date("2024-05-02"))
    a, b = win.halves()
    assert (a.start, a.end, b.start, b.end) == (win.start, b.start, a.end, win.end)
    assert a.end == search.parse_date("2024-05-01T12:00")


def test_parse_date_rejects_garbage():
    with pytest.raises(ConfigError, match="2024-13-01"):
        search.parse_date("2024-13-01")


# --- tile selection -------------------------------------------------------------------------------


def test_cql2_filter_on_grid_code_and_cloud_cover():
    assert search.cql2_filter("35VLH", None) == {
        "op": "=",
        "args": [{"property": "grid:code"}, "MGRS-35VLH"],
    }
    both = search.cql2_filter("35VLH", 20)
    assert both["op"] == "and"
    assert {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]} in both["args"]


@pytest.mark.parametrize(
    "conforms, requested, expected",
    [(True, "auto", "filter"), (False, "auto", "intersects"), (True, "intersects", "intersects")],
)
def test_strategy_follows_the_servers_conformance(conforms, requested, expected):
    assert search.choose_strategy(conforms, requested) == expected


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        search.choose_strategy(True, "bogus")


def test_keep_item_checks_tile_and_cloud_cover(real_item):
    assert search.keep_item(real_item, "51CVP", None)
    assert not search.keep_item(real_item, "35VLH", None)
    cloudy = json.loads(json.dumps(real_item))
    cloudy["properties"]["eo:cloud_cover"] = 40.0
    assert search.keep_item(cloudy, "51CVP", 40)
    assert not search.keep_item(cloudy, "51CVP", 39.9)
    del cloudy["properties"]["eo:cloud_cover"]
    assert not search.keep_item(cloudy, "51CVP", 50)


def test_tile_footprint_contains_the_real_product_footprint(real_item):
    foot = shape(search.tile_footprint("51CVP"))
    data = shape(real_item["geometry"])
    assert foot.is_valid
    # straight lon/lat edges of the real footprint vs our densified UTM square: ~2 % apart
    assert foot.intersection(data).area / data.area > 0.95
    assert not foot.contains(Point(30, 60))


def test_unknown_tile_is_refused():
    with pytest.raises(ConfigError, match="35VLX"):
        search.tile_footprint("35VLX")


# --- the real CDSE item ---------------------------------------------------------------------------


def test_safe_prefix_from_the_real_item(real_item):
    bucket, prefix = safe_prefix(real_item)
    assert bucket == "eodata"
    assert prefix == f"Sentinel-2/MSI/L1C/2024/01/16/{real_item['id']}.SAFE/"


def test_safe_prefix_falls_back_to_asset_hrefs(real_item):
    item = dict(real_item, links=[])
    assert safe_prefix(item)[1] == f"Sentinel-2/MSI/L1C/2024/01/16/{real_item['id']}.SAFE/"
    with pytest.raises(InputError, match="no s3://"):
        safe_prefix({"id": "x", "links": [], "assets": {}})


def test_safe_prefix_refuses_keys_that_escape(real_item):
    item = {"id": "x", "links": [{"rel": "enclosure", "href": "s3://eodata/a/../../b.SAFE/"}]}
    with pytest.raises(InputError, match="unsafe"):
        safe_prefix(item)


def test_real_item_checksums(real_item):
    bucket, prefix = safe_prefix(real_item)
    sums = asset_checksums(real_item, bucket, prefix)
    granule = "GRANULE/L1C_T51CVP_A044743_20240116T000743"
    b02 = sums[f"{granule}/IMG_DATA/T51CVP_20240116T000741_B02.jp2"]
    assert b02.algorithm == "sha3_256"
    assert b02.hexdigest == real_item["assets"]["B02"]["file:checksum"][4:]
    assert sums[MANIFEST].algorithm == "md5"
    # CDSE writes 32-byte digests under the MD5 code for these: unusable, so not used
    assert "MTD_MSIL1C.xml" not in sums
    # the thumbnail's s3 href is an alternate
    assert any(k.endswith("-ql.jpg") for k in sums)
    assert len([k for k in sums if "/IMG_DATA/" in k]) == 14


def test_item_checksum_decoding():
    data = b"eolab"
    sha3 = "1620" + hashlib.sha3_256(data).hexdigest()
    assert item_checksum(sha3).digest == hashlib.sha3_256(data).digest()
    assert item_checksum("d50110" + hashlib.md5(data).hexdigest()).algorithm == "md5"
    assert item_checksum("d50120" + "ab" * 32) is None
    assert item_checksum("zz") is None
    assert item_checksum(None) is None


# --- plans and local checks -----------------------------------------------------------------------


def test_plan_prefers_manifest_sha3_and_reports_disagreements():
    sha3 = hashlib.sha3_256(b"x").hexdigest().upper()  # manifest.safe uses mixed case
    listing = {"manifest.safe": 10, "a.xml": 1, "b.jp2": 5, "c.html": 3}
    manifest = [
        ManifestEntry("a.xml", 1, sha3),
        ManifestEntry("b.jp2", 6, None),
        ManifestEntry("missing.jp2", 2, None),
    ]
    item_sums = {
        "a.xml": item_checksum("d50110" + "00" * 16),
        "c.html": item_checksum("1220" + "11" * 32),
    }
    files, problems = plan_files(listing, manifest, item_sums)
    by = {f.rel: f for f in files}
    assert sorted(by) == sorted(listing)
    assert by["a.xml"].checksum.source == "manifest.safe"
    assert by["a.xml"].checksum.digest == bytes.fromhex(sha3)
    assert by["c.html"].checksum.algorithm == "sha256"
    assert by["manifest.safe"].checksum is None
    assert any("missing.jp2" in p and "not on S3" in p for p in problems)
    assert any("b.jp2" in p and "6 bytes" in p for p in problems)


def test_local_file_ok_needs_size_and_checksum(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    good = manifest_checksum(hashlib.sha3_256(b"hello").hexdigest())
    bad = manifest_checksum(hashlib.sha3_256(b"hellO").hexdigest())
    assert local_file_ok(path, 5, good)
    assert local_file_ok(path, 5, None)
    assert not local_file_ok(path, 5, bad)
    assert not local_file_ok(path, 6, None)
    assert not local_file_ok(tmp_path / "absent", 5, None)


def test_request_pacer_spaces_requests():
    pacer = RequestPacer(per_minute=60_000)  # one start per millisecond
    pacer()
    first = pacer._next_ns - pacer.interval_ns
    for _ in range(4):
        pacer()
    # five starts booked, none at once (integer ns: exact whatever the clock's value)
    assert pacer._next_ns - first >= 5 * pacer.interval_ns


# --- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--year", "2024", "--start", "2024-01-01"], "either --year or --start/--end"),
        (["--start", "2024-01-01"], "give --year, or both --start and --end"),
        (["--year", "2024", "--workers", "0"], "--workers"),
    ],
)
def test_cli_refuses_contradictory_dates_and_bad_options(tmp_path, args, message):
    from click.testing import CliRunner

    from eolab.cli.intake import intake

    result = CliRunner().invoke(intake, ["cdse", "--tile", "35VLH", "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not any(tmp_path.iterdir())


def test_products_manifest_entry_from_the_real_item(real_item, tmp_path):
    from eolab.intake.download import ProductFetch
    from eolab.intake.intake import product_entry
    from eolab.intake.plan import RemoteFile

    bucket, prefix = safe_prefix(real_item)
    prod = ProductFetch(real_item, bucket, prefix, tmp_path / prefix.rstrip("/"))
    prod.files = [RemoteFile("manifest.safe", 10, None), RemoteFile("a.jp2", 5, None)]
    prod.outcome = {"manifest.safe": "present", "a.jp2": "fetched"}
    prod.fetched_bytes = 5
    entry = product_entry(prod, tmp_path)
    assert entry["path"] == prefix.rstrip("/")
    assert entry["datetime"] == "2024-01-16T00:07:41.024Z"
    assert (entry["files"], entry["bytes"], entry["fetched_files"]) == (2, 15, 1)
    assert entry["verified"] is True and "problems" not in entry
    prod.outcome["a.jp2"] = "failed"
    prod.problems.append("a.jp2: sha3_256 mismatch")
    entry = product_entry(prod, tmp_path)
    assert entry["verified"] is False and entry["problems"] == ["a.jp2: sha3_256 mismatch"]


def test_a_network_error_fails_its_product_and_a_disk_error_stops_the_run(tmp_path):
    import errno
    import os
    from concurrent.futures import Future

    from eolab.core.errors import DiskSpaceError
    from eolab.intake.download import Fetcher, ProductFetch

    fetcher = Fetcher(None, "eodata", tmp_path, workers=1, retries=0, progress=None)
    prod = ProductFetch({"id": "P"}, "eodata", "prefix", tmp_path / "P.SAFE")

    def failed(exc: BaseException) -> Future:
        fut: Future = Future()
        fut.set_exception(exc)
        return fut

    assert fetcher._settle(failed(ConnectionResetError("peer reset")), prod) is False
    assert fetcher._settle(failed(TimeoutError("read timed out")), prod) is False
    assert prod.problems == ["peer reset", "read timed out"]
    for code in (errno.ENOSPC, errno.EDQUOT):  # a full disk and a full quota alike
        full = OSError(code, os.strerror(code), str(tmp_path / "f"))
        with pytest.raises(DiskSpaceError, match="no space left"):
            fetcher._settle(failed(full), prod)


def test_only_the_newest_processing_of_an_acquisition_is_kept(real_item):
    import copy

    from eolab.intake.search import latest_versions

    def variant(version: str, processed: str, new_id: str) -> dict:
        item = copy.deepcopy(real_item)
        item["id"] = new_id
        item["properties"]["processing:version"] = version
        item["properties"]["processing:datetime"] = processed
        return item

    original = variant("05.00", "2024-01-16T01:05:05Z", real_item["id"].replace("N0510", "N0500"))
    later_run = variant("05.10", "2024-03-01T00:00:00Z", real_item["id"] + "_2")
    other_day = copy.deepcopy(real_item)
    other_day["id"] = "S2A_MSIL1C_20240119T000741_N0510_R130_T51CVP_20240119T010505"
    other_day["properties"]["datetime"] = "2024-01-19T00:07:41.024000Z"
    kept, dropped = latest_versions([original, real_item, other_day, later_run])
    assert [it["id"] for it in kept] == [later_run["id"], other_day["id"]]
    assert dropped == sorted([original["id"], real_item["id"]])
    # 5.9 < 05.10: versions compare as numbers, not strings
    nine = variant("05.09", "2024-05-01T00:00:00Z", "nine")
    assert [it["id"] for it in latest_versions([nine, real_item])[0]] == [real_item["id"]]


def test_space_check_counts_only_missing_files_and_names_the_folder(tmp_path):
    from eolab.core.errors import DiskSpaceError
    from eolab.intake.download import Fetcher, ProductFetch
    from eolab.intake.plan import RemoteFile

    fetcher = Fetcher(None, "eodata", tmp_path / "out", workers=1, retries=0, progress=None)
    local = tmp_path / "out" / "P.SAFE"
    local.mkdir(parents=True)
    (local / "done.jp2").write_bytes(b"x" * 10)
    prod = ProductFetch({"id": "P"}, "eodata", "prefix", local)
    prod.files = [RemoteFile("done.jp2", 10, None), RemoteFile("huge.jp2", 10**18, None)]
    with pytest.raises(DiskSpaceError, match=r"out: what is still to download needs \d+"):
        fetcher._check_space([prod])
    prod.files = [RemoteFile("done.jp2", 10, None), RemoteFile("small.jp2", 1000, None)]
    fetcher._check_space([prod])  # 1000 bytes still to download fit
