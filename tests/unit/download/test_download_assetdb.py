"""The asset database: streaming index of a generated catalog, filters as SQL, _common, paths."""

import datetime as dt
import json
from pathlib import PurePosixPath

import pytest

from eolab.download.assetdb import AssetDB, asset_extension, safe_component
from eolab.download.catalog import CatalogWalker, item_record
from eolab.download.filters import make_filters
from eolab.fixtures.stac_dataset import footprint, generate

N = 20


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    cat = generate(root, items=N, base_url="http://example.invalid", write_assets=False)
    database = AssetDB(root / "assets.sqlite")
    walker = CatalogWalker(str(cat["catalog"]))
    database.begin_index()
    database.add_items(walker.items())
    database.finish_index("fp-1")
    yield database
    database.close()


def selected(db, **kwargs) -> set[str]:
    db.select(make_filters(**kwargs))
    return {row[1] for row in db.iter_selected()}


def item_files(i: int, keys=None) -> set[str]:
    if i % 2 == 0:
        files = {f"source/source_{i:06d}/B02.tif", f"source/source_{i:06d}/B03.tif"}
        files = {f for f in files if keys is None or f.split("/")[-1][:3] in keys}
        if keys is None or "documentation" in keys:
            files.add("source/_common/documentation.pdf")
        return files
    files = set()
    if keys is None or "labels" in keys:
        files.add(f"labels/labels_{i:06d}/labels.geojson")
    if keys is None or "train_split" in keys:
        files.add("labels/_common/train_split.csv")
    return files


def union(indices, keys=None) -> set[str]:
    out: set[str] = set()
    for i in indices:
        out |= item_files(i, keys)
    return out


def test_index_counts_and_common_once(db):
    counts = db.counts()
    assert counts["items"] == N
    assert counts["assets"] == N // 2 * 3 + N // 2 * 2
    # 10 x B02, 10 x B03, 10 x labels, + documentation and train_split once each
    assert counts["files"] == N // 2 * 3 + 2
    assert selected(db) == union(range(N))
    assert db.is_indexed("fp-1") and not db.is_indexed("fp-2")


def test_collection_and_asset_keys(db):
    assert selected(db, collections=["source=B02"]) == {
        f"source/source_{i:06d}/B02.tif" for i in range(0, N, 2)
    }
    assert selected(db, collections=["labels"]) == union(range(1, N, 2))
    both = selected(db, collections=["labels=labels", "source"], assets="B03")
    assert both == {f"source/source_{i:06d}/B03.tif" for i in range(0, N, 2)} | {
        f"labels/labels_{i:06d}/labels.geojson" for i in range(1, N, 2)
    }
    sel = db.select(make_filters(collections=["nope"]))
    assert sel.files == 0 and sel.unknown_collections == ["nope"]


def _matching_days(lo: dt.date, hi: dt.date) -> list[int]:
    """Items whose time (day i at 10:00, or days i..i+10 every fifth) overlaps [lo, hi]."""
    out = []
    for i in range(N):
        start = dt.date(2020, 1, 1) + dt.timedelta(days=i)
        end = start + dt.timedelta(days=10) if i % 5 == 4 else start
        if start <= hi and end >= lo:
            out.append(i)
    return out


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("2020-01-06", dt.date(2020, 1, 6), dt.date(2020, 1, 6)),
        ("2020-01-12/2020-01-14", dt.date(2020, 1, 12), dt.date(2020, 1, 14)),
        ("../2020-01-02", dt.date(1900, 1, 1), dt.date(2020, 1, 2)),
    ],
)
def test_datetime_single_day_and_ranges(db, text, lo, hi):
    expected = _matching_days(lo, hi)
    assert any(i % 5 == 4 for i in expected) or text.startswith("..")  # ranges are exercised
    assert selected(db, datetime=text) == union(expected)


def test_bbox_and_combination(db):
    bbox = "-9.55,40.0,-9.25,40.05"
    expected = [i for i in range(N) if -10 + 0.1 * i <= -9.25 and -10 + 0.1 * i + 0.08 >= -9.55]
    assert expected == [4, 5, 6, 7]
    assert selected(db, bbox=bbox) == union(expected)
    combo = selected(db, bbox=bbox, datetime="2020-01-06", collections=["source=B02"])
    assert combo == {"source/source_000004/B02.tif"}  # item 4 spans Jan 5-15; 5 is a label


def test_intersects_uses_true_geometry_not_bbox(db):
    # item 10 is a triangle filling the lower-left half of its box
    bbox, geometry = footprint(10)
    assert len(geometry["coordinates"][0]) == 4
    minx, miny, maxx, maxy = bbox
    corner = {
        "type": "Polygon",
        "coordinates": [
            [
                [maxx - 0.01, maxy - 0.01],
                [maxx + 0.005, maxy - 0.01],
                [maxx + 0.005, maxy + 0.005],
                [maxx - 0.01, maxy + 0.005],
                [maxx - 0.01, maxy - 0.01],
            ]
        ],
    }
    corner_box = f"{maxx - 0.01},{maxy - 0.01},{maxx + 0.005},{maxy + 0.005}"
    assert selected(db, bbox=corner_box) == union([10])  # the boxes overlap ...
    assert selected(db, intersects=json.dumps(corner)) == set()  # ... the geometries do not
    inside = {"type": "Point", "coordinates": [minx + 0.01, miny + 0.01]}
    assert selected(db, intersects=json.dumps(inside)) == union([10])
    # a square item next to it is hit by its upper-right corner
    bbox11, _ = footprint(11)
    corner11 = {"type": "Point", "coordinates": [bbox11[2] - 0.001, bbox11[3] - 0.001]}
    assert selected(db, intersects=json.dumps(corner11)) == union([11])


def test_reindex_keeps_file_states_and_marks_changed_files_stale(tmp_path):
    database = AssetDB(tmp_path / "a.sqlite")
    item = {
        "type": "Feature",
        "id": "a",
        "collection": "c",
        "bbox": [0, 0, 1, 1],
        "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "assets": {"x": {"href": "http://h/x.tif"}, "y": {"href": "http://h/y.tif"}},
    }
    database.begin_index()
    database.add_items([item_record(item, "/cat/a.json", None)])
    database.finish_index("v1")
    database.select(make_filters())
    rows = list(database.iter_selected())
    database.record([("done", 5, "s", "size", 1, None, None, r[0]) for r in rows])
    item["assets"]["y"]["href"] = "http://h/y2.tif"
    database.begin_index()
    database.add_items([item_record(item, "/cat/a.json", None)])
    database.finish_index("v2")
    database.select(make_filters())
    status = {r[1]: r[5] for r in database.iter_selected()}
    assert status == {"c/a/x.tif": "done", "c/a/y.tif": "stale"}
    database.close()


def test_untrusted_names_stay_inside():
    for text in ("../../etc", "a/b", "..", "", "C:\\x", "x\x00y"):
        part = safe_component(text)
        assert part not in ("", ".", "..") and "/" not in part and "\\" not in part
        assert PurePosixPath(part).name == part
    assert asset_extension("https://h/a/b.tar.gz?sig=1") == ".tar.gz"
    assert asset_extension("https://h/a/data", "image/tiff; application=geotiff") == ".tif"
    assert asset_extension("https://h/a/b.TIF") == ".tif"
    assert asset_extension("https://h/a/b.weird extension") == ""
