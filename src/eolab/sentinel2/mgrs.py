"""MGRS tile id -> UTM CRS and Sentinel-2 tile origin.

A Sentinel-2 tile is a 109 800 m square whose upper-left corner is the MGRS 100 km square's
north-west corner snapped outward to the 60 m pixel grid. The 60 m grid is anchored at the UTM
false origin: easting 0, and northing 0 in the north, 10 000 000 m (the equator) in the south
(checked against real tiles: 35VLH (300000, 6800040), 46UEU (499980, 5400000), 51CVP (399960,
1400020) — a plain ``ceil(N / 60) * 60`` would give 1400040 for the southern tile).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from eolab.core.errors import ConfigError

#: Latitude bands C..X (no I, O), 8 degrees each from -80 (X is 12 degrees).
LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"
#: 100 km column letters, by ``zone % 3`` (sets 1, 2, 3 repeat every three zones).
COLUMN_SETS = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}
#: 100 km row letters, repeating every 2 000 km.
ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"
SQUARE = 100_000.0
ROW_CYCLE = 2_000_000.0
FALSE_NORTHING_SOUTH = 10_000_000.0
#: Real Sentinel-2 tile size (m): 10980 px x 10 m.
TILE_SIZE_M = 109_800.0
PIXEL_GRID_M = 60.0

_TILE_RE = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")


@dataclass(frozen=True)
class TileGrid:
    """The UTM georeferencing of one Sentinel-2 tile (upper-left corner of the 10 m grid)."""

    tile: str
    zone: int
    hemisphere: str  # "N" or "S"
    epsg: int
    ulx: float
    uly: float

    @property
    def crs(self) -> str:
        """The CRS as an ``EPSG:nnnnn`` string."""
        return f"EPSG:{self.epsg}"


def parse_tile(tile: str) -> tuple[int, str, str, str]:
    """Split an MGRS tile id (``35VLH``, ``T35VLH`` accepted) into zone, band, column, row."""
    text = str(tile).strip().upper()
    if text.startswith("T") and len(text) in (6, 7) and text[1].isdigit():
        text = text[1:]
    match = _TILE_RE.match(text)
    if not match:
        raise ConfigError(f"MGRS tile id {tile!r}: expected zone digits, band, column, row (35VLH)")
    zone = int(match.group(1))
    if not 1 <= zone <= 60:
        raise ConfigError(f"MGRS tile id {tile!r}: UTM zone {zone} is not in 1..60")
    band, column, row = match.group(2), match.group(3), match.group(4)
    if column not in COLUMN_SETS[zone % 3]:
        raise ConfigError(
            f"MGRS tile id {tile!r}: column letter {column!r} does not exist in zone {zone} "
            f"(expected one of {COLUMN_SETS[zone % 3]})"
        )
    return zone, band, column, row


def tile_grid(tile: str) -> TileGrid:
    """The EPSG code and upper-left corner (m) of a Sentinel-2 tile from its MGRS id."""
    zone, band, column, row = parse_tile(tile)
    north = band >= "N"
    epsg = (32600 if north else 32700) + zone
    west = (COLUMN_SETS[zone % 3].index(column) + 1) * SQUARE
    north_edge = _square_south_edge(zone, band, row, epsg) + SQUARE
    anchor = 0.0 if north else FALSE_NORTHING_SOUTH
    ulx = math.floor(west / PIXEL_GRID_M) * PIXEL_GRID_M
    uly = anchor + math.ceil((north_edge - anchor) / PIXEL_GRID_M) * PIXEL_GRID_M
    return TileGrid(
        tile=f"{zone:02d}{band}{column}{row}",
        zone=zone,
        hemisphere="N" if north else "S",
        epsg=epsg,
        ulx=float(ulx),
        uly=float(uly),
    )


def _square_south_edge(zone: int, band: str, row: str, epsg: int) -> float:
    """Northing of the 100 km square's south edge, choosing the 2 000 km cycle by latitude band.

    The row letter repeats every 2 000 km; the right repetition is the first one whose south
    edge lies at or above the band's southern edge (at the central meridian) minus a slack of
    150 km (a square may start below the band and still overlap it).
    """
    offset = 0 if zone % 2 == 1 else 5  # even zones start at F at northing 0
    base = ((ROW_LETTERS.index(row) - offset) % len(ROW_LETTERS)) * SQUARE
    floor_northing = _band_south_northing(zone, band, epsg) - 1.5 * SQUARE
    cycles = math.ceil((floor_northing - base) / ROW_CYCLE)
    return base + max(cycles, 0) * ROW_CYCLE


@functools.lru_cache(maxsize=256)
def _band_south_northing(zone: int, band: str, epsg: int) -> float:
    """UTM northing of a latitude band's southern edge at the zone's central meridian."""
    from pyproj import Transformer

    lat = -80.0 + 8.0 * LAT_BANDS.index(band)
    lon = -183.0 + 6.0 * zone
    transformer = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    _, northing = transformer.transform(lon, lat)
    return float(northing)
