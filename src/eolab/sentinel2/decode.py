"""Decode a SAFE product's JP2 bands, in parallel, and summarise what the conversions need.

The one place that reads pixels of a SAFE product: the COG, Zarr and benchmark code all decode
through ``decode_bands``, so "as fast as decoding allows" is measured against the same code.
JPEG2000 decoding dominates the conversions; a thread pool reads one band per worker (GDAL
releases the GIL, each reader decodes its own file), largest bands first so the pool finishes
together. A band whose georeferencing or size disagrees with ``MTD_TL.xml`` is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from eolab.core.errors import InputError
from eolab.sentinel2 import safe

#: The resolution groups in the order every output stacks them (10m, 20m, 60m).
GROUPS: tuple[str, ...] = tuple(safe.BAND_GROUPS)
DTYPE = np.dtype("uint16")
#: GDAL settings for each decoding thread: one OpenJPEG thread per band (the pool is the
#: parallelism), a modest block cache per reader.
DECODE_ENV = {"GDAL_NUM_THREADS": "1", "GDAL_CACHEMAX": 128, "GDAL_PAM_ENABLED": "NO"}


def default_workers() -> int:
    """The CPUs this process may use (Slurm and taskset limits included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ProductInfo:
    """What the conversions record about one product (one time step of a cube)."""

    id: str
    tile: str
    year: int
    time_ms: int  # tile sensing time, ms since 1970-01-01 UTC
    datetime: str  # the same as ISO 8601 with ms and Z
    datatake_start: str
    orbit_direction: str
    baseline: str
    quantification_value: float
    radio_offsets: dict[str, int]  # band -> RADIO_ADD_OFFSET (DN); 0 before baseline 04.00
    epsg: int
    grids: dict[str, safe.Geoposition]  # group -> georeferencing (MTD_TL.xml)
    safe_path: Path
    tile_metadata_path: Path

    def scales(self, bands: Iterable[str]) -> list[float]:
        """Per band: reflectance = DN * scale + offset (scale = 1 / quantification value)."""
        return [1.0 / self.quantification_value for _ in bands]

    def offsets(self, bands: Iterable[str]) -> list[float]:
        """Per band: RADIO_ADD_OFFSET / quantification value (0 before baseline 04.00)."""
        return [self.radio_offsets.get(b, 0) / self.quantification_value for b in bands]

    def as_json(self) -> dict:
        """JSON-ready summary (``product.json`` beside the COGs)."""
        return {
            "id": self.id,
            "tile": self.tile,
            "datetime": self.datetime,
            "datatake_start": self.datatake_start,
            "orbit_direction": self.orbit_direction,
            "baseline": self.baseline,
            "quantification_value": self.quantification_value,
            "radio_add_offset": {b: self.radio_offsets.get(b, 0) for b in safe.BANDS},
            "epsg": self.epsg,
        }


def _ms(t) -> int:
    return int(np.datetime64(t.replace(tzinfo=None), "ms").astype("int64"))


def product_info(product: safe.SafeProduct) -> ProductInfo:
    """Summarise a parsed SAFE product (times truncated to ms, offsets per band, grids).

    Small and free of the parsed XML, so a tile-year's worth of them costs little memory."""
    t = product.sensing_time
    return ProductInfo(
        id=product.id,
        tile=product.tile,
        year=t.year,
        time_ms=_ms(t),
        datetime=safe.format_time(t),
        datatake_start=safe.format_time(product.datatake_start),
        orbit_direction=product.orbit_direction,
        baseline=product.baseline,
        quantification_value=float(product.quantification_value),
        radio_offsets=dict(product.radio_offsets),
        epsg=product.epsg,
        grids={g: product.geoposition(g) for g in GROUPS},
        safe_path=product.path,
        tile_metadata_path=product.tile_metadata_path,
    )


def group_shape(product: safe.SafeProduct, group: str) -> tuple[int, int, int]:
    """(bands, rows, cols) of a resolution group, from ``MTD_TL.xml``."""
    geo = product.geoposition(group)
    return (len(safe.BAND_GROUPS[group]), geo.nrows, geo.ncols)


def group_nbytes(product: safe.SafeProduct, group: str) -> int:
    """Decoded size of a resolution group in bytes."""
    return int(np.prod(group_shape(product, group))) * DTYPE.itemsize


def read_band(product: safe.SafeProduct, band: str, out: np.ndarray) -> None:
    """Decode one band's JP2 into ``out`` (rows, cols); errors name the file and the reason."""
    path = product.band_path(band)
    group = next(g for g, bands in safe.BAND_GROUPS.items() if band in bands)
    geo = product.geoposition(group)
    try:
        with rasterio.Env(**DECODE_ENV), rasterio.open(path) as src:
            _check_band(path, src, product, geo)
            src.read(1, out=out)
    except InputError:
        raise
    except (RasterioError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode band {band} ({exc})") from exc


def _check_band(path: Path, src, product: safe.SafeProduct, geo: safe.Geoposition) -> None:
    if src.count != 1 or src.dtypes[0] != "uint16":
        raise InputError(f"{path}: expected 1 uint16 band, found {src.count} {src.dtypes[0]}")
    if (src.height, src.width) != geo.shape:
        raise InputError(
            f"{path}: {src.height}x{src.width} px, MTD_TL.xml says {geo.nrows}x{geo.ncols}"
        )
    if src.crs is not None and src.crs.to_epsg() not in (None, product.epsg):
        raise InputError(f"{path}: CRS {src.crs} differs from MTD_TL.xml EPSG:{product.epsg}")
    if src.crs is not None and not src.transform.almost_equals(geo.transform, precision=1e-6):
        raise InputError(f"{path}: transform {tuple(src.transform)[:6]} differs from MTD_TL.xml")


def decode_bands(
    product: safe.SafeProduct,
    groups: Iterable[str],
    out: Callable[[str], np.ndarray] | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Decode every band of ``groups`` in parallel; returns group -> (bands, rows, cols) array.

    ``out(group)`` supplies the destination (e.g. a memory-mapped file); by default a new array.
    """
    groups = list(groups)
    arrays = {g: (out(g) if out else np.empty(group_shape(product, g), DTYPE)) for g in groups}
    for g, arr in arrays.items():
        if arr.shape != group_shape(product, g) or arr.dtype != DTYPE:
            raise ValueError(f"destination for {g} is {arr.shape} {arr.dtype}")
    tasks = [(g, i, band) for g in groups for i, band in enumerate(safe.BAND_GROUPS[g])]
    tasks.sort(key=lambda t: -arrays[t[0]][t[1]].size)  # largest first: the pool ends together
    n = min(workers or default_workers(), len(tasks)) or 1
    with ThreadPoolExecutor(n, thread_name_prefix="jp2") as pool:
        futures = [pool.submit(read_band, product, band, arrays[g][i]) for g, i, band in tasks]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return arrays
