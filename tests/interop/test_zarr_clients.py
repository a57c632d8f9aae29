"""The Sentinel-2 cubes (plain and sharded) and the BigEarthNet store in xarray + rioxarray,
tensorstore, xarray-tensorstore, GDAL (rasterio) and torch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr

from eolab.benv2 import store as benv2_store_mod
from eolab.sentinel2 import datacube, safe

TILE, YEAR = "35VLH", 2024
CHUNKS = "10m:2x64x64,20m:2x32x32,60m:2x16x16"  # as conftest.py


def cubes(s2_outputs) -> dict[str, Path]:
    return {"plain": s2_outputs.cube, "sharded": s2_outputs.cube_sharded}


def arrays_of(root: Path) -> list[Path]:
    """Every array folder under a Zarr v3 store (from the zarr.json files)."""
    return sorted(
        p.parent
        for p in root.rglob("zarr.json")
        if json.loads(p.read_text())["node_type"] == "array"
    )


def tensorstore_read(path: Path) -> np.ndarray:
    import tensorstore as ts

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
    return ts.open(spec, read=True).result().read().result()


def products(s2_outputs) -> list[safe.SafeProduct]:
    return sorted((safe.read_safe(p) for p in s2_outputs.safes), key=lambda p: p.sensing_time)


def jp2(product: safe.SafeProduct, band: str) -> np.ndarray:
    with rasterio.open(product.band_path(band)) as src:
        return src.read(1)


# --- Sentinel-2 cube ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_xarray_and_rioxarray_read_pixels_labels_crs_and_transform(s2_outputs, layout):
    import rioxarray  # noqa: F401  (registers .rio)

    store = cubes(s2_outputs)[layout]
    prods = products(s2_outputs)
    for group, bands in safe.BAND_GROUPS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # consolidated metadata: no fallback warning
            raw = xr.open_zarr(store, group=f"{TILE}/{YEAR}/{group}", mask_and_scale=False)
        ds = datacube.decode_label_variables(raw)
        assert list(ds.band.values) == bands
        assert list(ds.product_id.values) == [p.id for p in prods]
        assert list(ds.sel(band=bands[0]).band.values.ravel()) == [bands[0]]
        geo = prods[0].geoposition(group)
        assert ds.data.rio.crs.to_epsg() == prods[0].epsg
        assert list(ds.data.rio.transform())[:6] == pytest.approx(list(geo.transform)[:6])
        for i, product in enumerate(prods):
            np.testing.assert_array_equal(ds.data.values[i, -1], jp2(product, bands[-1]))
        attrs = ds.data.attrs
        assert attrs["proj:code"] == f"EPSG:{prods[0].epsg}"
        assert attrs["spatial:transform"] == list(geo.transform)[:6]
        assert attrs["spatial:shape"] == [geo.nrows, geo.ncols]


@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_tensorstore_opens_every_array_and_agrees_with_zarr_python(s2_outputs, layout):
    store = cubes(s2_outputs)[layout]
    paths = arrays_of(store)
    assert len(paths) == 3 * 12  # 12 arrays per group
    root = zarr.open_group(store, mode="r")
    for path in paths:
        values = tensorstore_read(path)
        np.testing.assert_array_equal(values, root[path.relative_to(store).as_posix()][...])
    group = root[f"{TILE}/{YEAR}/10m"]
    codes = tensorstore_read(store / TILE / str(YEAR) / "10m" / "product_id")
    names = group["product_id"].attrs["flag_meanings"].split()
    assert [names[c] for c in codes] == [p.id for p in products(s2_outputs)]


@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_xarray_tensorstore_reads_the_cube(s2_outputs, layout):
    import xarray_tensorstore

    store = cubes(s2_outputs)[layout]
    prods = products(s2_outputs)
    group = store / TILE / str(YEAR) / "20m"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # it opens the group's path itself (no group=); the consolidated metadata is the root's
        ds = xarray_tensorstore.open_zarr(group, mask_and_scale=False, consolidated=False)
    ds = datacube.decode_label_variables(ds)
    assert list(ds.band.values) == safe.BAND_GROUPS["20m"]
    for i, product in enumerate(prods):
        np.testing.assert_array_equal(ds.data[i, 3].values, jp2(product, "B8A"))


@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_gdal_reads_the_cube_or_skips_with_its_reason(s2_outputs, layout):
    store = cubes(s2_outputs)[layout]
    name = f'ZARR:"{store}":/{TILE}/{YEAR}/60m/data'
    try:
        src = rasterio.open(name)
    except rasterio.errors.RasterioIOError as exc:
        pytest.skip(f"GDAL {rasterio.__gdal_version__} (rasterio's) cannot read it: {exc}")
    with src:
        assert src.crs.to_epsg() == products(s2_outputs)[0].epsg
        np.testing.assert_array_equal(src.read(1), jp2(products(s2_outputs)[0], "B01"))


#: The isolated venv of ``make gdal-venv`` (rasterio 1.5 = GDAL 3.12; envs/gdal-reader.txt).
GDAL_VENV_PYTHON = Path(__file__).parents[2] / ".venv-gdal" / "bin" / "python"
#: Run by that venv's Python: every raster band of a GDAL dataset to .npy, its georeferencing
#: (or GDAL's error) to JSON.
GDAL_READ = """
import json, sys
import numpy as np
import rasterio
name, npy = sys.argv[1:]
meta = {"gdal": rasterio.__gdal_version__}
try:
    with rasterio.open(name) as src:
        np.save(npy, src.read())
        meta.update(epsg=src.crs.to_epsg(), transform=list(src.transform)[:6])
