"""The demo's Sentinel-2 conversions: COG listing, plain and sharded stores, the zip."""

import json
import zipfile

import pytest
import rasterio
import xarray as xr
import yaml
import zarr
from workflow_util import ROOT

from eolab.sentinel2 import datacube
from eolab.sentinel2.products import read_manifest

pytestmark = pytest.mark.workflow


def test_every_tile_is_converted_to_cogs_zarr_and_zip(demo_run):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    year = config["sentinel2"]["year"]
    results = demo_run / "results"
    for tile in config["sentinel2"]["tiles"]:
        manifest = read_manifest(results / "fixtures" / "sentinel2" / f"{tile}_{year}.json")
        ids = [p["id"] for p in manifest["products"]]
        listing = results / "sentinel2" / "cog" / f"{tile}_{year}.json"
        doc = json.loads(listing.read_text())
        assert [p["id"] for p in doc["products"]] == ids
        for entry in doc["products"]:
            with rasterio.open(listing.parent / entry["cogs"]["20m"]) as src:
                assert src.count == 6 and src.nodata == 0
        for kind in ("zarr", "zarr-sharded"):
            store = results / "sentinel2" / kind / f"{tile}_{year}.zarr"
            assert datacube.unfinished(store) == ""
            ds = datacube.open_dataset(store, tile, year, "10m")  # label codes decoded
            assert list(ds.product_id.values) == ids
        zipped = results / "sentinel2" / "zarr-zip" / f"{tile}_{year}.zarr.zip"
        with zipfile.ZipFile(zipped) as zf:
            assert zf.namelist()[0] == "zarr.json"
        zs = zarr.storage.ZipStore(zipped, mode="r")
        try:
            ds = xr.open_zarr(zs, group=f"{tile}/{year}/60m")
            assert ds.sizes["time"] == len(ids)
        finally:
            zs.close()
