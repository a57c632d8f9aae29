"""The SAFE reader on the real product sample (baseline 05.09, band JP2s are empty stubs)."""

from __future__ import annotations

import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eolab.core.errors import InputError
from eolab.sentinel2.mgrs import tile_grid
from eolab.sentinel2.products import product_paths
from eolab.sentinel2.safe import BANDS, read_safe, sha3_256, to_datetime64

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def real_safe(samples, tmp_path_factory) -> Path:
    archive = next((samples / "s2-l1c").glob("*.SAFE.zip"))
    root = tmp_path_factory.mktemp("real-safe")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root)
    return next(root.glob("*.SAFE"))


def test_names_times_and_orbit(real_safe):
    p = read_safe(real_safe)
    # The folder name in the zip is truncated; PRODUCT_URI is authoritative.
    assert real_safe.name != p.product_uri
    assert p.id == "S2A_MSIL1C_20230216T044851_N0509_R076_T46UEU_20230216T063628"
    assert p.product_uri == p.id + ".SAFE"
    assert (p.mission, p.tile, p.spacecraft) == ("S2A", "46UEU", "Sentinel-2A")
    assert p.datatake_start == datetime(2023, 2, 16, 4, 48, 51, 24000, tzinfo=UTC)
    # MTD_TL has microseconds (04:55:06.266543); the reader keeps milliseconds.
    assert p.sensing_time == datetime(2023, 2, 16, 4, 55, 6, 266000, tzinfo=UTC)
    assert p.generation_time == datetime(2023, 2, 16, 6, 36, 28, tzinfo=UTC)
    assert p.baseline == "05.09"
    assert (p.relative_orbit, p.absolute_orbit, p.orbit_direction) == (76, 39970, "DESCENDING")
    assert p.cloud_cover == pytest.approx(7.07566663680612)
    assert len(p.footprint) == 5 and p.footprint[0] == p.footprint[-1]


def test_radiometry_and_band_order(real_safe):
    p = read_safe(real_safe)
    assert p.quantification_value == 10000
    assert list(p.band_ids.values()) == list(BANDS)  # Spectral_Information bandId order
    assert p.radio_offsets == {band: -1000 for band in BANDS}
    assert p.special_values == {"NODATA": 0, "SATURATED": 65535}
    assert p.scale_offset("B02") == (0.0001, -0.1)  # as CDSE's raster:scale / raster:offset
    assert str(to_datetime64(p.sensing_time)) == "2023-02-16T04:55:06.266"


def test_georeferencing_matches_mgrs(real_safe):
    p = read_safe(real_safe)
    grid = tile_grid(p.tile)
    assert p.epsg == grid.epsg == 32646
    for res, size in ((10, 10980), (20, 5490), (60, 1830)):
        geo = p.geoposition(res)
        assert (geo.ulx, geo.uly, geo.xdim, geo.ydim) == (grid.ulx, grid.uly, res, -res)
        assert geo.shape == (size, size)
        assert tuple(p.transform(res))[:6] == (res, 0, grid.ulx, 0, -res, grid.uly)
    assert p.geoposition("20m") == p.geoposition(20)


def test_files(real_safe):
    p = read_safe(real_safe)
    assert p.granule_dir.name == "L1C_T46UEU_A039970_20230216T045412"
    paths = p.band_paths()
    assert list(paths) == list(BANDS)
    assert paths["B8A"].name == "T46UEU_20230216T044851_B8A.jp2"
    assert p.band_path("TCI").name.endswith("_TCI.jp2")
    assert p.cloud_mask_path == p.granule_dir / "QI_DATA" / "MSK_CLASSI_B00.jp2"


def test_cloud_mask_is_three_uint8_layers_at_60m(real_safe):
    p = read_safe(real_safe)
    with rasterio.open(p.cloud_mask_path) as src:
        assert src.count == 3 and set(src.dtypes) == {"uint8"}
        assert src.transform == p.transform(60)
        assert src.crs.to_epsg() == p.epsg
        opaque = src.read(1)
    # The metadata's cloud percentage is the opaque-cloud layer's share of the tile.
    assert 100 * float(np.mean(opaque > 0)) == pytest.approx(p.cloud_cover, abs=1e-6)


def test_manifest_checksums(real_safe):
    p = read_safe(real_safe)
    entries = p.manifest_files()
    assert len(entries) == 59 and all(e.sha3_256 == e.sha3_256.lower() for e in entries)
    checked = 0
    for e in entries:
        path = p.path / e.href
        if path.stat().st_size == 0:  # band stubs in the sample
            continue
        assert path.stat().st_size == e.size, e.href
        assert sha3_256(path) == e.sha3_256, e.href
        checked += 1
    assert checked == 45


def test_missing_and_corrupt_metadata(real_safe, tmp_path):
    copy = tmp_path / real_safe.name
    shutil.copytree(real_safe, copy)
    tl = next(copy.glob("GRANULE/*/MTD_TL.xml"))
    tl.write_text(tl.read_text()[:5000])
    with pytest.raises(InputError, match="MTD_TL.xml: corrupt XML"):
        read_safe(copy)
    (copy / "MTD_MSIL1C.xml").unlink()
    with pytest.raises(InputError, match="MTD_MSIL1C.xml: file not found"):
        read_safe(copy)


def _element_paths(path: Path) -> set[str]:
    """Every root-to-element path of local names (namespace prefixes and URIs ignored)."""
    import xml.etree.ElementTree as ET

    found = set()

    def walk(elem, prefix: str) -> None:
        here = f"{prefix}/{elem.tag.rsplit('}', 1)[-1]}"
        found.add(here)
        for child in elem:
            walk(child, here)

    walk(ET.parse(path).getroot(), "")
    return found


@pytest.mark.parametrize(
    ("pattern", "complete"),
    [
        ("MTD_MSIL1C.xml", True),
        ("GRANULE/*/MTD_TL.xml", True),
        ("manifest.safe", False),
        ("INSPIRE.xml", False),
        ("DATASTRIP/*/MTD_DS.xml", False),
        ("GRANULE/*/QI_DATA/GENERAL_QUALITY.xml", False),
    ],
)
def test_fixture_xml_has_the_real_structure(real_safe, s2_products, pattern, complete):
    """Fixture documents use only element paths of the real ones; the two metadata files the
    readers use (product and tile) have every element path of the real ones."""
    real = _element_paths(next(real_safe.glob(pattern)))
    for product in product_paths(s2_products):
        fixture = _element_paths(next(product.glob(pattern)))
        assert fixture <= real, sorted(fixture - real)
        if complete:
            assert fixture == real, sorted(real - fixture)


def test_fixture_tree_matches_the_real_tree(real_safe, s2_products):
    """Same files, with names generalised over tile, dates and orbit numbers."""
    import re

    def shape(root: Path) -> list[str]:
        rels = [f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file()]
        return sorted(re.sub(r"\d", "9", re.sub(r"T\d\d[A-Z]{3}", "Tzzzzz", r)) for r in rels)

    assert shape(product_paths(s2_products)[0]) == shape(real_safe)
