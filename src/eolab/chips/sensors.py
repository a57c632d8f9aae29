"""Per-sensor masks for chip statistics: one class per sensor, one overridable method each.

A sensor's ``masks(item)`` returns named boolean masks, each with its own georeferencing (the
chip grid reduces them, whatever their resolution). ``cloud`` and ``nodata`` fill the stacchip
columns ``cloud_cover_percentage`` and ``nodata_percentage``; any other name ``x`` becomes a
column ``x_percentage``. The base class has no statistics (every chip 0 % cloud and nodata).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pystac
from affine import Affine

from eolab.chips.rasterio_io import read_raster
from eolab.chips.stats import ChipGrid
from eolab.core.errors import InputError
from eolab.core.redact import redact_url


@dataclass(frozen=True)
class Mask:
    """A 2-D boolean mask and its north-up transform in the item's CRS; with ``classes``,
    ``array`` is a class map and the mask is "value in ``classes``" (tested per chip row,
    cheaper than a full-size boolean array)."""

    array: np.ndarray
    transform: Affine
    classes: tuple[int, ...] | None = None


def asset_href(item: pystac.Item, keys: tuple[str, ...]) -> tuple[str, str]:
    """The first of ``keys`` that the item has, and its absolute href."""
    for key in keys:
        if key in item.assets:
            return key, item.assets[key].get_absolute_href()
    raise InputError(
        f"STAC item {item.id}: none of the assets {list(keys)} (has {list(item.assets)})"
    )


class ChipStatistics:
    """No statistics: every chip counts as cloud-free and without nodata."""

    name = "none"
    platform: str | None = None

    def masks(self, item: pystac.Item) -> dict[str, Mask]:
        """Named boolean masks of the item (``cloud``, ``nodata``, ...); none here."""
        return {}

    def grid(self, grid: ChipGrid) -> ChipGrid:
        """The chip grid to cut: the item's own here; a sensor may resample it."""
        return grid

    def platform_of(self, item: pystac.Item) -> str:
        """The index's ``platform`` partition: the sensor's, else the item's collection."""
        return (
            self.platform or item.collection_id or str(item.properties.get("platform") or "unknown")
        )


class Sentinel2L1CStatistics(ChipStatistics):
    """L1C: clouds = opaque | cirrus layers of ``MSK_CLASSI_B00`` (60 m), snow/ice its third
    layer; nodata = pixels equal to 0 in the first band of the 60 m data asset."""

    name = "sentinel-2-l1c"
    platform = "sentinel-2-l1c"
    cloud_assets = ("MSK_CLASSI_B00", "cloud_mask")
    nodata_assets = ("60m", "B01")
    nodata_value = 0

    def masks(self, item: pystac.Item) -> dict[str, Mask]:
        _, href = asset_href(item, self.cloud_assets)
        classi, t = read_raster(href)
        if classi.shape[0] < 3:
            raise InputError(
                f"{redact_url(href)}: MSK_CLASSI_B00 needs 3 layers, found {classi.shape[0]}"
            )
        _, data_href = asset_href(item, self.nodata_assets)
        data, t_data = read_raster(data_href, bands=[1])
        return {
            "cloud": Mask((classi[0] > 0) | (classi[1] > 0), t),
            "snow_ice": Mask(classi[2] > 0, t),
            "nodata": Mask(data[0] == self.nodata_value, t_data),
        }


class Sentinel2L2AStatistics(ChipStatistics):
    """L2A: clouds = SCL classes 1, 3, 8, 9, 10 (defective, shadow, cloud, cirrus); nodata = 0."""

    name = "sentinel-2-l2a"
    platform = "sentinel-2-l2a"
    scl_assets = ("SCL", "scl", "SCL_20m")
    cloud_classes = (1, 3, 8, 9, 10)
    nodata_class = 0

    def masks(self, item: pystac.Item) -> dict[str, Mask]:
        _, href = asset_href(item, self.scl_assets)
        scl, t = read_raster(href, bands=[1])
        return {
            "cloud": Mask(scl[0], t, self.cloud_classes),
            "nodata": Mask(scl[0], t, (self.nodata_class,)),
        }


