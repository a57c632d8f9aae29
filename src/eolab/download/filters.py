"""Asset filters for STAC datasets: collection -> asset keys, datetime, bbox, intersects.

Pure parsing and matching; the asset database turns a `Filters` into SQL (and a shapely test for
``intersects``). Times are seconds since the epoch (UTC); intervals are closed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eolab.core.errors import InputError

OPEN = math.inf  # an open end of a time interval

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEAR_MONTH = re.compile(r"^\d{4}-\d{2}$")
_YEAR = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class Filters:
    """Which assets to download; every field is optional and they combine with AND.

    ``collections`` maps a collection id to its asset-key allow-list (None = every key); when it
    is empty every collection is taken. ``assets`` is an allow-list for the collections that have
    none of their own. ``datetime`` is a closed interval (``-inf``/``inf`` = open).
    """

    collections: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    assets: frozenset[str] | None = None
    datetime: tuple[float, float] | None = None
    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for summaries and logs)."""
        return {
            "collections": {
                k: sorted(v) if v is not None else None for k, v in self.collections.items()
            },
            "assets": sorted(self.assets) if self.assets is not None else None,
            "datetime": [_iso_or_none(t) for t in self.datetime] if self.datetime else None,
            "bbox": list(self.bbox) if self.bbox else None,
            "intersects": self.intersects,
        }


def _iso_or_none(t: float) -> str | None:
    if math.isinf(t):
        return None
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> float:
    """An RFC 3339 date-time (``Z`` or offset; naive = UTC) as epoch seconds."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise InputError(f"not an RFC 3339 date or date-time: {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _period(text: str) -> tuple[float, float]:
    """A date-only value as the closed interval it covers (a year, a month or a day)."""
    text = text.strip()
    if _YEAR.match(text):
        start = dt.datetime(int(text), 1, 1, tzinfo=dt.UTC)
        end = dt.datetime(int(text) + 1, 1, 1, tzinfo=dt.UTC)
    elif _YEAR_MONTH.match(text):
        year, month = map(int, text.split("-"))
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    elif _DATE_ONLY.match(text):
        try:
            start = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise InputError(f"not a date: {text!r}") from exc
        end = start + dt.timedelta(days=1)
    else:
        t = parse_instant(text)
        return t, t
    # closed interval: the last microsecond of the period is still inside
    return start.timestamp(), end.timestamp() - 1e-6


def parse_datetime_filter(text: str) -> tuple[float, float]:
    """``2015-07-01`` (that day), ``2015-07`` or ``2015`` (that month/year), a date-time
    (that instant), or a range ``A/B`` with either side open (``..`` or empty)."""
    if "/" in text:
        a, _, b = text.partition("/")
        start = -OPEN if a.strip() in ("", "..") else _period(a)[0]
        end = OPEN if b.strip() in ("", "..") else _period(b)[1]
    else:
        start, end = _period(text)
    if start > end:
        raise InputError(f"datetime range {text!r} ends before it starts")
    return start, end


def item_interval(properties: Mapping[str, Any]) -> tuple[float, float] | None:
    """The closed time interval of a STAC item: ``datetime``, else ``start/end_datetime``
    (a missing side is open); None when the item has no time at all."""
    instant = properties.get("datetime")
    start = properties.get("start_datetime")
    end = properties.get("end_datetime")
    if start is None and end is None:
        if instant is None:
            return None
        t = parse_instant(instant)
        return t, t
    return (
        parse_instant(start) if start is not None else -OPEN,
        parse_instant(end) if end is not None else OPEN,
    )


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals share at least one instant."""
    return a[0] <= b[1] and a[1] >= b[0]


