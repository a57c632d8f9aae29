"""The chip index: one GeoParquet row per full chip of a STAC item, with cloud/nodata fractions.

Columns are stacchip's (``chipid``, ``date``, ``chip_index_x``, ``chip_index_y``,
``cloud_cover_percentage``, ``nodata_percentage`` as 0..1 fractions, WGS84 ``geometry``) plus
``platform``, ``item_id``, ``datetime``, extra sensor fractions (``snow_ice_percentage`` for L1C)
and the chip bounds in the item's own CRS (``native_crs``, ``native_xmin`` … ``native_ymax``), so a
reader cuts pixels without reprojecting. Chips with more nodata than ``max_nodata`` are dropped.
Geometry is the four transformed corners of each chip (as stacchip); a 2.56 km chip edge is
straight to well under a pixel in WGS84 away from the poles and the antimeridian.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pystac
import shapely
from affine import Affine
from pyproj import Transformer

from eolab.chips.items import read_stac
from eolab.chips.rasterio_io import gdal_env
from eolab.chips.sensors import ChipStatistics, Mask, statistics_for
from eolab.chips.stats import ChipGrid, chip_fractions
from eolab.core.atomic import atomic_path
from eolab.core.errors import InputError
from eolab.core.progress import bar as progress_bar
from eolab.core.s3 import S3Access

WGS84 = "EPSG:4326"
STAT_COLUMNS = {"cloud": "cloud_cover_percentage", "nodata": "nodata_percentage"}
META_KEY = "eolab_chips"
INDEX_VERSION = 1


def grid_of(item: pystac.Item, chip_size: int) -> ChipGrid:
    """The chip grid of an item: its own ``proj:*`` fields, else its finest asset's."""
    props = item.properties
    shape, transform = props.get("proj:shape"), props.get("proj:transform")
    if not (shape and transform):
        sized = [a.extra_fields for a in item.assets.values() if "proj:shape" in a.extra_fields]
        if not sized:
            raise InputError(f"STAC item {item.id}: no proj:shape/proj:transform to grid")
        finest = max(sized, key=lambda f: f["proj:shape"][0] * f["proj:shape"][1])
        shape, transform = finest["proj:shape"], finest.get("proj:transform")
        props = {**finest, **{k: v for k, v in props.items() if k in ("proj:code", "proj:epsg")}}
    code = props.get("proj:code") or (
        f"EPSG:{props['proj:epsg']}" if props.get("proj:epsg") else None
    )
    if not (code and transform):
        raise InputError(f"STAC item {item.id}: needs proj:code and proj:transform")
    return ChipGrid(
        shape=(int(shape[0]), int(shape[1])),
        transform=Affine(*transform[:6]),
        size=chip_size,
        crs=code,
    )


@functools.cache
def wgs84_crs() -> pyproj.CRS:
    """WGS84 as a CRS object, parsed once (geopandas parses a string on every table)."""
    return pyproj.CRS.from_user_input(WGS84)


@functools.lru_cache(maxsize=64)
def to_wgs84(crs: str) -> Transformer:
    """A cached transformer from ``crs`` to WGS84 lon/lat (creating one costs milliseconds)."""
    return Transformer.from_crs(crs, WGS84, always_xy=True)


def chip_polygons(bounds: np.ndarray, crs: str) -> np.ndarray:
    """WGS84 polygons (shapely array) of chip bounds ``(n, 4)`` in ``crs``, corners only."""
    xmin, ymin, xmax, ymax = bounds.T
    xs = np.stack([xmin, xmax, xmax, xmin], axis=1)
    ys = np.stack([ymin, ymin, ymax, ymax], axis=1)
    lon, lat = to_wgs84(crs).transform(xs, ys)
    return shapely.polygons(np.stack([lon, lat], axis=-1))


