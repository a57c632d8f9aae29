"""MGRS tile id -> UTM EPSG code and Sentinel-2 tile origin."""

from __future__ import annotations

import json

import pytest

from eolab.core.errors import ConfigError
from eolab.sentinel2.mgrs import TILE_SIZE_M, tile_grid


@pytest.mark.parametrize(
    ("tile", "epsg", "ulx", "uly"),
    [
        ("35VLH", 32635, 300000.0, 6800040.0),  # FORMATS.md
        ("46UEU", 32646, 499980.0, 5400000.0),  # the real SAFE sample's MTD_TL.xml
        ("31UDQ", 32631, 399960.0, 5500020.0),
        ("18STJ", 32618, 199980.0, 4400040.0),
    ],
)
def test_known_tiles(tile, epsg, ulx, uly):
    grid = tile_grid(tile)
    assert (grid.epsg, grid.ulx, grid.uly) == (epsg, ulx, uly)
    assert grid.hemisphere == "N"
    assert grid.crs == f"EPSG:{epsg}"


def test_southern_tile_matches_real_cdse_item(samples):
    """51CVP: EPSG and origin as the real CDSE item's band assets say (equator-anchored grid)."""
    item = json.loads(next((samples / "cdse").glob("*51CVP*.json")).read_text())
    asset = item["assets"]["B02"]
    xres, _, x0, _, yres, y0 = asset["proj:transform"][:6]
    grid = tile_grid("51CVP")
    assert f"EPSG:{grid.epsg}" == asset["proj:code"] == "EPSG:32751"
    assert grid.hemisphere == "S"
    assert (grid.ulx, grid.uly) == (x0, y0)
    assert asset["proj:shape"][0] * xres == TILE_SIZE_M


def test_origin_on_60m_grid_and_prefix_accepted():
    for tile in ("35VLH", "51CVP", "55HBU", "01CCV", "60XWG"):
        grid = tile_grid(tile)
        assert grid.ulx % 60 == 0
        anchor = 0 if grid.hemisphere == "N" else 10_000_000
        assert (grid.uly - anchor) % 60 == 0
    assert tile_grid("T35VLH") == tile_grid("35vlh")


@pytest.mark.parametrize(
    "bad", ["", "35", "35VL", "99VLH", "00VLH", "35ILH", "35VAH", "35VLW", "x"]
)
def test_bad_ids_name_the_id(bad):
    with pytest.raises(ConfigError, match=repr(bad).replace("(", r"\(")):
        tile_grid(bad)