def parse_bbox(text: str | Iterable[float]) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in WGS84 degrees (minx > maxx crosses the antimeridian)."""
    try:
        values = (
            [float(v) for v in text.replace(" ", "").split(",")]
            if isinstance(text, str)
            else [float(v) for v in text]
        )
    except ValueError as exc:
        raise InputError(f"bbox must be four numbers minx,miny,maxx,maxy: {text!r}") from exc
    if len(values) != 4:
        raise InputError(f"bbox must be four numbers minx,miny,maxx,maxy: {text!r}")
    minx, miny, maxx, maxy = values
    if miny > maxy:
        raise InputError(f"bbox {text!r} has miny > maxy")
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError(f"bbox {text!r} latitude outside -90..90")
    return minx, miny, maxx, maxy


def bbox_parts(bbox: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """One box, or two when it crosses the antimeridian (minx > maxx)."""
    minx, miny, maxx, maxy = bbox
    if minx <= maxx:
        return [bbox]
    return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]


def bboxes_intersect(a: tuple[float, ...], b: tuple[float, float, float, float]) -> bool:
    """Whether item bbox ``a`` (2D or 3D) touches filter bbox ``b``."""
    if len(a) == 6:
        a = (a[0], a[1], a[3], a[4])
    return any(
        a[0] <= part[2] and a[2] >= part[0] and a[1] <= part[3] and a[3] >= part[1]
        for part in bbox_parts(b)
    )


def load_intersects(value: str) -> dict[str, Any]:
    """A GeoJSON geometry from inline JSON or a file; Features and FeatureCollections are
    reduced to the union of their geometries."""
    text = value.strip()
    if not text.startswith("{"):
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read intersects GeoJSON {path}: {exc.strerror}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"intersects is not valid GeoJSON: {exc}") from exc
    return geometry_of(obj)


def geometry_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The geometry of a GeoJSON object, validated by shapely."""
    import shapely.geometry

    kind = obj.get("type") if isinstance(obj, Mapping) else None
    if kind == "Feature":
        return geometry_of(obj["geometry"])
    if kind == "FeatureCollection":
        from shapely.ops import unary_union

        shapes = [shapely.geometry.shape(geometry_of(f)) for f in obj.get("features", [])]
        if not shapes:
            raise InputError("intersects FeatureCollection has no features")
        return shapely.geometry.mapping(unary_union(shapes))
    try:
        geom = shapely.geometry.shape(obj)
    except Exception as exc:  # shapely raises several types for bad GeoJSON
        raise InputError(f"intersects is not a GeoJSON geometry: {exc}") from exc
    if geom.is_empty:
        raise InputError("intersects geometry is empty")
    return dict(obj)


def parse_collection_option(text: str) -> tuple[str, frozenset[str] | None]:
    """``COLLECTION`` (all asset keys) or ``COLLECTION=key1,key2`` (only those keys)."""
    name, sep, keys = text.partition("=")
    name = name.strip()
    if not name:
        raise InputError(f"--collection needs a collection id: {text!r}")
    if not sep:
        return name, None
    allowed = frozenset(k.strip() for k in keys.split(",") if k.strip())
    if not allowed:
        raise InputError(f"--collection {text!r} lists no asset keys after '='")
    return name, allowed


def make_filters(
    collections: Iterable[str] = (),
    assets: str | None = None,
    datetime: str | None = None,
    bbox: str | None = None,
    intersects: str | None = None,
) -> Filters:
    """Build `Filters` from command-line strings; bbox and intersects exclude each other."""
    if bbox and intersects:
        raise InputError(
            "--bbox and --intersects cannot be combined: give the area once, either as a box or "
            "as a GeoJSON geometry"
        )
    mapping: dict[str, frozenset[str] | None] = {}
    for text in collections:
        name, keys = parse_collection_option(text)
        if name in mapping and mapping[name] is not None and keys is not None:
            keys = mapping[name] | keys
        elif name in mapping:
            keys = None
        mapping[name] = keys
    allowed = (
        frozenset(k.strip() for k in assets.split(",") if k.strip()) if assets is not None else None
    )
    return Filters(
        collections=mapping,
        assets=allowed or None,
        datetime=parse_datetime_filter(datetime) if datetime else None,
        bbox=parse_bbox(bbox) if bbox else None,
        intersects=load_intersects(intersects) if intersects else None,
    )
