"""Filter parsing: datetime (days, ranges, item ranges), bbox, intersects, collections."""

import datetime as dt
import json

import pytest

from eolab.core.errors import InputError
from eolab.download.filters import (
    bbox_parts,
    bboxes_intersect,
    intervals_overlap,
    item_interval,
    load_intersects,
    make_filters,
    parse_bbox,
    parse_collection_option,
    parse_datetime_filter,
)


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_single_day_covers_the_whole_day_only():
    start, end = parse_datetime_filter("2020-05-01")
    assert start == ts("2020-05-01T00:00:00")
    assert ts("2020-05-01T23:59:59.999") <= end < ts("2020-05-02T00:00:00")


def test_month_year_and_instant():
    assert (
        parse_datetime_filter("2020-02")[1]
        < ts("2020-03-01")
        <= parse_datetime_filter("2020-03")[0]
    )
    assert parse_datetime_filter("2020-12")[1] < ts("2021-01-01")
    assert parse_datetime_filter("2021")[0] == ts("2021-01-01")
    t = parse_datetime_filter("2020-05-01T10:00:00Z")
    assert t == (ts("2020-05-01T10:00:00"), ts("2020-05-01T10:00:00"))


def test_ranges_with_open_ends():
    start, end = parse_datetime_filter("2020-01-01/2020-01-31")
    assert start == ts("2020-01-01") and ts("2020-01-31T23:00") < end < ts("2020-02-01")
    assert parse_datetime_filter("../2020-01-01")[0] == float("-inf")
    assert parse_datetime_filter("2020-01-01/..")[1] == float("inf")
    assert parse_datetime_filter("2020-01-01/")[1] == float("inf")
    with pytest.raises(InputError, match="ends before"):
        parse_datetime_filter("2020-02-01/2020-01-01")
    with pytest.raises(InputError, match="RFC 3339"):
        parse_datetime_filter("yesterday")


def test_item_interval_uses_datetime_or_start_end():
    assert item_interval({"datetime": "2020-01-02T00:00:00Z"}) == (ts("2020-01-02"),) * 2
    start_end = {
        "datetime": None,
        "start_datetime": "2020-01-01T00:00:00Z",
        "end_datetime": "2020-01-10T00:00:00Z",
    }
    assert item_interval(start_end) == (ts("2020-01-01"), ts("2020-01-10"))
    assert item_interval({"datetime": None, "start_datetime": "2020-01-01T00:00:00Z"})[1] == float(
        "inf"
    )
    assert item_interval({"datetime": None}) is None
    # an item spanning Jan 1-10 matches a filter on Jan 5 only through its range
    assert intervals_overlap(item_interval(start_end), parse_datetime_filter("2020-01-05"))
    assert not intervals_overlap(item_interval(start_end), parse_datetime_filter("2020-01-11"))


def test_bbox_parsing_and_antimeridian():
    assert parse_bbox("1, 2, 3, 4") == (1, 2, 3, 4)
    for bad in ("1,2,3", "a,b,c,d", "0,10,1,5", "0,-100,1,5"):
        with pytest.raises(InputError):
            parse_bbox(bad)
    parts = bbox_parts((170, -10, -170, 10))
    assert parts == [(170, -10, 180, 10), (-180, -10, -170, 10)]
    assert bboxes_intersect((175, 0, 176, 1), (170, -10, -170, 10))
    assert bboxes_intersect((-175, 0, -174, 1), (170, -10, -170, 10))
    assert not bboxes_intersect((0, 0, 1, 1), (170, -10, -170, 10))
    assert bboxes_intersect((0, 0, 0, 1, 1, 5), (0.5, 0.5, 2, 2))


def test_bbox_and_intersects_exclude_each_other():
    geom = '{"type": "Point", "coordinates": [0, 0]}'
    with pytest.raises(InputError, match="cannot be combined"):
        make_filters(bbox="0,0,1,1", intersects=geom)


def test_intersects_from_file_feature_and_collection(tmp_path):
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": square}))
    assert load_intersects(str(path)) == square
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": square, "properties": {}},
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [5, 5]},
            },
        ],
    }
    union = load_intersects(json.dumps(fc))
    assert union["type"] == "GeometryCollection"
    with pytest.raises(InputError, match="cannot read"):
        load_intersects(str(tmp_path / "missing.geojson"))
    with pytest.raises(InputError, match="not a GeoJSON geometry"):
        load_intersects('{"type": "Polygon", "coordinates": "x"}')


def test_collection_options_combine():
    assert parse_collection_option("labels") == ("labels", None)
    assert parse_collection_option("source=B02, B03") == ("source", frozenset({"B02", "B03"}))
    with pytest.raises(InputError):
        parse_collection_option("source=")
    f = make_filters(["source=B02", "source=B03", "labels", "labels=x"], assets="readme")
    assert f.collections == {"source": frozenset({"B02", "B03"}), "labels": None}
    assert f.assets == frozenset({"readme"})
