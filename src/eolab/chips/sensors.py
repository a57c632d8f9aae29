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


SENSORS: dict[str, type[ChipStatistics]] = {
    cls.name: cls
    for cls in (
        ChipStatistics,
        Sentinel2L1CStatistics,
        Sentinel2L2AStatistics,
        Sentinel1Statistics,
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
    return "none"


def statistics_for(item: pystac.Item, sensor: str = "auto") -> ChipStatistics:
    """The statistics hook for ``item``: ``sensor`` by name, or detected when ``auto``."""
    name = detect_sensor(item) if sensor == "auto" else sensor
    if name not in SENSORS:
        raise InputError(f"unknown sensor {name!r}; choose one of {sorted(SENSORS)} or auto")
    return SENSORS[name]()