class Sentinel1Statistics(ChipStatistics):
    """Sentinel-1: no clouds; nodata = non-finite pixels or the raster's nodata value."""

    name = "sentinel-1"
    platform = "sentinel-1"
    data_assets = ("vv", "VV", "vh", "VH", "hh", "HH")
    default_nodata = 0.0

    def masks(self, item: pystac.Item) -> dict[str, Mask]:
        key, href = asset_href(item, self.data_assets)
        data, t = read_raster(href, bands=[1])
        nodata = item.assets[key].extra_fields.get("nodata", self.default_nodata)
        band = data[0]
        invalid = ~np.isfinite(band) if np.issubdtype(band.dtype, np.floating) else False
        return {"nodata": Mask(invalid | (band == nodata), t)}


class LandsatC2L2Statistics(ChipStatistics):
    """Landsat Collection 2 Level-2: the ``QA_PIXEL`` bit flags (30 m, uint16). Cloud = dilated
    cloud, cirrus, cloud or cloud shadow (bits 1-4, as L2A's SCL counts shadows as cloud); each
    of those also its own column; nodata = fill (bit 0)."""

    name = "landsat-c2-l2"
    platform = "landsat-c2-l2"
    # USGS landsatlook, Planetary Computer and Earth Search name it ``qa_pixel``; Earth Engine
    # and the USGS file names say ``QA_PIXEL``.
    qa_assets = ("qa_pixel", "QA_PIXEL", "qa-pixel")
    qa_file_suffix = "_QA_PIXEL.TIF"
    flag_bits = {"nodata": 0, "dilated_cloud": 1, "cirrus": 2, "cloud_shadow": 4}
    cloud_bits = (1, 2, 3, 4)  # 3 is the cloud bit itself

    def qa_href(self, item: pystac.Item) -> str:
        """The QA band: the first known asset key, else the asset whose file is *_QA_PIXEL.TIF."""
        for key in self.qa_assets:
            if key in item.assets:
                return item.assets[key].get_absolute_href()
        for asset in item.assets.values():
            if asset.href.upper().split("?")[0].endswith(self.qa_file_suffix):
                return asset.get_absolute_href()
        raise InputError(
            f"STAC item {item.id}: no Landsat QA band: none of the assets {list(self.qa_assets)} "
            f"nor a file *{self.qa_file_suffix} (has {list(item.assets)})"
        )

    def masks(self, item: pystac.Item) -> dict[str, Mask]:
        qa, t = read_raster(self.qa_href(item), bands=[1])
        qa = qa[0]
        if qa.dtype.kind not in "ui":
            raise InputError(f"STAC item {item.id}: QA_PIXEL must be integer, found {qa.dtype}")
        cloud_bits = sum(1 << bit for bit in self.cloud_bits)
        masks = {"cloud": Mask((qa & cloud_bits) != 0, t)}
        for name, bit in self.flag_bits.items():
            masks[name] = Mask((qa & (1 << bit)) != 0, t)
        return masks


class AerialStatistics(ChipStatistics):
    """Aerial imagery (e.g. 4-band RGB-NIR orthophotos): no statistics, every chip counts.
    With ``resolution`` (metres) the chip grid is resampled to that pixel size over the same
    extent, so chips of different surveys cover the same ground; without it the item's grid."""

    name = "aerial"
    resolution: float | None = None

    def __init__(self, resolution: float | None = None) -> None:
        if resolution is not None:
            if resolution <= 0:
                raise InputError(f"aerial resolution must be positive, got {resolution}")
            self.resolution = resolution

    def grid(self, grid: ChipGrid) -> ChipGrid:
        if self.resolution is None:
            return grid
        return resampled(grid, self.resolution)