def chip_ids(item_id: str, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """stacchip's chip ids ``<item>-<x>-<y>`` (vectorised string concatenation)."""
    head = np.strings.add(f"{item_id}-", ix.astype(np.str_))
    return np.strings.add(np.strings.add(head, "-"), iy.astype(np.str_)).astype(object)


def all_fractions(grid: ChipGrid, masks: dict[str, Mask]) -> dict[str, np.ndarray]:
    """Per-chip fraction of every mask, flattened row-major; cloud and nodata default to 0."""
    out = {name: np.zeros(grid.count) for name in STAT_COLUMNS}
    for name, mask in masks.items():
        out[name] = chip_fractions(mask.array, mask.transform, grid, mask.classes).ravel()
    return out


def chip_table(
    item_id: str,
    datetime: pd.Timestamp,
    platform: str,
    grid: ChipGrid,
    fractions: dict[str, np.ndarray],
    max_nodata: float,
) -> gpd.GeoDataFrame:
    """The index rows of one item (pure: no I/O); chips over ``max_nodata`` dropped."""
    ix, iy = grid.indices()
    bounds = grid.bounds()
    keep = fractions["nodata"] <= max_nodata
    ix, iy, bounds = ix[keep], iy[keep], bounds[keep]
    n = int(keep.sum())
    ts = pd.Timestamp(datetime)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    columns: dict[str, Any] = {
        "chipid": chip_ids(item_id, ix, iy),
        "date": pd.array(
            pa.array(np.full(n, np.datetime64(ts.date(), "D")), type=pa.date32()),
            dtype=pd.ArrowDtype(pa.date32()),
        ),
        "chip_index_x": ix.astype(np.uint16),
        "chip_index_y": iy.astype(np.uint16),
    }
    for name in sorted(fractions, key=lambda k: (k not in STAT_COLUMNS, k)):
        column = STAT_COLUMNS.get(name, f"{name}_percentage")
        columns[column] = fractions[name][keep].astype(np.float32)
    columns |= {
        "platform": np.full(n, platform, dtype=object),
        "item_id": np.full(n, item_id, dtype=object),
        "datetime": pd.DatetimeIndex(
            np.full(n, np.datetime64(ts.tz_localize(None), "ms")), tz="UTC"
        ),
        "native_crs": np.full(n, grid.crs, dtype=object),
        "native_xmin": bounds[:, 0],
        "native_ymin": bounds[:, 1],
        "native_xmax": bounds[:, 2],
        "native_ymax": bounds[:, 3],
    }
    columns["geometry"] = gpd.array.from_shapely(chip_polygons(bounds, grid.crs), crs=wgs84_crs())
    return gpd.GeoDataFrame(columns, geometry="geometry")


def index_item(
    item: pystac.Item,
    chip_size: int = 256,
    max_nodata: float = 0.5,
    statistics: ChipStatistics | None = None,
) -> gpd.GeoDataFrame:
    """Index one STAC item: read its masks through the sensor hook and reduce them per chip."""
    statistics = statistics or statistics_for(item)
    grid = statistics.grid(grid_of(item, chip_size))
    fractions = all_fractions(grid, statistics.masks(item))
    if item.datetime is None:
        raise InputError(f"STAC item {item.id}: no datetime")
    table = chip_table(
        item.id, item.datetime, statistics.platform_of(item), grid, fractions, max_nodata
    )
    table.attrs[META_KEY] = {
        "version": INDEX_VERSION,
        "chip_size": chip_size,
        "max_nodata": max_nodata,
        "sensor": statistics.name,
        "resolution": getattr(statistics, "resolution", None),
        "grid": {
            "shape": list(grid.shape),
            "transform": list(grid.transform)[:6],
            "crs": grid.crs,
            "nx": grid.nx,
            "ny": grid.ny,
        },
        "chips_total": grid.count,
        "chips_kept": len(table),
    }
    return table


def write_index(table: gpd.GeoDataFrame, path: Path) -> Path:
    """Atomically write an index as GeoParquet 1.1 (WKB geometry plus a bbox covering column)."""
    with atomic_path(path, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False, write_covering_bbox=True)
    return path


def index_settings(path: Path) -> dict | None:
    """The settings an existing index file was built with (None when absent or unreadable)."""
    try:
        meta = pq.read_schema(path).metadata or {}
        attrs = json.loads(meta.get(b"PANDAS_ATTRS", b"{}"))
        return attrs.get(META_KEY)
    except (OSError, pa.ArrowInvalid, json.JSONDecodeError):
        return None


def load_items(paths: Iterable[str | Path]) -> list[pystac.Item]:
    """STAC items from item JSON files, or from every item under a catalog or collection."""
    items: list[pystac.Item] = []
    for path in paths:
        try:
            obj = read_stac(path)
        except (OSError, json.JSONDecodeError, pystac.STACError) as exc:
            raise InputError(f"{path}: not a readable STAC file ({exc})") from exc
        if isinstance(obj, pystac.Item):
            items.append(obj)
        elif isinstance(obj, pystac.Catalog):
            items.extend(obj.get_items(recursive=True))
        else:
            raise InputError(f"{path}: expected a STAC item, collection or catalog")
    return items


def index_items(
    items: list[pystac.Item],
    out_dir: Path,
    chip_size: int = 256,
    max_nodata: float = 0.5,
    sensor: str = "auto",
    s3: S3Access | None = None,
    progress: bool = True,
    resolution: float | None = None,
) -> list[Path]:
    """Write ``out_dir/<item_id>.parquet`` for each item; files already built with the same
    settings are kept (a rerun resumes)."""
    written = []
    with gdal_env(s3):
        for item in progress_bar(items, desc="chip index", unit="item", disable=not progress):
            path = Path(out_dir) / f"{item.id}.parquet"
            statistics = statistics_for(item, sensor, resolution)
            done = index_settings(path) if path.exists() else None
            if (
                done
                and done.get("version") == INDEX_VERSION
                and done.get("chip_size") == chip_size
                and done.get("max_nodata") == max_nodata
                and done.get("sensor") == statistics.name
                and done.get("resolution") == getattr(statistics, "resolution", None)
            ):
                written.append(path)
                continue
            table = index_item(item, chip_size, max_nodata, statistics)
            written.append(write_index(table, path))
    return written
