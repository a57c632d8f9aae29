"""Zarr -> zipped Zarr: STORED, metadata first, ZIP64, deterministic; read by zarr's ZipStore."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr

from eolab.cli import main
from eolab.core.errors import InputError
from eolab.sentinel2 import datacube, safe
from eolab.sentinel2.products import product_paths
from eolab.zarrio import zipzarr

SPEC = datacube.CubeSpec(
    chunks={"10m": (2, 64, 64), "20m": (2, 32, 32), "60m": (2, 16, 16)},
    shards={"10m": (2, 128, 128), "20m": (2, 64, 64), "60m": (2, 32, 32)},
)


@pytest.fixture(scope="module")
def store(tmp_path_factory, s2_products):
    path = tmp_path_factory.mktemp("zip") / "cube.zarr"
    datacube.to_zarr(path, product_paths(s2_products), SPEC, progress=False)
    return path


def test_zip_is_stored_metadata_first_and_complete(store, tmp_path):
    out = tmp_path / "cube.zarr.zip"
    result = zipzarr.zip_store(store, out)
    files = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert sorted(names) == files and len(set(names)) == len(names) == result["entries"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        meta = [n.endswith("zarr.json") for n in names]
        assert names[0] == "zarr.json" and meta == sorted(meta, reverse=True)
        assert zf.testzip() is None
        for name in names[:5] + names[-5:]:
            assert zf.read(name) == (store / name).read_bytes()


def test_zarr_zipstore_reads_every_band_and_date_exactly(store, tmp_path, s2_products):
    out = tmp_path / "cube.zarr.zip"
    zipzarr.zip_store(store, out)
    zs = zarr.storage.ZipStore(out, mode="r")
    try:
        products = [safe.read_safe(p) for p in product_paths(s2_products)]
        for group, bands in safe.BAND_GROUPS.items():
            ds = xr.open_zarr(zs, group=f"35VLH/2024/{group}", mask_and_scale=False)
            ds = datacube.decode_label_variables(ds)  # label codes -> strings, as open_dataset
            ref = datacube.open_dataset(store, "35VLH", 2024, group, mask_and_scale=False)
            xr.testing.assert_identical(ds, ref)
            for i, product in enumerate(products):
                for j, band in enumerate(bands):
                    with rasterio.open(product.band_path(band)) as src:
                        np.testing.assert_array_equal(ds.data.values[i, j], src.read(1))
    finally:
        zs.close()


def test_same_store_gives_the_same_bytes_and_zip64_when_needed(store, tmp_path, monkeypatch):
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    zipzarr.zip_store(store, a)
    zipzarr.zip_store(store, b)
    assert a.read_bytes() == b.read_bytes()
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1024)  # any member over 1 KiB needs ZIP64
    big = tmp_path / "zip64.zip"
    zipzarr.zip_store(store, big)
    with zipfile.ZipFile(big) as zf:
        large = [i for i in zf.infolist() if i.file_size > 1024]
        assert large and all(i.extract_version >= zipfile.ZIP64_VERSION for i in large)
    monkeypatch.undo()
    from eolab.zarrio.zipreader import (
        ZipReader,  # eolab's fast reader (ranged reads, no local headers)
    )

    for path in (a, big):
        reader = ZipReader.open(path)
        try:
            assert sorted(reader.names()) == sorted(zipfile.ZipFile(path).namelist())
            for name in reader.names():
                assert reader.read(name) == (store / name).read_bytes()
        finally:
            reader.close()
    zs = zarr.storage.ZipStore(big, mode="r")
    data = zarr.open_group(zs, mode="r")["35VLH/2024/10m/data"][:]
    zs.close()
    np.testing.assert_array_equal(data, zarr.open_group(store, mode="r")["35VLH/2024/10m/data"][:])


def test_unfinished_store_is_refused(store, tmp_path):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    group = zarr.open_group(copy / "35VLH" / "2024" / "20m", mode="r+", use_consolidated=False)
    group["time"].resize((5,))  # as if a crash left labels longer than the committed length
    with pytest.raises(InputError, match="unfinished append"):
        zipzarr.zip_store(copy, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    with pytest.raises(InputError, match="not a Zarr v3 store"):
        zipzarr.zip_store(tmp_path, tmp_path / "y.zip")


def test_cli_zip(store, tmp_path, capsys):
    out = tmp_path / "cli.zip"
    main(["zarr", "zip", str(store), str(out)])
    assert "entries" in capsys.readouterr().out
    with zipfile.ZipFile(out) as zf:
        assert "35VLH/2024/60m/data/zarr.json" in zf.namelist()
