"""The interop tier: eolab's outputs opened by the clients researchers use (xarray + rioxarray,
odc-stac, stackstac, tensorstore, xarray-tensorstore, pystac validation, geopandas, DuckDB,
torch). The outputs are built once per session by the project's own commands (``eolab …`` in a
subprocess, as a user runs them) from the tiny generated fixtures of ``tests/conftest.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from eolab.sentinel2.products import product_paths

TILE, YEAR = "35VLH", 2024
#: Small chunks and shards so the 180 px fixture has several of each.
CHUNKS = "10m:2x64x64,20m:2x32x32,60m:2x16x16"
SHARDS = "10m:2x128x128,20m:2x64x64,60m:2x32x32"


def eolab(*args: object) -> str:
    """Run ``eolab ARGS`` (the installed console script beside this Python) and return stdout."""
    exe = Path(sys.executable).with_name("eolab")
    result = subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0, f"eolab {args}: {result.stderr[-2000:]}"
    return result.stdout


@dataclass(frozen=True)
class S2Outputs:
    manifest: Path
    safes: list[Path]
    cog_dir: Path
    cube: Path
    cube_sharded: Path
    cube_zip: Path
    catalog: Path
    export: Path
    index: Path


@pytest.fixture(scope="session")
def s2_outputs(tmp_path_factory, s2_products) -> S2Outputs:
    """COGs, plain, sharded and zipped cubes, STAC catalog (+ absolute export) and chip index of the
    3-date 35VLH fixture, each made by its ``eolab`` command."""
    out = tmp_path_factory.mktemp("interop-s2")
    cog_dir, listing = out / "cog" / TILE / str(YEAR), out / "cog" / f"{TILE}_{YEAR}.json"
    eolab(
        "sentinel2", "to-cog", "--manifest", s2_products, "--listing", listing, "--quiet", cog_dir
    )
    cube, sharded = out / "zarr" / "cube.zarr", out / "zarr-sharded" / "cube.zarr"
    common = ("--manifest", s2_products, "--chunks", CHUNKS, "--quiet")
    eolab("sentinel2", "to-zarr", "--store", cube, *common)
    eolab("sentinel2", "to-zarr", "--store", sharded, *common, "--sharded", "--shards", SHARDS)
    cube_zip = out / "zarr-zip" / "cube.zarr.zip"  # as the workflow: the plain cube, zipped
    eolab("zarr", "zip", cube, cube_zip)
    collection = out / "stac" / f"{TILE}_{YEAR}"
    eolab("chips", "items", listing, "--products", s2_products, "--out", collection)
    catalog = out / "stac" / "catalog.json"
    eolab("chips", "catalog", collection / "collection.json", "--out", catalog)
    export = out / "stac-absolute"
    eolab("chips", "export-catalog", catalog, "--out", export)
    index = out / "index"
    eolab("chips", "index", catalog, "--out", index, "--chip-size", 32)
    return S2Outputs(
        s2_products,
        product_paths(s2_products),
        cog_dir,
        cube,
        sharded,
        cube_zip,
        catalog,
        export / "catalog.json",
        index,
    )


@pytest.fixture(scope="session")
def benv2_store(tmp_path_factory, benv2_root) -> Path:
    """The train split's store of ``eolab benv2 tiles`` on the generated BigEarthNet fixture."""
    out = tmp_path_factory.mktemp("interop-benv2")
    eolab(
        "benv2", "tiles", "--root", benv2_root, "--out-dir", out, "--workers", 2,
        "--shard-patches", 4, "--no-progress",
    )  # fmt: skip
    return out / "zarr" / "train.zarr"


def pytest_collection_modifyitems(items) -> None:
    """ "No error and no warning" on eolab's outputs: a UserWarning or RuntimeWarning (the
    categories clients warn about data with: xarray's consolidated-metadata fallback, torch's
    non-writable array, rasterio's NotGeoreferencedWarning, pystac's conflicting fields) fails
    the test. Deprecation warnings of the libraries' own code stay warnings."""
    interop = Path(__file__).parent
    for item in items:
        if interop in Path(item.fspath).parents:
            item.add_marker(pytest.mark.filterwarnings("error::UserWarning"))
            item.add_marker(pytest.mark.filterwarnings("error::RuntimeWarning"))
