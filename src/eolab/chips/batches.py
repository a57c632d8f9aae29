"""A long STAC item list indexed in batches: one job and one GeoParquet file per batch.

The item list is a text file naming one STAC item JSON per line (a path relative to the list's
folder, or absolute; blank lines and ``#`` comments are skipped). Its length is known when the
workflow is planned, so the batch count ``ceil(items / batch_size)`` is fixed then: 10 000 items
in batches of 500 are 20 Slurm jobs, not 10 000 (sacct load) nor one. Each batch file holds the
chip rows of its items; ``eolab chips merge`` turns the batch files into the same partitioned
index the per-item files give.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import pandas as pd

from eolab.chips.index import index_item, load_items, statistics_for, write_index
from eolab.chips.rasterio_io import gdal_env
from eolab.core.errors import InputError
from eolab.core.s3 import S3Access


def read_item_list(path: str | Path) -> list[Path]:
    """The item JSON paths a list names, in order (relative ones resolved against its folder)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: item list not readable ({exc.strerror})") from exc
    names = [line.strip() for line in lines]
    return [path.parent / n for n in names if n and not n.startswith("#")]


def batch_count(items: int, batch_size: int) -> int:
    """Batches of ``batch_size`` items that hold ``items`` items (at least one)."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    return max(1, math.ceil(items / batch_size))


def batch_of(paths: list[Path], batch: int, batch_size: int) -> list[Path]:
    """The item paths of batch number ``batch`` (from 0)."""
    count = batch_count(len(paths), batch_size)
    if not 0 <= batch < count:
        raise InputError(f"batch {batch} out of range: the list has {count} batches")
    return paths[batch * batch_size : (batch + 1) * batch_size]


def index_batch(
    item_list: str | Path,
    batch: int,
    batch_size: int,
    out: str | Path,
    chip_size: int = 256,
    max_nodata: float = 0.5,
    sensor: str = "auto",
    s3: S3Access | None = None,
    resolution: float | None = None,
) -> int:
    """Index batch ``batch`` of ``item_list`` into the one GeoParquet file ``out`` (written
    atomically); returns its chip rows."""
    paths = batch_of(read_item_list(item_list), batch, batch_size)
    items = load_items(paths)
    tables = []
    with gdal_env(s3):
        for item in items:
            tables.append(
                index_item(item, chip_size, max_nodata, statistics_for(item, sensor, resolution))
            )
    if not tables:
        raise InputError(f"{item_list}: batch {batch} has no items")
    table = gpd.GeoDataFrame(pd.concat(tables, ignore_index=True), crs=tables[0].crs)
    table.attrs = dict(tables[0].attrs)
    write_index(table, Path(out))
    return len(table)
