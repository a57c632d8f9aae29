"""The BigEarthNet v2 fixture is faithful to the real files in shared/samples/benv2."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio

from eolab.benv2.names import LABELS
from eolab.fixtures import benv2 as fx
from eolab.mgrs import tile_grid

REAL_COUNTRIES = {
    "Austria",
    "Belgium",
    "Finland",
    "Ireland",
    "Kosovo",
    "Lithuania",
    "Luxembourg",
    "Portugal",
    "Serbia",
    "Switzerland",
}


def _profile(path: Path) -> dict:
    """The parts of a GeoTIFF's profile the real files fix."""
    with rasterio.open(path) as ds:
        return {
            "dtype": ds.dtypes[0],
            "shape": ds.shape,
            "count": ds.count,
            "nodata": ds.nodata,
            "res": ds.res,
            "block": ds.block_shapes[0],
            "tiled": ds.profile.get("tiled"),
            "structure": ds.tags(ns="IMAGE_STRUCTURE"),
            "crs_is_utm": ds.crs.to_epsg() // 100 in (326, 327),
        }


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def fixture_root(benv2_root) -> Path:
    return benv2_root


@pytest.fixture(scope="module")
def meta(fixture_root):
    return pq.read_table(fixture_root / fx.METADATA).to_pandas()


@pytest.mark.golden
def test_metadata_schema_equals_real(fixture_root, samples):
    for name in (fx.METADATA, fx.SNOW_CLOUD_METADATA):
        real = pq.read_schema(samples / "benv2" / name)
        ours = pq.read_schema(fixture_root / name)
        assert ours.equals(real), f"{name}: {ours} != {real}"
        assert ours.names == real.names


@pytest.mark.golden
def test_rasters_match_real_profile_per_band(fixture_root, meta, samples):
    real_root = samples / "benv2" / "BigEarthNet"
    real_s2 = next((real_root / "BigEarthNet-S2").glob("*/*"))
    real_s1 = next((real_root / "BigEarthNet-S1").glob("*/*"))
    real_ref = next((real_root / "Reference_Maps").glob("*/*"))
    row = meta.iloc[0]
    ours_s2 = fx.s2_patch_dir(fixture_root, row.patch_id)
    for band in fx.S2_BANDS:
        real = _profile(real_s2 / f"{real_s2.name}_{band}.tif")
        ours = _profile(ours_s2 / f"{row.patch_id}_{band}.tif")
        assert ours == real, band
    ours_s1 = fx.s1_patch_dir(fixture_root, row.s1_name)
    for pol in fx.S1_POLARISATIONS:
        assert _profile(ours_s1 / f"{row.s1_name}_{pol}.tif") == _profile(
            real_s1 / f"{real_s1.name}_{pol}.tif"
        )
    ours_ref = fx.reference_map_dir(fixture_root, row.patch_id)
    assert _profile(ours_ref / f"{row.patch_id}_reference_map.tif") == _profile(
        real_ref / f"{real_ref.name}_reference_map.tif"
    )


@pytest.mark.golden
def test_names_and_labels_follow_real_table(meta, samples):
    first = pq.ParquetFile(samples / "benv2" / fx.METADATA).read_row_group(0, columns=["labels"])
    real_labels = {label for labels in first.column(0).to_pylist() for label in labels}
    assert set(fx.CLASSES) >= real_labels and tuple(fx.CLASSES) == LABELS
    assert {label for labels in meta.labels for label in labels} <= set(fx.CLASSES)
    real_names = pq.ParquetFile(samples / "benv2" / fx.METADATA).read_row_group(
        0, columns=["patch_id"]
    )
    assert {len(p) for p in real_names.column(0).to_pylist()} == {len(p) for p in meta.patch_id}


def test_naming_crs_and_grid(fixture_root, meta):
    for row in meta.itertuples():
        product, col, r = row.patch_id.rsplit("_", 2)
        assert len(col) == len(r) == 2  # zero-padded in patch ids ...
        s1_product, s1_tile, s1_col, s1_row = row.s1_name.rsplit("_", 3)
        assert (int(s1_col), int(s1_row)) == (int(col), int(r))
        assert s1_col == str(int(col))  # ... but not in S1 names or s2v1 names
        assert row.s2v1_name.endswith(f"_{int(col)}_{int(r)}")
        assert product.endswith(f"_T{s1_tile}")
        grid = tile_grid(s1_tile)
        for band, res in fx.S2_BANDS.items():
            with rasterio.open(
                fx.s2_patch_dir(fixture_root, row.patch_id) / f"{row.patch_id}_{band}.tif"
            ) as ds:
                assert ds.crs.to_epsg() == grid.epsg
                assert ds.shape == (1200 // res, 1200 // res)
                assert ds.transform.a == res and ds.transform.e == -res
                assert ds.transform.c == grid.ulx + int(col) * 1200
                assert ds.transform.f == grid.uly - int(r) * 1200
                assert ds.dtypes[0] == "uint16"
                assert ds.read(1).min() > 0  # nodata 0 only where there is no data


def test_s1_s2_pairing_through_metadata(fixture_root, meta):
    for row in meta.itertuples():
        s2 = fx.s2_patch_dir(fixture_root, row.patch_id) / f"{row.patch_id}_B02.tif"
        vv = fx.s1_patch_dir(fixture_root, row.s1_name) / f"{row.s1_name}_VV.tif"
        with rasterio.open(s2) as a, rasterio.open(vv) as b:
            assert a.crs == b.crs and a.bounds == b.bounds
            data = b.read(1)
            assert data.dtype == np.float32 and -26 < data.mean() < 11


def test_labels_agree_with_reference_map(fixture_root, meta):
    code_to_label = {c: name for name, (codes, _) in fx.CLASSES.items() for c in codes}
    for row in meta.itertuples():
        path = (
            fx.reference_map_dir(fixture_root, row.patch_id) / f"{row.patch_id}_reference_map.tif"
        )
        with rasterio.open(path) as ds:
            codes = np.unique(ds.read(1))
        assert sorted({code_to_label[int(c)] for c in codes}) == list(row.labels)


def test_spread_over_countries_splits_tiles(meta, fixture_root):
    assert set(meta.country) <= REAL_COUNTRIES and meta.country.nunique() >= 8
    assert set(meta.split) == {"train", "validation", "test"}
    assert meta.patch_id.str.rsplit("_", n=2).str[0].str[-5:].nunique() >= 8
    assert meta.patch_id.is_unique and meta.s1_name.is_unique
    snow = pq.read_table(fixture_root / fx.SNOW_CLOUD_METADATA).to_pandas()
    assert len(snow) >= 1 and not set(snow.patch_id) & set(meta.patch_id)
    assert (snow.contains_seasonal_snow ^ snow.contains_cloud_or_shadow).all()
    assert not meta.contains_seasonal_snow.any() and not meta.contains_cloud_or_shadow.any()


def test_deterministic_and_seed_sensitive(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    res = fx.generate(a, patches=3, seed=7)
    fx.generate(b, patches=3, seed=7)
    fx.generate(c, patches=3, seed=8)
    assert res["patches"] == 3
    da, db = _digest(a), _digest(b)
    assert da == db and len(da) == (3 + 1) * 15 + 2
    assert not any(name.endswith(".aux.xml") for name in da)
    assert _digest(c) != da
