"""Test data for eolab.train: one generated tile-year in every cube format with its chip index.

Built with the workflow's own converters (COGs + listing, plain / sharded / zipped Zarr, STAC
items, one chip index per item), like tests/chips_data.py but for any year.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHIP = 32  # 320 m chips on the 180 px fixture tiles (5 x 5 full chips)
#: Several chunks per group and several chunks per shard, so reads cross block edges.
SPEC_KW = {
    "chunks": {"10m": (2, 64, 64), "20m": (2, 32, 32), "60m": (2, 16, 16)},
    "shards": {"10m": (2, 128, 128), "20m": (2, 64, 64), "60m": (2, 32, 32)},
}


@dataclass(frozen=True)
class TileYear:
    tile: str
    year: int
    manifest: Path
    entries: dict[str, Path]  # format -> entry point (listing, store, zip)
    index_dir: Path


def build_tile_year(root: Path, manifest: Path, tile: str, year: int) -> TileYear:
    """SAFE products -> COGs, plain/sharded/zipped Zarr, STAC items, chip indexes."""
    from eolab.chips.index import index_items, load_items
    from eolab.chips.items import items_from_listing
    from eolab.sentinel2 import cog, datacube
    from eolab.sentinel2.products import product_paths
    from eolab.zarrio import zipzarr

    paths = product_paths(manifest)
    name = f"{tile}_{year}"
    listing = root / "cog" / f"{name}.json"
    cog.products_to_cog(
        paths,
        root / "cog" / tile / str(year),
        listing=listing,
        progress=False,
        tile=tile,
        year=year,
    )
    plain = root / "zarr" / f"{name}.zarr"
    datacube.to_zarr(plain, paths, progress=False)
    sharded = root / "zarr-sharded" / f"{name}.zarr"
    datacube.to_zarr(sharded, paths, datacube.CubeSpec(**SPEC_KW), progress=False)
    zipped = root / "zarr-zip" / f"{name}.zarr.zip"
    zipzarr.zip_store(sharded, zipped)
    collection, _ = items_from_listing(listing, manifest, root / "stac" / name, progress=False)
    index_dir = root / "index_items" / name
    index_items(load_items([collection]), index_dir, chip_size=CHIP, progress=False)
    entries = {"cog": listing, "zarr": plain, "zarr-sharded": sharded, "zarr-zip": zipped}
    return TileYear(tile, year, manifest, entries, index_dir)


def generate_and_build(root: Path, tile: str, year: int, dates: int, seed: int) -> TileYear:
    """Generate a tiny tile-year of SAFE products (180/90/30 px) and build every format."""
    from eolab.fixtures.sentinel2 import generate_tile_year

    manifest = root / "safe" / f"{tile}_{year}.json"
    generate_tile_year(
        root / "safe",
        tile=tile,
        year=year,
        dates=dates,
        scale=61,
        seed=seed,
        baseline="05.10",
        manifest=manifest,
    )
    return build_tile_year(root, manifest, tile, year)
