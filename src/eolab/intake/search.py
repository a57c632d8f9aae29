"""STAC search of the Sentinel-2 L1C products of one MGRS tile over a time range.

One query per time window (a UTC day by default), so no query comes near the STAC API's
10 000-result paging cap; a window that still reaches the cap is split in half and searched
again. The tile is selected by a CQL2 filter on ``grid:code`` where the server advertises the
filter extension (CDSE does), else by datetime + intersects with the tile footprint, keeping the
items whose ``grid:code`` matches (servers without filter support, such as ``rustac serve``,
silently return nothing for a filter). Cloud cover is checked on the client as well.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eolab.core.errors import ConfigError, RemoteError

log = logging.getLogger(__name__)

STAC_URL = "https://stac.dataspace.copernicus.eu/v1"
COLLECTION = "sentinel-2-l1c"
#: CDSE's STAC API stops paging after this many results for one query.
RESULT_CAP = 10_000
PAGE_SIZE = 100
#: A window shorter than this that still reaches the cap is an error, not split further.
MIN_WINDOW = dt.timedelta(minutes=1)
STRATEGIES = ("auto", "filter", "intersects")
UTC = dt.UTC


@dataclass(frozen=True)
class Window:
    """A half-open UTC time window [start, end)."""

    start: dt.datetime
    end: dt.datetime

    def stac_interval(self) -> str:
        """The closed STAC interval ``start/end - 1 ms`` (no product is counted twice)."""
        last = self.end - dt.timedelta(milliseconds=1)
        return f"{_iso(self.start)}/{_iso(last)}"

    def halves(self) -> tuple[Window, Window]:
        mid = self.start + (self.end - self.start) / 2
        mid = mid.replace(microsecond=mid.microsecond // 1000 * 1000)
        return Window(self.start, mid), Window(mid, self.end)


@dataclass
class SearchResult:
    """Items found (dicts, sorted by datetime then id), the windows queried, the strategy used."""

    items: list[dict[str, Any]]
    strategy: str
    windows: list[tuple[Window, int]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # ids of older processing versions


def _iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_date(text: str | dt.date | dt.datetime) -> dt.datetime:
    """A date or datetime (naive = UTC) as an aware UTC datetime."""
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        value = dt.datetime(text.year, text.month, text.day)
    else:
        try:
            value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"date {text!r}: expected YYYY-MM-DD or an ISO datetime") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_windows(start: dt.datetime, end: dt.datetime, window: dt.timedelta) -> list[Window]:
    """Consecutive half-open windows of length ``window`` covering [start, end) (last may be
    shorter). With the default one-day window and midnight bounds these are UTC days."""
    if window <= dt.timedelta(0):
        raise ConfigError(f"search window must be positive, got {window}")
    if end <= start:
        raise ConfigError(f"empty time range: end {_iso(end)} is not after start {_iso(start)}")
    out = []
    lo = start
    while lo < end:
        hi = min(lo + window, end)
        out.append(Window(lo, hi))
        lo = hi
    return out


def grid_code(tile: str) -> str:
    """The CDSE ``grid:code`` of an MGRS tile: ``MGRS-35VLH``."""
    return f"MGRS-{tile}"


def cql2_filter(tile: str, max_cloud_cover: float | None) -> dict[str, Any]:
    """CQL2-JSON: ``grid:code = 'MGRS-<tile>'`` (and ``eo:cloud_cover <= max``)."""
    tile_test = {"op": "=", "args": [{"property": "grid:code"}, grid_code(tile)]}
    if max_cloud_cover is None:
        return tile_test
    cloud_test = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud_cover]}
    return {"op": "and", "args": [tile_test, cloud_test]}


def tile_footprint(tile: str, densify: int = 16) -> dict[str, Any]:
    """The tile's 109.8 km square as a GeoJSON polygon in WGS84 (edges densified).

    Raises ConfigError for an invalid MGRS id.
    """
    from pyproj import Transformer

    from eolab.sentinel2.mgrs import TILE_SIZE_M, tile_grid

    grid = tile_grid(tile)
    x0, y1 = grid.ulx, grid.uly
    x1, y0 = x0 + TILE_SIZE_M, y1 - TILE_SIZE_M
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1)]
    ring = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:], strict=False):
        for i in range(densify):
            t = i / densify
            ring.append((ax + (bx - ax) * t, ay + (by - ay) * t))
    to_wgs84 = Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform([p[0] for p in ring], [p[1] for p in ring])
    coords = [[round(x, 7), round(y, 7)] for x, y in zip(lon, lat, strict=True)]
    coords.append(coords[0])
    return {"type": "Polygon", "coordinates": [coords]}


def keep_item(item: dict[str, Any], tile: str, max_cloud_cover: float | None) -> bool:
    """True when the item is of ``tile`` and within the cloud limit (a missing cover fails it)."""
    props = item.get("properties", {})
    if props.get("grid:code") != grid_code(tile):
        return False
    if max_cloud_cover is None:
        return True
    cover = props.get("eo:cloud_cover")
    return cover is not None and float(cover) <= max_cloud_cover


def choose_strategy(conforms_to_filter: bool, requested: str = "auto") -> str:
    """``filter`` where the server advertises the filter extension, else ``intersects``."""
    if requested not in STRATEGIES:
        raise ConfigError(f"search strategy {requested!r}: expected one of {', '.join(STRATEGIES)}")
    if requested != "auto":
        return requested
    return "filter" if conforms_to_filter else "intersects"


def open_client(url: str, retries: int = 5, timeout: float = 60.0):
    """A pystac-client Client for ``url`` with retries on 429/5xx; clear errors if unreachable."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(
        total=retries,
        backoff_factor=1.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # POST searches are read-only: retry them too
        raise_on_status=False,
    )
    stac_io = StacApiIO(max_retries=retry, timeout=timeout)
    try:
        return Client.open(url, stac_io=stac_io)
    except APIError as exc:
        raise RemoteError(f"STAC API {url} is unreachable or failed: {_short(exc)}") from exc
    except Exception as exc:  # pystac raises plain errors for non-STAC answers
        raise RemoteError(f"STAC API {url}: not a STAC API landing page ({_short(exc)})") from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "…"


