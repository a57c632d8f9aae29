"""Cut the pixels of indexed chips, all bands at one resolution, from COGs or the Zarr cube.

A chip is read from each resolution group (10/20/60 m) with a window read and resampled by
nearest neighbour to the chosen resolution: every output pixel takes the source pixel that
contains its centre. That is exact pixel replication when upsampling by an integer factor
(60 m -> 10 m copies each pixel 6 × 6) and keeps geography exact for any factor (stacchip
stretches a ceil-sized window instead). The chip edge in metres must be a whole number of output
pixels (256 px at 10 m = 2560 m: 10, 20, 40, 80 m work, 60 m does not).

Bands come out sorted by central wavelength where the source says it (Sentinel-2: B01 … B8A …
B12), else in source order. COG hrefs come from the STAC items (local paths or ``s3://``), the
cube is ``<store>/<tile>/<year>/<group>`` with array ``data`` (time, band, y, x).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
from affine import Affine
from rasterio.windows import Window

from eolab.chips.index import load_items
from eolab.chips.merge import read_index
from eolab.chips.rasterio_io import gdal_env, open_raster
from eolab.core.errors import InputError
from eolab.core.s3 import S3Access
from eolab.sentinel2.datacube import read_labels

# Open COG datasets kept at once while iterating over chips.
MAX_OPEN = 32
# Decoded cube chunks kept while iterating (a 10 m chunk of 20 dates is ~40 MB).
ZARR_CACHED_CHUNKS = 8
_TILE_RE = re.compile(r"_T(\d{2}[A-Z]{3})_")


@dataclass(frozen=True)
class Chip:
    """The pixels ``(band, rows, cols)`` of one chip and where they are."""

    chipid: str
    pixels: np.ndarray
    bands: list[str]
    transform: Affine
    crs: str
    row: dict[str, Any] = field(repr=False)


def nearest_indices(offset: float, n_out: int, out_res: float, src_res: float):
    """First source pixel and relative indices of the source pixels holding the centres of
    ``n_out`` output pixels of size ``out_res`` starting ``offset`` from the source origin."""
    centres = offset + (np.arange(n_out) + 0.5) * out_res
    src = np.floor(centres / src_res + 1e-9).astype(np.int64)
    return int(src[0]), src - src[0]


def chip_pixels(row: dict[str, Any], resolution: float) -> int:
    """Output pixels per chip edge at ``resolution``; the chip must hold a whole number."""
    width = row["native_xmax"] - row["native_xmin"]
    n = width / resolution
    if n < 1 or abs(n - round(n)) > 1e-6:
        raise InputError(
            f"chip {row['chipid']}: {width:g} m is not a whole number of {resolution:g} m pixels"
        )
    return round(n)


def read_resampled(data_reader, src_transform: Affine, src_shape, row, resolution: float):
    """Read one chip from a north-up source through ``data_reader(row_slice, col_slice)`` (which
    returns ``(band, rows, cols)``), resampled by nearest neighbour to ``resolution``."""
    n = chip_pixels(row, resolution)
    r0, ri = nearest_indices(src_transform.f - row["native_ymax"], n, resolution, -src_transform.e)
    c0, ci = nearest_indices(row["native_xmin"] - src_transform.c, n, resolution, src_transform.a)
    r1, c1 = r0 + int(ri[-1]) + 1, c0 + int(ci[-1]) + 1
    if r0 < 0 or c0 < 0 or r1 > src_shape[0] or c1 > src_shape[1]:
        raise InputError(
            f"chip {row['chipid']}: rows {r0}:{r1}, cols {c0}:{c1} outside the source {src_shape}"
        )
    block = data_reader(slice(r0, r1), slice(c0, c1))
    return block[:, ri[:, None], ci[None, :]]


def _wavelength_order(names: list[str], wavelengths: list[float | None]) -> list[int]:
    if all(w is not None for w in wavelengths):
        return sorted(range(len(names)), key=lambda i: (wavelengths[i], names[i]))
    return list(range(len(names)))


class CogSource:
    """Chips from the data assets of STAC items (COGs, local or ``s3://``)."""

    def __init__(
        self,
        items: list[pystac.Item],
        href_map: dict[str, str] | None = None,
        s3: S3Access | None = None,
    ):
        self.items = {item.id: item for item in items}
        self.href_map = href_map or {}
        self.s3 = s3
        self._open: OrderedDict[str, Any] = OrderedDict()

    def href(self, asset: pystac.Asset) -> str:
        href = asset.get_absolute_href()
        for old, new in self.href_map.items():
            if href.startswith(old):
                return new + href[len(old) :]
        return href

    def data_assets(self, item_id: str) -> list[pystac.Asset]:
        if item_id not in self.items:
            raise InputError(f"no STAC item {item_id!r} among the {len(self.items)} given")
        assets = [
            a
            for a in self.items[item_id].assets.values()
            if "data" in (a.roles or [])
            and "band-view" not in (a.roles or [])  # single-band VRTs over the same COGs
            and a.extra_fields.get("bands")
        ]
        if not assets:
            raise InputError(f"STAC item {item_id}: no data assets with bands")
        return assets

    def _dataset(self, href: str):
        if href in self._open:
            self._open.move_to_end(href)
            return self._open[href]
        src = open_raster(href)
        self._open[href] = src
        while len(self._open) > MAX_OPEN:
            self._open.popitem(last=False)[1].close()
        return src

    def read(self, row: dict[str, Any], resolution: float) -> tuple[list[str], list, np.ndarray]:
        names, waves, blocks = [], [], []
        with gdal_env(self.s3):
            for asset in self.data_assets(row["item_id"]):
                src = self._dataset(self.href(asset))

                def reader(rows, cols, src=src):
                    window = Window.from_slices(rows, cols)
                    return src.read(window=window)

                blocks.append(read_resampled(reader, src.transform, src.shape, row, resolution))
                for band in asset.extra_fields["bands"]:
                    names.append(band["name"])
                    waves.append(band.get("eo:center_wavelength"))
        return names, waves, np.concatenate(blocks)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


class ZarrSource:
    """Chips from Zarr cubes ``<store>/<tile>/<year>/<group>`` (``data``: time, band, y, x); each
    tile-year is looked up in the given stores in turn (the workflow writes one per tile-year)."""

    def __init__(self, stores: str | Path | list[str | Path], s3: S3Access | None = None):
        listed = stores if isinstance(stores, list | tuple) else [stores]
        self.stores = [str(s) for s in listed]
        self.store = ", ".join(self.stores)  # for messages
        self.s3 = s3
        self._groups: dict[tuple[str, int], list] = {}
        self._blocks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._stores: list = []  # opened stores, closed with the source

    def _read_cached(self, data, t: int, rows: slice, cols: slice) -> np.ndarray:
        """``data[t, :, rows, cols]`` through a small cache of decoded chunks: zarr decodes a
        whole chunk (all its dates) for any read, so neighbouring chips and dates reuse it."""
        ct, _, cy, cx = data.chunks
        by, bx, bt = rows.start // cy, cols.start // cx, t // ct
        if (rows.stop - 1) // cy != by or (cols.stop - 1) // cx != bx:
            return data[t, :, rows, cols]  # spans chunks: read directly
        key = (id(data), bt, by, bx)
        block = self._blocks.get(key)
        if block is None:
            block = data[
                bt * ct : (bt + 1) * ct, :, by * cy : (by + 1) * cy, bx * cx : (bx + 1) * cx
            ]
            self._blocks[key] = block
            while len(self._blocks) > ZARR_CACHED_CHUNKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        r0, c0 = rows.start - by * cy, cols.start - bx * cx
        return block[
            t - bt * ct, :, r0 : r0 + rows.stop - rows.start, c0 : c0 + cols.stop - cols.start
        ]

    def _open_group(self, tile: str, year: int) -> list:
        import zarr

        from eolab.zarrio.shardview import read_store

        key = (tile, year)
        if key in self._groups:
            return self._groups[key]
        members = None
        for store in self.stores:
            try:
                # sharded cubes read as their inner chunks, shard indexes kept (one GET each)
                opened = read_store(store, self.s3)
                self._stores.append(opened)
                root = zarr.open_group(opened, mode="r", path=f"{tile}/{year}")
                members = sorted(root.groups())
                break
            except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
                continue
        if members is None:
            raise InputError(f"no cube group {tile}/{year} in {self.store}")
        groups = []
        for _, group in members:
            x, y = group["x"][:], group["y"][:]
            res_x, res_y = float(x[1] - x[0]), float(y[0] - y[1])
            # x/y are pixel centres: the grid's corner is half a pixel up and left.
            transform = Affine(
                res_x, 0, float(x[0]) - res_x / 2, 0, -res_y, float(y[0]) + res_y / 2
            )
            product_ids = [str(p) for p in read_labels(group["product_id"])]
            bands = [str(b) for b in read_labels(group["band"])]
            groups.append((group["data"], product_ids, bands, transform))
        self._groups[key] = groups
        return groups

    def read(self, row: dict[str, Any], resolution: float) -> tuple[list[str], list, np.ndarray]:
        from eolab.sentinel2.safe import WAVELENGTH_NM

        match = _TILE_RE.search(row["item_id"])
        if not match:
            raise InputError(f"chip {row['chipid']}: no MGRS tile in item id {row['item_id']}")
        year = pd.Timestamp(row["datetime"]).year
        names, waves, blocks = [], [], []
        for data, product_ids, bands, transform in self._open_group(match.group(1), year):
            if row["item_id"] not in product_ids:
                raise InputError(f"{self.store}: product {row['item_id']} is not in the cube")
            t = product_ids.index(row["item_id"])

            def reader(rows, cols, data=data, t=t):
                return self._read_cached(data, t, rows, cols)

            blocks.append(read_resampled(reader, transform, data.shape[2:], row, resolution))
            for band in bands:
                names.append(band)
                nm = WAVELENGTH_NM.get(band)
                waves.append(nm / 1000 if nm else None)
        return names, waves, np.concatenate(blocks)

    def close(self) -> None:
        from eolab.zarrio.shardview import close_s3_session

        for store in self._stores:
            store.close()
            close_s3_session(store)
        self._stores.clear()
        self._groups.clear()
        self._blocks.clear()


class Chipper:
    """Pixels of any indexed chip, and iteration over all chips of an index.

    ``index``: a GeoDataFrame from ``read_index`` or a path to an index file/dataset.
    ``source``: ``"cog"`` (needs ``items``: STAC item/collection/catalog paths or Items) or
    ``"zarr"`` (needs ``zarr_store``). ``href_map`` rewrites asset href prefixes (for example a
    local results folder to ``s3://bucket/results``).
    """

    def __init__(
        self,
        index: pd.DataFrame | str | Path,
        *,
        source: str = "cog",
        items: list[pystac.Item] | list[str | Path] | None = None,
        zarr_store: str | Path | list[str | Path] | None = None,
        resolution: float = 10.0,
        href_map: dict[str, str] | None = None,
        s3: S3Access | None = None,
    ):
        self.index = index if isinstance(index, pd.DataFrame) else read_index(index)
        self.resolution = float(resolution)
        if source == "cog":
            if not items:
                raise InputError("chips from COGs need the STAC items (--items)")
            loaded = [i for i in items if isinstance(i, pystac.Item)]
            paths = [i for i in items if not isinstance(i, pystac.Item)]
            self.source: CogSource | ZarrSource = CogSource(
                loaded + load_items(paths), href_map, s3
            )
        elif source == "zarr":
            if not zarr_store:
                raise InputError("chips from Zarr need the cube store (--zarr)")
            self.source = ZarrSource(zarr_store, s3)
        else:
            raise InputError(f"unknown chip source {source!r}; use cog or zarr")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Chip:
        if not -len(self) <= i < len(self):
            raise IndexError(f"chip row {i} out of range (index has {len(self)} rows)")
        return self.chip(self.index.iloc[i].to_dict())

    def __iter__(self) -> Iterator[Chip]:
        for i in range(len(self)):
            yield self[i]

    def row_of(self, chipid: str) -> int:
        """Position of a chip id in the index."""
        hits = np.flatnonzero(self.index["chipid"].to_numpy() == chipid)
        if not len(hits):
            raise InputError(f"chip {chipid!r} is not in the index")
        return int(hits[0])

    def chip(self, row: dict[str, Any]) -> Chip:
        """The chip of one index row (a dict with the index columns)."""
        names, waves, pixels = self.source.read(row, self.resolution)
        order = _wavelength_order(names, waves)
        transform = Affine(
            self.resolution, 0, row["native_xmin"], 0, -self.resolution, row["native_ymax"]
        )
        return Chip(
            chipid=row["chipid"],
            pixels=pixels[order],
            bands=[names[i] for i in order],
            transform=transform,
            crs=row["native_crs"],
            row=row,
        )

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Chipper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
