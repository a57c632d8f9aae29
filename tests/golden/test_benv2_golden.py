"""BigEarthNet v2 conversion on the real rasters and the real metadata in shared/samples/benv2.

The real sample holds one S2 patch (``…T33UUP_75_43``), one S1 patch (``…33UUP_70_48``) and one
reference map (``…T33UUP_26_57``): three different places, so it contains no complete pair.
The tests say so honestly: the real metadata rows are converted and skipped with the right
reasons; a complete pair is made by moving a copy of the real S1 patch onto the S2 patch's
footprint (its pixels stay real), and a deliberately wrong pair is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio.transform import Affine

from eolab.benv2.convert import TilesOptions, assemble, convert, npz_relpath
from eolab.benv2.names import ALL_BANDS, S2_BANDS, npz_key
from eolab.benv2.reader import read_patch, read_tif
from eolab.benv2.writers import read_npz

pytestmark = pytest.mark.golden

S2_ID = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_75_43"
S1_ON_DISK = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_70_48"
REFMAP_ID = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57"


@pytest.fixture(scope="module")
def real(samples) -> Path:
    root = samples / "benv2" / "BigEarthNet"
    if not (root / "BigEarthNet-S2").is_dir():
        pytest.skip(f"real BigEarthNet rasters not found under {root}")
    return root


@pytest.fixture(scope="module")
def real_rows(samples):
    """The real metadata rows of the three patches the sample has files of."""
    table = pq.read_table(
        samples / "benv2" / "metadata.parquet",
        filters=[[("patch_id", "in", [S2_ID, REFMAP_ID])], [("s1_name", "==", S1_ON_DISK)]],
    )
    rows = table.to_pandas()
    assert len(rows) == 3
    return table.schema, rows.reset_index(drop=True)


def _write_meta(path: Path, schema, rows) -> Path:
    pq.write_table(pa.Table.from_pandas(rows, schema=schema, preserve_index=False), path)
    return path


def _opts(root: Path, meta: Path, out: Path, **kw) -> TilesOptions:
    kw = {"refmap_root": None, "workers": 1, "progress": False, "store": False, **kw}
    return TilesOptions.for_root(root, out, metadata=meta, **kw)


def test_both_readers_agree_on_every_real_raster(real):
    files = sorted(real.rglob("*.tif"))
    assert len(files) == 15
    for path in files:
        a, geo_a = read_tif(path, "tifffile")
        b, geo_b = read_tif(path, "rasterio")
        assert a.dtype == b.dtype and np.array_equal(a, b), path.name
        assert geo_a.epsg == geo_b.epsg == 32633
        assert np.allclose(geo_a.transform, geo_b.transform), path.name


def test_real_s2_bands_resampled_to_10m_per_band(real):
    src = read_patch(
        patch_id=S2_ID,
        s1_name=S1_ON_DISK,
        s2_root=real / "BigEarthNet-S2",
        s1_root=real / "BigEarthNet-S1",
        refmap_root=None,
        bands=tuple(S2_BANDS),
    )
    stack, info = assemble(src, tuple(S2_BANDS), "nearest", 0.9)
    assert stack.shape == (12, 120, 120) and info["crs"] == "EPSG:32633"
    assert info["transform"] == [10.0, 0.0, 390000.0, 0.0, -10.0, 5348400.0]
    for i, (band, res) in enumerate(S2_BANDS.items()):
        native = src.s2[band][0]
        assert native.shape == (1200 // res,) * 2
        f = res // 10
        assert np.array_equal(stack[i], np.kron(native, np.ones((f, f))).astype(np.float32)), band
    bilinear, _ = assemble(src, tuple(S2_BANDS), "bilinear", 0.9)
    b05 = list(S2_BANDS).index("B05")
    # bilinear keeps the band's level (block means close to the 20 m source)
    blocks = bilinear[b05].reshape(60, 2, 60, 2).mean(axis=(1, 3))
    assert np.median(np.abs(blocks - src.s2["B05"][0])) < 0.05 * np.median(src.s2["B05"][0])


def test_real_metadata_rows_without_a_pair_on_disk_are_skipped(real, real_rows, tmp_path):
    schema, rows = real_rows
    meta = _write_meta(tmp_path / "metadata.parquet", schema, rows)
    summary = convert(_opts(real, meta, tmp_path / "out", refmap_root=real / "Reference_Maps"))
    # 75_43: S2 on disk, its S1 (…_75_43) not; 70_48 and 26_57: their S2 patches not on disk
    assert summary["failures_by_reason"] == {"missing_s1": 1, "missing_s2": 2}
    assert summary["done"] == 0
    assert len(list(real.rglob("*.tif"))) == 15 and not list(real.rglob("*.aux.xml"))


def _copy_pair(real: Path, dest: Path, s1_name: str, transform: Affine | None) -> Path:
    """Copy the real S2 patch and the real S1 patch (renamed ``s1_name``, optionally moved)."""
    s2 = real / "BigEarthNet-S2" / S2_ID.rsplit("_", 2)[0] / S2_ID
    shutil.copytree(s2, dest / "BigEarthNet-S2" / s2.parent.name / S2_ID)
    s1_dir = dest / "BigEarthNet-S1" / s1_name.rsplit("_", 3)[0] / s1_name
    s1_dir.mkdir(parents=True)
    for pol in ("VV", "VH"):
        src = (
            real
            / "BigEarthNet-S1"
            / S1_ON_DISK.rsplit("_", 3)[0]
            / S1_ON_DISK
            / f"{S1_ON_DISK}_{pol}.tif"
        )
        target = s1_dir / f"{s1_name}_{pol}.tif"
        shutil.copy(src, target)
        if transform is not None:
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(target, "r+") as ds:
                ds.transform = transform
    return dest


def test_a_wrong_pair_is_refused_by_the_footprint_check(real, real_rows, tmp_path):
    schema, rows = real_rows
    row = rows[rows.patch_id == S2_ID].assign(s1_name=S1_ON_DISK)  # 6 km away: not a pair
    root = _copy_pair(real, tmp_path / "src", S1_ON_DISK, None)
    meta = _write_meta(tmp_path / "metadata.parquet", schema, row)
    summary = convert(_opts(root, meta, tmp_path / "out"))
    assert summary["failures_by_reason"] == {"s1_footprint_mismatch": 1}


def test_real_pixels_convert_and_restore_exactly(real, real_rows, tmp_path):
    schema, rows = real_rows
    row = rows[rows.patch_id == S2_ID]
    s1_name = row.s1_name.iloc[0]  # the real partner …_75_43, made from the real 70_48 pixels
    with rasterio.open(next((real / "BigEarthNet-S2").rglob("*_B02.tif"))) as ds:
        footprint = ds.transform
    root = _copy_pair(real, tmp_path / "src", s1_name, footprint)
    meta = _write_meta(tmp_path / "metadata.parquet", schema, row)
    out = tmp_path / "out"
    summary = convert(_opts(root, meta, out, delete_sources=True))
    assert summary["done"] == 1 and summary["mb_deleted"] > 0
    assert not list(root.rglob("*.tif"))  # sources deleted after verification
    side_path = out / npz_relpath(row.split.iloc[0], S2_ID)
    arrays = read_npz(side_path)
    import json

    side = json.loads(side_path.with_suffix(".json").read_text())
    assert (side["country"], side["split"]) == ("Austria", "validation")
    assert side["s1_alignment"] == "same_grid" and side["labels"] == list(row.labels.iloc[0])
    for band in ALL_BANDS:
        st = side["normalisation"]["bands"][npz_key(band)]
        restored = arrays[npz_key(band)].astype(np.float64) * (st["max"] - st["min"]) + st["min"]
        if band in S2_BANDS:
            path = real / "BigEarthNet-S2" / S2_ID.rsplit("_", 2)[0] / S2_ID / f"{S2_ID}_{band}.tif"
        else:
            path = next((real / "BigEarthNet-S1").rglob(f"*_{band}.tif"))
        with rasterio.open(path) as ds:
            source = ds.read(1)
        f = 120 // source.shape[0]
        if band in S2_BANDS:
            assert np.array_equal(np.rint(restored[::f, ::f]), source), band
        else:
            assert np.allclose(restored, source, atol=1e-4), band
