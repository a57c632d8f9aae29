"""Patch loaders on real files and a real S3 server: every format and storage, same pixels."""

import json

import jsonschema
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from eolab.core.s3 import S3Access, S3Config
from eolab.lab.formats import NAMES as FORMATS
from eolab.lab.patchbench import RESULT_SCHEMA, run
from eolab.lab.patchload import open_loader, random_patches
from eolab.lab.staging import copy_dataset, dataset, upload_dataset
from eolab.sentinel2.safe import BAND_GROUPS, read_safe

pytestmark = pytest.mark.integration
TILE, YEAR = "35VLH", 2024


@pytest.fixture(scope="module")
def formats(s2_products, tmp_path_factory):
    """Every format of the fixture tile-year, converted with the workflow's own code."""
    from eolab.sentinel2 import cog, datacube
    from eolab.sentinel2.products import product_paths
    from eolab.zarrio import zipzarr

    root = tmp_path_factory.mktemp("formats")
    paths = product_paths(s2_products)
    listing = root / "cog" / f"{TILE}_{YEAR}.json"
    cog.products_to_cog(
        paths,
        root / "cog" / TILE / str(YEAR),
        listing=listing,
        tile=TILE,
        year=YEAR,
        progress=False,
    )
    plain = root / "zarr" / f"{TILE}_{YEAR}.zarr"
    sharded = root / "zarr-sharded" / f"{TILE}_{YEAR}.zarr"
    datacube.to_zarr(plain, paths, progress=False)
    datacube.to_zarr(
        sharded, paths, datacube.CubeSpec(shards=datacube.DEFAULT_SHARDS), progress=False
    )
    zipped = root / "zarr-zip" / f"{TILE}_{YEAR}.zarr.zip"
    zipzarr.zip_store(plain, zipped)
    entries = {
        "safe": s2_products,
        "cog": listing,
        "zarr": plain,
        "zarr-sharded": sharded,
        "zarr-zip": zipped,
    }
    return {fmt: dataset(fmt, entries[fmt]) for fmt in FORMATS}


@pytest.fixture()
def s3(s3_server, s3_client):
    s3_client.create_bucket(Bucket="lab")
    from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET

    return S3Access(
        S3Config("lab"), s3_server.endpoint_url, "us-east-1", LOCAL_KEY_ID, LOCAL_SECRET
    )


def _truth(manifest, patch):
    """The patch read straight from the JP2 files with rasterio (independent of the loaders)."""
    from eolab.sentinel2.products import product_paths

    out = {}
    for group, bands in BAND_GROUPS.items():
        per_date = []
        for path in product_paths(manifest):
            product = read_safe(path)
            geo = product.geoposition(group)
            col = round((patch.x_min - geo.ulx) / geo.xdim)
            row = round((geo.uly - patch.y_max) / -geo.ydim)
            n = round(patch.size / geo.xdim)
            stack = []
            for band in bands:
                with rasterio.open(product.band_path(band)) as src:
                    stack.append(src.read(1, window=Window(col, row, n, n)))
            per_date.append(np.stack(stack))
        out[group] = np.stack(per_date)
    return out


def test_every_format_on_every_storage_returns_the_jp2_pixels(formats, s3, tmp_path):
    temp = {fmt: copy_dataset(ds, tmp_path / fmt)[0] for fmt, ds in formats.items()}
    client = s3.client()
    for fmt, ds in formats.items():
        upload_dataset(ds, client, s3.bucket, fmt)
    loaders = []
    try:
        for storage in ("network", "temp", "s3"):
            for fmt in FORMATS:
                ds = temp[fmt] if storage == "temp" else formats[fmt]
                loaders.append(
                    open_loader(
                        fmt,
                        storage,
                        ds,
                        TILE,
                        YEAR,
                        s3=s3,
                        s3_prefix=fmt,
                        catalog_root=formats["safe"].root,
                    )
                )
        loaders.append(
            open_loader(
                "zarr", "s3", formats["zarr"], TILE, YEAR, s3=s3, s3_prefix="zarr", baseline=True
            )
        )
        patches = random_patches(loaders[0].grids, 2, seed=3)
        for patch in patches:
            truth = _truth(formats["safe"].entry_path, patch)
            assert any(np.count_nonzero(a) for a in truth.values())
            for loader in loaders:
                got = loader.load(patch)
                for group in BAND_GROUPS:
                    assert got[group].dtype == np.uint16
                    np.testing.assert_array_equal(
                        got[group], truth[group], err_msg=f"{loader.format} on {loader.storage}"
                    )
    finally:
        for loader in loaders:
            loader.close()