except rasterio.errors.RasterioIOError as exc:
    meta["error"] = str(exc)
print(json.dumps(meta))
"""


def gdal_venv_read(name: str, tmp_path: Path) -> tuple[dict, np.ndarray]:
    """Open ``name`` with the GDAL of ``.venv-gdal``: its metadata and every band (GDAL makes one
    band per (time, band) of a 4-D array). Skips, saying why, without that venv or when that GDAL
    cannot read the store."""
    import subprocess

    if not GDAL_VENV_PYTHON.exists():
        pytest.skip(f"{GDAL_VENV_PYTHON} missing: `make gdal-venv` (needs Python >= 3.12)")
    npy = tmp_path / "bands.npy"
    out = subprocess.run(
        [str(GDAL_VENV_PYTHON), "-c", GDAL_READ, name, str(npy)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    meta = json.loads(out.stdout)
    if "error" in meta:
        pytest.skip(f"GDAL {meta['gdal']} (.venv-gdal) cannot read it: {meta['error']}")
    return meta, np.load(npy)


@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_newer_gdal_in_its_own_venv_reads_the_cube(s2_outputs, layout, tmp_path):
    """GDAL 3.12 (rasterio 1.5, which needs Python >= 3.12) in ``.venv-gdal``: every time and
    band of the 60 m group equal to the JP2s, CRS and transform from the store's attributes."""
    store = cubes(s2_outputs)[layout]
    meta, bands = gdal_venv_read(f'ZARR:"{store}":/{TILE}/{YEAR}/60m/data', tmp_path)
    prods = products(s2_outputs)
    geo = prods[0].geoposition("60m")
    assert meta["epsg"] == prods[0].epsg
    assert meta["transform"] == pytest.approx(list(geo.transform)[:6])
    names = safe.BAND_GROUPS["60m"]
    assert bands.shape[0] == len(prods) * len(names)
    for t, product in enumerate(prods):
        for b, band in enumerate(names):
            np.testing.assert_array_equal(bands[t * len(names) + b], jp2(product, band))