class NaipStatistics(AerialStatistics):
    """NAIP (USDA, 4-band RGB-NIR, 0.6-1 m): no statistics, the item's own grid."""

    name = "naip"
    platform = "naip"


class LinzStatistics(AerialStatistics):
    """LINZ aerial imagery (4-band, 0.075-0.5 m by survey): no statistics, resampled to 30 cm
    as the reference does, so every survey gives the same chip footprint."""

    name = "linz"
    platform = "linz"
    resolution = 0.3


def resampled(grid: ChipGrid, resolution: float) -> ChipGrid:
    """``grid`` at another pixel size: same origin and CRS, the whole pixels that fit."""
    t = grid.transform
    width, height = grid.shape[1] * t.a, grid.shape[0] * -t.e
    # round before floor: 0.6 m x 5000 px / 0.3 m is 9999.999... in floating point
    cols = int(np.floor(round(width / resolution, 6)))
    rows = int(np.floor(round(height / resolution, 6)))
    return ChipGrid(
        shape=(rows, cols),
        transform=Affine(resolution, 0, t.c, 0, -resolution, t.f),
        size=grid.size,
        crs=grid.crs,
    )


SENSORS: dict[str, type[ChipStatistics]] = {
    cls.name: cls
    for cls in (
        ChipStatistics,
        Sentinel2L1CStatistics,
        Sentinel2L2AStatistics,
        Sentinel1Statistics,
        LandsatC2L2Statistics,
        AerialStatistics,
        NaipStatistics,
        LinzStatistics,
    )
}


def detect_sensor(item: pystac.Item) -> str:
    """The sensor name for an item from its STAC properties (``none`` when unknown)."""
    props = item.properties
    platform = str(props.get("platform") or "").lower()
    constellation = str(props.get("constellation") or "").lower()
    level = str(props.get("processing:level") or props.get("s2:product_type") or "").upper()
    if constellation == "sentinel-2" or platform.startswith("sentinel-2"):
        if "L2A" in level or "MSIL2A" in item.id:
            return "sentinel-2-l2a"
        return "sentinel-2-l1c"
    if constellation == "sentinel-1" or platform.startswith("sentinel-1"):
        return "sentinel-1"
    if _is_landsat_l2(item, platform):
        return "landsat-c2-l2"
    collection = (item.collection_id or "").lower()
    if collection == "naip" or any(key.startswith("naip:") for key in props):
        return "naip"
    if any(key.startswith("linz:") for key in props):
        return "linz"
    return "none"


def _is_landsat_l2(item: pystac.Item, platform: str) -> bool:
    """A Landsat Collection 2 Level-2 item: a ``landsat-*`` platform and L2 by collection,
    ``landsat:correction`` (``L2SP``/``L2SR``) or product id (``LC09_L2SP_…``)."""
    if not platform.startswith("landsat"):
        return False
    correction = str(item.properties.get("landsat:correction") or "").upper()
    collection = (item.collection_id or "").lower()
    return (
        correction.startswith("L2")
        or "c2-l2" in collection
        or any(f"_{level}_" in item.id.upper() for level in ("L2SP", "L2SR"))
    )


def statistics_for(
    item: pystac.Item, sensor: str = "auto", resolution: float | None = None
) -> ChipStatistics:
    """The statistics hook for ``item``: ``sensor`` by name, or detected when ``auto``;
    ``resolution`` (metres) resamples the grid of aerial sensors."""
    name = detect_sensor(item) if sensor == "auto" else sensor
    if name not in SENSORS:
        raise InputError(f"unknown sensor {name!r}; choose one of {sorted(SENSORS)} or auto")
    cls = SENSORS[name]
    if issubclass(cls, AerialStatistics):
        return cls(resolution)
    if resolution is not None:
        raise InputError(f"--resolution applies to aerial sensors only, not {name} ({item.id})")
    return cls()