def test_zip_on_s3_is_read_by_ranges_not_downloaded(formats, s3):
    client = s3.client()
    upload_dataset(formats["zarr-zip"], client, s3.bucket, "zarr-zip")
    loader = open_loader(
        "zarr-zip", "s3", formats["zarr-zip"], TILE, YEAR, s3=s3, s3_prefix="zarr-zip"
    )
    try:
        source = loader.counter._store.reader.source
        requests = []
        read = source.read

        def spy(start, length):
            requests.append((start, length))
            return read(start, length)

        source.read = spy
        loader.load(random_patches(loader.grids, 1, seed=5)[0])
        size = formats["zarr-zip"].entry_path.stat().st_size
        # one ranged GET per array metadata document and chunk (3 groups), never the whole zip
        assert len(requests) >= 6
        assert sum(length for _, length in requests) < size
        assert all(0 < start and start + length <= size for start, length in requests)
    finally:
        loader.close()


def test_sharded_loader_reads_each_shard_index_once(formats):
    loader = open_loader("zarr-sharded", "network", formats["zarr-sharded"], TILE, YEAR)
    try:
        patch = random_patches(loader.grids, 1, seed=9)[0]
        first_requests = loader.counter.requests
        first = loader.load(patch)
        first_requests = loader.counter.requests - first_requests
        again_requests = loader.counter.requests
        again = loader.load(patch)
        again_requests = loader.counter.requests - again_requests
        for group in BAND_GROUPS:
            np.testing.assert_array_equal(again[group], first[group])
        # the second load asks storage only for metadata and chunks: one index per shard fewer
        assert again_requests < first_requests
    finally:
        loader.close()


def test_benchmark_run_writes_the_reference_shape_with_checks(formats, s3_server, tmp_path):
    doc = run(
        formats,
        TILE,
        YEAR,
        storages=("network", "temp", "s3"),
        repeats=2,
        seed=11,
        temp_root=tmp_path / "tmp",
        s3_config=S3Config("bench-bucket", prefix="p"),
        s3_log=tmp_path / "moto.log",
        workers=4,
        drop_caches=False,
        echo=lambda _: None,
    )
    jsonschema.validate(json.loads(json.dumps(doc)), RESULT_SCHEMA)
    assert set(doc["results"]) == {"network", "temp", "s3"}
    for storage, per_format in doc["results"].items():
        assert set(per_format) == {*FORMATS, "zarr-xarray"}
        for fmt, entry in per_format.items():
            assert len(entry["durations"]) == 2, (storage, fmt)
            d = np.array(entry["durations"])
            assert entry["stderr_durations"] == pytest.approx(d.std(ddof=1) / np.sqrt(2))
            assert entry["band_group_shapes"]["10m"][:2] == [3, 4]
            assert all(b is not None and b > 0 for b in entry["bytes_read"]), (storage, fmt)
    assert len(doc["patches"]) == 3  # warm-up + 2
    assert doc["page_cache"]["dropped"] is False
    assert doc["page_cache"]["reason"] == "disabled by configuration"
    assert doc["objects"]["zarr-zip"] == 1 and doc["objects"]["zarr"] > 10
    assert doc["staging"]["copy_temp:zarr"]["objects"] == doc["objects"]["zarr"]
    assert doc["staging"]["upload_s3:zarr-zip"]["objects"] == 1
    assert not list((tmp_path / "tmp").iterdir())  # temp copies removed
    assert doc["ratios"]["temp"]["zarr_vs_xarray_speedup"] > 0
    same_seed = run(
        {"zarr": formats["zarr"]},
        TILE,
        YEAR,
        storages=("network",),
        repeats=2,
        seed=11,
        drop_caches=False,
        baseline=False,
        echo=lambda _: None,
    )
    assert same_seed["patches"] == doc["patches"]