# --- zipped cube (eolab zarr zip) --------------------------------------------------------------
def test_zipped_cube_in_xarray_and_tensorstore(s2_outputs):
    """xarray through zarr's ZipStore (consolidated metadata, no warning) and tensorstore's
    ``zip`` kvstore read every array of the zip equal to the directory store it was made from."""
    import tensorstore as ts

    prods = products(s2_outputs)
    with zarr.storage.ZipStore(s2_outputs.cube_zip, mode="r") as zs:
        raw = xr.open_zarr(zs, group=f"{TILE}/{YEAR}/60m", mask_and_scale=False)
        ds = datacube.decode_label_variables(raw)
        assert list(ds.product_id.values) == [p.id for p in prods]
        for i, product in enumerate(prods):
            np.testing.assert_array_equal(ds.data.values[i, 0], jp2(product, "B01"))
    plain = s2_outputs.cube
    paths = arrays_of(plain)
    assert len(paths) == 3 * 12
    base = f"file://{s2_outputs.cube_zip}"
    for path in paths:
        kv = {"driver": "zip", "base": base, "path": f"{path.relative_to(plain).as_posix()}/"}
        values = ts.open({"driver": "zarr3", "kvstore": kv}, read=True).result().read().result()
        np.testing.assert_array_equal(values, tensorstore_read(path))


def test_newer_gdal_reads_the_zipped_cube_through_vsizip(s2_outputs, tmp_path):
    name = f'ZARR:"/vsizip/{s2_outputs.cube_zip}":/{TILE}/{YEAR}/60m/data'
    meta, bands = gdal_venv_read(name, tmp_path)
    prods = products(s2_outputs)
    assert meta["epsg"] == prods[0].epsg
    names = safe.BAND_GROUPS["60m"]
    for t, product in enumerate(prods):
        for b, band in enumerate(names):
            np.testing.assert_array_equal(bands[t * len(names) + b], jp2(product, band))


