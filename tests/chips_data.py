"""Test data for the chips stage: a converted fixture tile-year (COGs, Zarr cube, STAC items,
chip indexes), built once per test module from the session's generated SAFE products."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

CHIP = 32  # the fixture tiles are 180 px at 10 m: 5 x 5 full chips, a 20 px strip dropped


@dataclass(frozen=True)
class ConvertedTile:
    tile: str
    manifest: Path
    listing: Path
    cog_dir: Path
    zarr: Path | None
    collection: Path
    index_dir: Path


def convert_tile(root: Path, manifest: Path, tile: str, zarr: bool = True) -> ConvertedTile:
    """SAFE -> COGs (+ Zarr) -> STAC collection -> one chip index per item."""
    from eolab.chips.index import index_items, load_items
    from eolab.chips.items import items_from_listing
    from eolab.sentinel2 import cog, datacube
    from eolab.sentinel2.products import product_paths

    paths = product_paths(manifest)
    cog_dir = root / "cog" / tile / "2024"
    listing = root / "cog" / f"{tile}_2024.json"
    cog.products_to_cog(paths, cog_dir, listing=listing, progress=False, tile=tile, year=2024)
    store = None
    if zarr:
        store = root / "zarr" / f"{tile}_2024.zarr"
        datacube.to_zarr(store, paths, progress=False)
    collection, _ = items_from_listing(
        listing, manifest, root / "stac" / f"{tile}_2024", progress=False
    )
    index_dir = root / "index_items" / tile
    index_items(load_items([collection]), index_dir, chip_size=CHIP, progress=False)
    return ConvertedTile(tile, manifest, listing, cog_dir, store, collection, index_dir)


def read_band(path: Path, band: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


def nearest_source(chip_row: dict, out_res: float, src: np.ndarray, src_transform) -> np.ndarray:
    """Oracle for one band: the source pixel containing each output pixel's centre, found by
    mapping centre coordinates through the inverse affine transform (independent of the
    chipper's window arithmetic)."""
    n = round((chip_row["native_xmax"] - chip_row["native_xmin"]) / out_res)
    centres = (np.arange(n) + 0.5) * out_res
    xs, ys = np.meshgrid(chip_row["native_xmin"] + centres, chip_row["native_ymax"] - centres)
    cols, rows = ~src_transform @ (xs, ys)
    return src[np.floor(rows).astype(int), np.floor(cols).astype(int)]
