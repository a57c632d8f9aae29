"""Sentinel-2 L1C SAFE fixtures: tree, metadata read by the real reader, rasters, determinism."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eolab.errors import ConfigError, InputError
from eolab.fixtures.sentinel2 import generate_product, generate_tile_year, write_jp2
from eolab.mgrs import tile_grid
from eolab.products import product_paths, read_manifest
from eolab.safe import (
    BAND_RESOLUTION,
    BANDS,
    format_time,
    read_safe,
    sha3_256,
)

SCALE = 61  # the conftest fixtures: 180 / 90 / 30 px
TINY = 183  # 60 / 30 / 10 px for tests that generate their own products
NAME_RE = re.compile(r"^S2[ABC]_MSIL1C_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}$")
#: Files a real manifest.safe leaves out (besides itself).
UNLISTED = {
    "HTML/banner_1.png", "HTML/banner_2.png", "HTML/banner_3.png", "HTML/star_bg.jpg",
    "rep_info/S2_User_Product_Level-1C_Metadata.xsd",
}  # fmt: skip


@pytest.fixture(scope="module", params=["north", "south"])
def tile_year(request, s2_products, s2_products_south) -> Path:
    return s2_products if request.param == "north" else s2_products_south


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_manifest_and_tree(tile_year):
    doc = read_manifest(tile_year)
    assert doc["source"] == "fixtures" and doc["year"] == 2024
    entries = doc["products"]
    assert len(entries) == 3
    assert [e["datetime"] for e in entries] == sorted(e["datetime"] for e in entries)
    for entry, path in zip(entries, product_paths(tile_year), strict=True):
        assert NAME_RE.match(entry["id"])
        assert path.name == entry["id"] + ".SAFE"
        p = read_safe(path)
        assert p.id == entry["id"] and p.tile == doc["tile"]
        assert entry["datetime"] == format_time(p.datatake_start)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["datetime"])
        assert path.parent.relative_to(tile_year.parent).as_posix() == (
            f"Sentinel-2/MSI/L1C/{p.datatake_start:%Y/%m/%d}"
        )
        files = [f for f in path.rglob("*") if f.is_file()]
        assert entry["files"] == len(files) == 65  # as many as the real product
        assert entry["bytes"] == sum(f.stat().st_size for f in files)
        assert entry["verified"] is True
        granule = p.granule_dir.name
        assert granule == f"L1C_T{p.tile}_A{p.absolute_orbit:06d}_{granule[-15:]}"
        assert p.datastrip_dir.name.startswith(f"DS_2APS_{p.generation_time:%Y%m%dT%H%M%S}_S")
        for rel in ("INSPIRE.xml", "HTML/UserProduct_index.html", "AUX_DATA",
                    "rep_info/S2_User_Product_Level-1C_Metadata.xsd"):  # fmt: skip
            assert (path / rel).exists(), rel
        assert (p.datastrip_dir / "MTD_DS.xml").is_file()
        assert len(list((p.datastrip_dir / "QI_DATA").glob("*.xml"))) == 5
        assert sorted(f.name for f in (p.granule_dir / "AUX_DATA").iterdir()) == [
            "AUX_CAMSFO", "AUX_ECMWFT"
        ]  # fmt: skip


def test_metadata_read_by_the_reader(tile_year):
    """The same reader as for the real sample; times with ms, sensing after the datatake."""
    for path in product_paths(tile_year):
        p = read_safe(path)
        assert p.baseline == "05.10" and p.quantification_value == 10000
        assert p.radio_offsets == {band: -1000 for band in BANDS}
        assert list(p.band_ids.values()) == list(BANDS)
        assert p.datatake_start < p.sensing_time < p.generation_time
        assert p.sensing_time.microsecond % 1000 == 0
        assert p.datatake_start.microsecond == 24000
        assert p.mission == p.id[:3] and p.spacecraft == f"Sentinel-{p.mission[1:]}"
        assert f"_R{p.relative_orbit:03d}_" in p.id
        assert 0.0 <= p.cloud_cover <= 100.0


def test_rasters_georeferenced_per_band(tile_year):
    """Every JP2: CRS and transform from the MGRS id (== the reader's), shape and dtype."""
    grid = tile_grid(read_manifest(tile_year)["tile"])
    for path in product_paths(tile_year):
        p = read_safe(path)
        assert p.epsg == grid.epsg
        for res in (10, 20, 60):
            geo = p.geoposition(res)
            assert (geo.ulx, geo.uly, geo.xdim, geo.ydim) == (grid.ulx, grid.uly, res, -res)
            assert geo.shape == ({10: 10980, 20: 5490, 60: 1830}[res] // SCALE,) * 2
        for band in BANDS:
            res = BAND_RESOLUTION[band]
            with rasterio.open(p.band_path(band)) as src:
                assert src.crs.to_epsg() == grid.epsg, band
                assert src.transform == p.transform(res), band
                assert src.shape == p.geoposition(res).shape, band
                assert src.count == 1 and src.dtypes == ("uint16",), band
                assert src.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "15"
        with rasterio.open(p.band_path("TCI")) as src:
            assert (src.count, src.dtypes[0], src.transform) == (3, "uint8", p.transform(10))
        qi = p.granule_dir / "QI_DATA"
        for band in BANDS:
            res = BAND_RESOLUTION[band]
            for kind, count in (("DETFOO", 1), ("QUALIT", 8)):
                with rasterio.open(qi / f"MSK_{kind}_{band}.jp2") as src:
                    assert (src.count, src.dtypes[0]) == (count, "uint8")
                    assert src.transform == p.transform(res)
        with rasterio.open(next(qi.glob("*_PVI.jp2"))) as src:
            assert src.count == 3 and src.crs.to_epsg() == grid.epsg


def test_orbits_and_swath_edge(s2_products):
    """Ascending and descending dates; one date has the same no-data region in every band."""
    products = [read_safe(p) for p in product_paths(s2_products)]
    assert {p.orbit_direction for p in products} == {"ASCENDING", "DESCENDING"}
    assert len({p.relative_orbit for p in products}) == 3
    with_nodata = 0
    for p in products:
        reference = _read(p.band_path("B01"))[0] == 0  # 60 m
        for band in BANDS:
            zeros = _read(p.band_path(band))[0] == 0
            k = 60 // BAND_RESOLUTION[band]
            cells = zeros.reshape(zeros.shape[0] // k, k, -1, k)
            assert (cells.all(axis=(1, 3)) == cells.any(axis=(1, 3))).all(), band
            assert (cells.all(axis=(1, 3)) == reference).all(), band
        if reference.any():
            with_nodata += 1
            assert 0.05 < reference.mean() < 0.6
            # a diagonal edge: the no-data column boundary moves from row to row
            first_zero = reference.argmax(axis=1)
            assert first_zero[0] != first_zero[-1]
    assert with_nodata == 1


def test_cloud_mask_matches_metadata_and_pixels(tile_year):
    clouded = 0
    for path in product_paths(tile_year):
        p = read_safe(path)
        classi = _read(p.cloud_mask_path)
        assert classi.shape == (3, *p.geoposition(60).shape) and classi.dtype == np.uint8
        valid = _read(p.band_path("B01"))[0] != 0
        opaque, cirrus, snow = classi.astype(bool)
        assert not classi[:, ~valid].any()
        assert p.cloud_cover == pytest.approx(100 * (opaque | cirrus)[valid].mean())
        if opaque.sum() > 3 and (valid & ~opaque & ~snow).sum() > 3:
            clouded += 1
            b12 = _read(p.band_path("B12"))[0].astype(float)  # clouds are bright in SWIR
            b12_60 = b12.reshape(valid.shape[0], 3, -1, 3).mean(axis=(1, 3))
            assert b12_60[opaque].mean() > b12_60[valid & ~opaque & ~snow].mean() + 500
        if cirrus.any():
            b10 = _read(p.band_path("B10"))[0].astype(float)
            clear = valid & ~opaque & ~cirrus
            if clear.any():
                assert b10[cirrus].mean() > b10[clear].mean()
    assert clouded >= 1


def test_manifest_safe_checksums(s2_products):
    for path in product_paths(s2_products):
        p = read_safe(path)
        entries = p.manifest_files()
        for e in entries:
            assert (path / e.href).stat().st_size == e.size, e.href
            assert sha3_256(path / e.href) == e.sha3_256, e.href
        listed = {e.href for e in entries}
        every = {f.relative_to(path).as_posix() for f in path.rglob("*") if f.is_file()}
        assert every - listed == UNLISTED | {"manifest.safe"}
        raw = (path / "manifest.safe").read_text()
        assert re.search(r"SHA3-256\">[0-9A-F]{64}<", raw)  # mixed case, like real ones


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_gdal_sentinel2_driver_reads_fixture(s2_products):
    """GDAL's own SENTINEL2 driver understands the metadata (a real-world reader)."""
    path = product_paths(s2_products)[0]
    p = read_safe(path)
    with rasterio.open(path / "MTD_MSIL1C.xml") as src:
        assert src.driver == "SENTINEL2"
        assert src.tags()["PRODUCT_URI"] == p.product_uri
        sub = [s for s in src.subdatasets if ":10m:" in s][0]
    with rasterio.open(sub) as src:
        assert src.crs.to_epsg() == p.epsg and src.transform == p.transform(10)
        assert src.tags(1)["RADIO_ADD_OFFSET"] == "-1000"
        b04 = src.read(1)
    assert (b04 == _read(p.band_path("B04"))[0]).all()


def test_offsets_before_and_after_04_00(tmp_path):
    """Same date and seed: baseline 05.10 DNs are the 03.01 DNs + 1000, declared by
    RADIO_ADD_OFFSET; before 04.00 no offset list and GML cloud masks instead of MSK_CLASSI."""
    kwargs = dict(tile="35VLH", when="2024-03-05T09:40:21.024Z", scale=TINY, seed=3,
                  cloud=0.3, cirrus=True, nodata=True)  # fmt: skip
    new = read_safe(tmp_path / generate_product(tmp_path, baseline="05.10", **kwargs)["path"])
    old = read_safe(tmp_path / generate_product(tmp_path, baseline="03.01", **kwargs)["path"])
    assert "_N0510_" in new.id and "_N0301_" in old.id
    assert old.radio_offsets == {} and len(new.radio_offsets) == 13
    assert old.cloud_mask_path is None and new.cloud_mask_path is not None
    assert (old.granule_dir / "QI_DATA" / "MSK_CLOUDS_B00.gml").is_file()
    assert old.cloud_cover == pytest.approx(new.cloud_cover)
    for band in BANDS:
        a_new = _read(new.band_path(band))[0].astype(int)
        a_old = _read(old.band_path(band))[0].astype(int)
        assert ((a_new == 0) == (a_old == 0)).all()
        unclipped = a_old > 1
        assert unclipped.mean() > 0.5
        assert (a_new[unclipped] - a_old[unclipped] == 1000).all(), band
    # every file of the old product is listed and verified in its manifest
    for e in old.manifest_files():
        assert sha3_256(old.path / e.href) == e.sha3_256


def _files(root: Path) -> dict[str, bytes]:
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*") if f.is_file()}


def test_same_seed_same_bytes_other_seed_other_pixels(tmp_path):
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate_tile_year(tmp_path / name, tile="51CVP", year=2023, dates=2, scale=TINY,
                           seed=seed, baseline="05.10")  # fmt: skip
        runs.append(_files(tmp_path / name))
    assert runs[0] == runs[1]
    assert len(runs[0]) == 2 * 65 + 1
    jp2 = sorted(k for k in runs[0] if k.endswith("_B02.jp2"))
    other = sorted(k for k in runs[2] if k.endswith("_B02.jp2"))
    a = _read(tmp_path / "a" / jp2[0])
    c = _read(tmp_path / "c" / other[0])
    assert a.shape == c.shape and (a != c).mean() > 0.5


def test_jp2_writer_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 32768, (70, 90), dtype=np.uint16)
    data[:10] = 0
    grid = tile_grid("35VLH")
    from affine import Affine

    transform = Affine(20, 0, grid.ulx, 0, -20, grid.uly)
    write_jp2(tmp_path / "x.jp2", data, transform, grid.epsg, nbits=15)
    with rasterio.open(tmp_path / "x.jp2") as src:
        assert (src.read(1) == data).all()
        assert src.transform == transform
    assert not list(tmp_path.glob("*.aux.xml"))


def test_missing_or_corrupt_metadata_is_named(s2_products, tmp_path):
    source = product_paths(s2_products)[0]
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    tl = next(copy.glob("GRANULE/*/MTD_TL.xml"))
    tl.unlink()
    with pytest.raises(InputError, match=r"MTD_TL\.xml: file not found"):
        read_safe(copy)
    (copy / "MTD_MSIL1C.xml").write_text("<n1:Level-1C_User_Product")
    with pytest.raises(InputError, match=r"MTD_MSIL1C\.xml: corrupt XML"):
        read_safe(copy)
    with pytest.raises(InputError, match="SAFE folder not found"):
        read_safe(tmp_path / "nope.SAFE")


def test_missing_band_file_is_named(s2_products, tmp_path):
    source = product_paths(s2_products)[0]
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    p = read_safe(copy)
    victim = p.band_path("B11")
    victim.unlink()
    with pytest.raises(InputError, match=r"_B11\.jp2: band B11 file missing"):
        read_safe(copy).band_paths()


@pytest.mark.parametrize("scale", [0, 7, 100, 3660])
def test_bad_scale(tmp_path, scale):
    with pytest.raises(ConfigError, match=f"scale {scale}: must divide 1830"):
        generate_tile_year(tmp_path, tile="35VLH", year=2024, dates=1, scale=scale, seed=1)


def test_bad_inputs_via_cli(tmp_path):
    run = [sys.executable, "-m", "eolab", "fixtures", "sentinel2", "--out", str(tmp_path)]
    result = subprocess.run(run + ["--scale", "7"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "eolab: error: scale 7: must divide 1830" in result.stderr
    result = subprocess.run(run + ["--tile", "35VAH"], capture_output=True, text=True)
    assert result.returncode == 1 and "'35VAH'" in result.stderr
    result = subprocess.run(run + ["--baseline", "5.1"], capture_output=True, text=True)
    assert result.returncode == 1 and "baseline '5.1'" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dates", [1, 3, 4, 192, 400])
def test_schedule_spreads_dates_orbits_and_clouds(dates):
    from eolab.fixtures.sentinel2 import schedule

    acqs = schedule("35VLH", 2024, dates, seed=42)
    times = [a.when for a in acqs]
    assert times == sorted(times) and len(set(times)) == dates
    assert all(t.year == 2024 and t.microsecond == 24000 for t in times)
    if dates >= 3:
        assert {a.orbit_direction for a in acqs} == {"ASCENDING", "DESCENDING"}
        assert any(a.nodata for a in acqs) and not all(a.nodata for a in acqs)
        assert max(a.cloud for a in acqs) - min(a.cloud for a in acqs) > 0.2
        assert (times[-1] - times[0]).days > 200
    assert schedule("35VLH", 2024, dates, seed=42) == acqs


def test_rerun_resumes_and_repairs(tmp_path):
    kwargs = dict(tile="35VLH", year=2024, dates=2, scale=TINY, seed=9)
    generate_tile_year(tmp_path, **kwargs)
    before = _files(tmp_path)
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.rglob("*.jp2")}
    generate_tile_year(tmp_path, **kwargs)
    assert {f: f.stat().st_mtime_ns for f in tmp_path.rglob("*.jp2")} == stamps  # kept
    victim = sorted(tmp_path.rglob("*_B05.jp2"))[0]
    victim.write_bytes(victim.read_bytes()[:100])  # a truncated file: product redone
    generate_tile_year(tmp_path, **kwargs)
    assert _files(tmp_path) == before
    generate_tile_year(tmp_path, **{**kwargs, "scale": 2 * TINY})  # other scale: redone
    p = read_safe(product_paths(tmp_path / "35VLH_2024.json")[0])
    assert p.geoposition(10).shape == (30, 30)


def test_tci_is_the_true_colour_of_b04_b03_b02(s2_products):
    p = read_safe(product_paths(s2_products)[1])  # the date with a no-data edge
    tci = _read(p.band_path("TCI"))
    for channel, band in enumerate(("B04", "B03", "B02")):
        dn = _read(p.band_path(band))[0].astype(float)
        expected = np.clip(np.rint((dn - 1000) * 255 / 2000), 1, 255)
        expected[dn == 0] = 0
        assert (tci[channel] == expected).all(), band
    assert (tci == 0).any()