# --- BigEarthNet store -------------------------------------------------------------------------
def test_benv2_store_opens_in_xarray_without_warnings_and_keeps_pixels(benv2_store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(benv2_store)
    assert "data" in ds.data_vars and ds.data.dims == ("patch", "band", "y", "x")
    mean = ds.mean("patch")
    assert "data" in mean.data_vars and mean.data.shape == ds.data.shape[1:]
    np.testing.assert_allclose(mean.data.values, ds.data.values.mean(axis=0), rtol=1e-6)
    decoded = benv2_store_mod.open_dataset(benv2_store)
    group = zarr.open_group(benv2_store, mode="r")
    with benv2_store_mod.PatchStore(benv2_store) as reader:
        assert list(decoded.patch_id.values) == list(reader.patch_id)
    assert set(decoded.split.values) == {"train"}
    assert decoded.country.values.dtype.kind == "U" and group.attrs["format_version"] == 2


def test_benv2_store_in_tensorstore_and_xarray_tensorstore(benv2_store):
    import xarray_tensorstore

    root = zarr.open_group(benv2_store, mode="r")
    for path in arrays_of(benv2_store):
        values = tensorstore_read(path)
        np.testing.assert_array_equal(values, root[path.name][...])
    ds = xarray_tensorstore.open_zarr(benv2_store, mask_and_scale=False)
    np.testing.assert_array_equal(ds.data[1].values, root["data"][1])
    assert ds.labels.dtype == np.uint8


def test_patch_store_arrays_go_to_torch_without_warnings(benv2_store):
    torch = pytest.importorskip("torch", reason="torch (CPU build) is in the test extra")
    root = zarr.open_group(benv2_store, mode="r")
    with benv2_store_mod.PatchStore(benv2_store) as reader, warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on non-writable arrays
        for i in range(len(reader)):
            x, labels = reader[i]
            tx, tl = torch.from_numpy(x), torch.from_numpy(labels)
            assert tx.shape == (14, 120, 120) and tl.shape == (19,)
            np.testing.assert_array_equal(tx.numpy(), root["data"][i])
            np.testing.assert_array_equal(tl.numpy(), root["labels"][i])


def test_patch_store_reads_format_1_stores(benv2_store, tmp_path):
    """A store written before format 2 (pixels in ``x``, strings) still reads."""
    import shutil

    old = Path(shutil.copytree(benv2_store, tmp_path / "old.zarr"))
    (old / "data").rename(old / "x")
    meta = json.loads((old / "zarr.json").read_text())
    meta.pop("consolidated_metadata")  # format 1 stores had none
    (old / "zarr.json").write_text(json.dumps(meta))
    group = zarr.open_group(old, mode="r+", use_consolidated=False)
    ids = benv2_store_mod.read_strings(group["patch_id"])
    del group["patch_id"]
    group.create_array("patch_id", shape=ids.shape, dtype=str, dimension_names=("patch",))[...] = (
        ids
    )
    with benv2_store_mod.PatchStore(old) as reader, benv2_store_mod.PatchStore(benv2_store) as new:
        assert list(reader.patch_id) == list(new.patch_id)
        np.testing.assert_array_equal(reader[2][0], new[2][0])


# --- chip index --------------------------------------------------------------------------------
def test_chip_index_in_geopandas_and_duckdb(s2_outputs):
    import duckdb
    import geopandas as gpd

    files = sorted(s2_outputs.index.glob("*.parquet"))
    assert len(files) == len(s2_outputs.safes)
    for path in files:
        table = gpd.read_parquet(path)
        assert table.crs.to_epsg() == 4326 and len(table) > 0
        con = duckdb.connect()
        rows = con.execute(
            "SELECT count(*), min(chip_index_x), max(chip_index_x) FROM read_parquet(?)",
            [str(path)],
        ).fetchone()
        assert rows == (len(table), table.chip_index_x.min(), table.chip_index_x.max())
        ids = [
            r[0] for r in con.execute("SELECT chipid FROM read_parquet(?)", [str(path)]).fetchall()
        ]
        assert ids == table.chipid.tolist()


def test_cubes_written_with_string_labels_still_read_and_resume(s2_outputs, tmp_path):
    """Stores from before the label codes (variable-length strings) read as before, and a
    rerun on them (nothing new to add) leaves them readable."""
    import shutil

    store = Path(shutil.copytree(s2_outputs.cube, tmp_path / "old.zarr"))
    meta = json.loads((store / "zarr.json").read_text())
    meta.pop("consolidated_metadata")
    (store / "zarr.json").write_text(json.dumps(meta))
    root = zarr.open_group(store, mode="r+", use_consolidated=False)
    for group in safe.BAND_GROUPS:
        z = root[f"{TILE}/{YEAR}/{group}"]
        for name in (*datacube.STR_LABELS, datacube.BAND):
            strings = datacube.read_labels(z[name])
            attrs = {k: v for k, v in z[name].attrs.items() if not k.startswith("flag_")}
            del z[name]
            chunks = z["time"].chunks if name != datacube.BAND else strings.shape
            arr = z.create_array(
                name, shape=strings.shape, chunks=chunks, dtype=str, attributes=attrs,
                dimension_names=(datacube.BAND if name == datacube.BAND else "time",),
            )  # fmt: skip
            arr[...] = strings
    spec = datacube.CubeSpec(chunks=datacube.parse_blocks(CHUNKS))
    datacube.to_zarr(store, s2_outputs.safes, spec, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rerun consolidated the old store's metadata
        ds = datacube.open_dataset(store, TILE, YEAR, "10m", mask_and_scale=False)
    assert ds.product_id.dtype.kind in "UT" and list(map(str, ds.product_id.values)) == [
        p.id for p in products(s2_outputs)
    ]
    assert list(datacube.read_labels(zarr.open_group(store)[f"{TILE}/{YEAR}/10m/band"])) == [
        "B02", "B03", "B04", "B08",
    ]  # fmt: skip