def search_tile(
    client,
    tile: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    collection: str = COLLECTION,
    max_cloud_cover: float | None = None,
    window: dt.timedelta = dt.timedelta(days=1),
    strategy: str = "auto",
    cap: int = RESULT_CAP,
    page_size: int = PAGE_SIZE,
    on_window: Callable[[Window, int], None] | None = None,
) -> SearchResult:
    """Search every window of [start, end) for ``tile``'s products; dedupe and sort them.

    A window whose result count reaches ``cap`` may have been truncated by the server: it is
    split in half and searched again, down to `MIN_WINDOW`.
    """
    from pystac_client import ConformanceClasses

    from eolab.sentinel2.mgrs import tile_grid

    tile = tile_grid(tile).tile  # validates the MGRS id, normalises "T35VLH"
    if max_cloud_cover is not None and not 0 <= max_cloud_cover <= 100:
        raise ConfigError(f"max cloud cover {max_cloud_cover}: expected 0..100 (percent)")
    chosen = choose_strategy(client.conforms_to(ConformanceClasses.FILTER), strategy)
    query: dict[str, Any] = {"collections": [collection], "limit": min(page_size, cap)}
    if chosen == "filter":
        query.update(filter=cql2_filter(tile, max_cloud_cover), filter_lang="cql2-json")
    else:
        query["intersects"] = tile_footprint(tile)
    result = SearchResult(items=[], strategy=chosen)
    seen: set[str] = set()
    pending = list(reversed(time_windows(start, end, window)))
    while pending:
        win = pending.pop()
        found = _query_window(client, query, win, cap)
        result.windows.append((win, len(found)))
        if on_window:
            on_window(win, len(found))
        if len(found) >= cap:
            if win.end - win.start <= MIN_WINDOW:
                raise RemoteError(
                    f"{len(found)} results in {win.stac_interval()} reach the STAC paging cap "
                    f"({cap}) even in a window of {win.end - win.start}: narrow the search"
                )
            log.info("window %s reached the cap of %d results: splitting", win.stac_interval(), cap)
            first, second = win.halves()
            pending += [second, first]
            continue
        for item in found:
            if item["id"] not in seen and keep_item(item, tile, max_cloud_cover):
                seen.add(item["id"])
                result.items.append(item)
    result.items, result.superseded = latest_versions(result.items)
    for old_id in result.superseded:
        log.info("%s: superseded by a newer processing of the same acquisition; skipped", old_id)
    return result


def latest_versions(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One item per acquisition (platform and sensing time): the newest processing (highest
    ``processing:version``, then latest ``processing:datetime``). CDSE lists reprocessed
    products (another baseline, another id) beside the originals; both in the cube would be
    two time steps with the same time. Returns (kept items sorted by datetime then id,
    ids left out)."""

    def newest_first(it: dict[str, Any]) -> tuple:
        props = it["properties"]
        version = tuple(int(p) for p in re.findall(r"\d+", str(props.get("processing:version"))))
        return (version, str(props.get("processing:datetime") or ""), it["id"])

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        props = item["properties"]
        key = (str(props.get("platform") or ""), str(props.get("datetime") or item["id"]))
        groups.setdefault(key, []).append(item)
    kept, dropped = [], []
    for group in groups.values():
        group.sort(key=newest_first, reverse=True)
        kept.append(group[0])
        dropped += [it["id"] for it in group[1:]]
    kept.sort(key=lambda it: (it["properties"].get("datetime") or "", it["id"]))
    return kept, sorted(dropped)


def _query_window(client, query: dict[str, Any], win: Window, cap: int) -> list[dict[str, Any]]:
    """All items of one window (at most ``cap``), as dicts."""
    from pystac_client.exceptions import APIError

    try:
        search = client.search(**query, datetime=win.stac_interval(), max_items=cap)
        return list(search.items_as_dicts())
    except APIError as exc:
        raise RemoteError(
            f"STAC search {win.stac_interval()} failed at {client.get_self_href()}: {_short(exc)}"
        ) from exc
