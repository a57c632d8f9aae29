"""Chip index: table columns, WGS84 geometry, per-sensor hooks, GeoParquet read by geopandas and
DuckDB, resume."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer

from eolab.chips.index import (
    chip_table,
    grid_of,
    index_item,
    index_items,
    index_settings,
    load_items,
    write_index,
)
from eolab.chips.sensors import (
    ChipStatistics,
    Sentinel1Statistics,
    Sentinel2L1CStatistics,
    Sentinel2L2AStatistics,
    detect_sensor,
    statistics_for,
)
from eolab.chips.stats import ChipGrid
from eolab.core.errors import InputError

NORTH = ("EPSG:32635", 300000.0, 6800040.0)
SOUTH = ("EPSG:32751", 399960.0, 1400020.0)
WHEN = dt.datetime(2024, 2, 21, 9, 50, 29, 24000, tzinfo=dt.UTC)


def write_tif(path, data: np.ndarray, res: float, origin, nodata=None):
    crs, x0, y0 = origin
    data = data if data.ndim == 3 else data[None]
    profile = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=Affine(res, 0, x0, 0, -res, y0),
        nodata=nodata,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path)


def make_item(item_id, origin, size10: int, assets: dict[str, str], **props) -> pystac.Item:
    crs, x0, y0 = origin
    item = pystac.Item(item_id, None, None, WHEN, properties=dict(props))
    item.properties |= {
        "proj:code": crs,
        "proj:shape": [size10, size10],
        "proj:transform": [10, 0, x0, 0, -10, y0],
    }
    for key, href in assets.items():
        item.add_asset(key, pystac.Asset(href))
    return item


def test_table_columns_geometry_and_nodata_filter():
    crs, x0, y0 = NORTH
    grid = ChipGrid((366, 366), Affine(10, 0, x0, 0, -10, y0), 64, crs)
    nodata = np.linspace(0, 1, grid.count)
    cloud = np.linspace(1, 0, grid.count)
    table = chip_table(
        "ITEM", WHEN, "sentinel-2-l1c", grid, {"cloud": cloud, "nodata": nodata}, 0.5
    )
    assert grid.count == 25
    assert len(table) == int((nodata <= 0.5).sum()) == 13
    assert list(table.columns[:6]) == [
        "chipid",
        "date",
        "chip_index_x",
        "chip_index_y",
        "cloud_cover_percentage",
        "nodata_percentage",
    ]
    assert {"platform", "item_id", "native_crs", "native_xmin", "geometry"} <= set(table.columns)
    assert table.chipid.iloc[7] == f"ITEM-{table.chip_index_x.iloc[7]}-{table.chip_index_y.iloc[7]}"
    assert table.date.iloc[0] == dt.date(2024, 2, 21)
    assert (table.nodata_percentage <= 0.5).all()
    np.testing.assert_allclose(table.cloud_cover_percentage, cloud[:13].astype(np.float32))
    assert table.crs.to_epsg() == 4326
    assert table.datetime.iloc[0] == WHEN


@pytest.mark.parametrize("origin", [NORTH, SOUTH], ids=["35VLH", "51CVP"])
def test_full_size_geometry_is_corner_exact_in_wgs84(origin):
    crs, x0, y0 = origin
    grid = ChipGrid((10980, 10980), Affine(10, 0, x0, 0, -10, y0), 256, crs)
    zero = np.zeros(grid.count)
    table = chip_table("T", WHEN, "p", grid, {"cloud": zero, "nodata": zero}, 0.5)
    assert len(table) == 42 * 42
    to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    last = table.iloc[-1]
    assert (last.chip_index_x, last.chip_index_y) == (41, 41)
    corner = to_wgs.transform(last.native_xmax, last.native_ymin)
    ring = np.asarray(last.geometry.exterior.coords)
    np.testing.assert_allclose(ring[1], corner, atol=1e-9)
    lat_sign = 1 if origin is NORTH else -1
    assert np.sign(ring[:, 1]).tolist() == [lat_sign] * 5
    # Neighbouring chips share edges; chips cover the grid without overlapping.
    polys = table.geometry.values
    assert shapely.area(shapely.intersection(polys[0], polys[1])) < 1e-12
    assert shapely.touches(polys[0], polys[1])
    assert all(shapely.is_valid(polys))
    # Centre of each polygon is the transformed chip centre (within a fraction of a metre).
    cx = (table.native_xmin + table.native_xmax) / 2
    cy = (table.native_ymin + table.native_ymax) / 2
    lon, lat = to_wgs.transform(cx.values, cy.values)
    assert shapely.contains_xy(polys, lon, lat).all()


def test_l2a_scl_hook_equals_direct_counts(tmp_path):
    rng = np.random.default_rng(3)
    scl = rng.integers(0, 12, size=(183, 183), dtype=np.uint8)  # 20 m for a 366 px tile
    href = write_tif(tmp_path / "scl.tif", scl, 20, NORTH)
    item = make_item("S2B_MSIL2A_X", NORTH, 366, {"SCL": href}, constellation="sentinel-2")
    assert detect_sensor(item) == "sentinel-2-l2a"
    table = index_item(item, chip_size=64, max_nodata=1.0)
    fine = np.repeat(np.repeat(scl, 2, 0), 2, 1)
    for row in table.itertuples():
        chip = fine[
            row.chip_index_y * 64 : (row.chip_index_y + 1) * 64,
            row.chip_index_x * 64 : (row.chip_index_x + 1) * 64,
        ]
        assert row.cloud_cover_percentage == pytest.approx(
            np.isin(chip, [1, 3, 8, 9, 10]).mean(), abs=1e-6
        )
        assert row.nodata_percentage == pytest.approx((chip == 0).mean(), abs=1e-6)
    assert len(table) == 25 and table.platform.iloc[0] == "sentinel-2-l2a"


def test_l1c_hook_uses_msk_classi_layers_and_band_zeros(tmp_path):
    rng = np.random.default_rng(4)
    classi = (rng.random((3, 61, 61)) < 0.3).astype(np.uint8)
    data60 = rng.integers(1, 5000, size=(3, 61, 61), dtype=np.uint16)
    data60[:, :, :30] = 0  # left half nodata
    item = make_item(
        "S2B_MSIL1C_X",
        NORTH,
        366,
        {
            "MSK_CLASSI_B00": write_tif(tmp_path / "classi.tif", classi, 60, NORTH),
            "60m": write_tif(tmp_path / "60m.tif", data60, 60, NORTH, nodata=0),
        },
        platform="sentinel-2b",
        **{"processing:level": "L1C"},
    )
    assert isinstance(statistics_for(item), Sentinel2L1CStatistics)
    table = index_item(item, chip_size=64, max_nodata=0.5)
    fine = lambda a: np.repeat(np.repeat(a, 6, 0), 6, 1)  # noqa: E731
    cloud = fine((classi[0] > 0) | (classi[1] > 0))
    snow = fine(classi[2] > 0)
    nodata = fine(data60[0] == 0)
    assert table.attrs["eolab_chips"]["chips_total"] == 25
    kept = 0
    for y in range(5):
        for x in range(5):
            window = np.s_[y * 64 : (y + 1) * 64, x * 64 : (x + 1) * 64]
            row = table[(table.chip_index_x == x) & (table.chip_index_y == y)]
            if nodata[window].mean() > 0.5:
                assert row.empty
                continue
            kept += 1
            assert row.cloud_cover_percentage.item() == pytest.approx(cloud[window].mean(), 1e-6)
            assert row.snow_ice_percentage.item() == pytest.approx(snow[window].mean(), 1e-6)
            assert row.nodata_percentage.item() == pytest.approx(nodata[window].mean(), 1e-6)
    assert kept == len(table) and 0 < kept < 25


def test_sentinel1_nodata_mask_and_no_statistics_default(tmp_path):
    vv = np.full((366, 366), -12.5, dtype=np.float32)
    vv[:64, :] = np.nan
    vv[64:128, :64] = 0  # chip (0, 1): all nodata
    vv[64:96, 64:128] = 0  # chip (1, 1): half nodata, kept
    item = make_item(
        "S1A_IW_GRDH_X",
        NORTH,
        366,
        {"vv": write_tif(tmp_path / "vv.tif", vv, 10, NORTH)},
        constellation="sentinel-1",
    )
    assert isinstance(statistics_for(item), Sentinel1Statistics)
    table = index_item(item, chip_size=64, max_nodata=0.5)
    assert len(table) == 25 - 5 - 1  # the first chip row is all NaN, chip (0, 1) all zeros
    at = lambda x, y: table[(table.chip_index_x == x) & (table.chip_index_y == y)]  # noqa: E731
    assert at(0, 1).empty
    assert at(1, 1).nodata_percentage.item() == 0.5
    assert at(2, 1).nodata_percentage.item() == 0.0
    assert (table.cloud_cover_percentage == 0).all()

    plain = make_item("OTHER", NORTH, 366, {})
    assert type(statistics_for(plain)) is ChipStatistics
    none = index_item(plain, chip_size=64)
    assert len(none) == 25
    assert (none.nodata_percentage == 0).all() and none.platform.iloc[0] == "unknown"


def test_missing_mask_asset_is_a_clear_error():
    item = make_item("S2B_MSIL2A_Y", NORTH, 366, {}, constellation="sentinel-2")
    with pytest.raises(InputError, match="S2B_MSIL2A_Y.*SCL"):
        index_item(item, chip_size=64, statistics=Sentinel2L2AStatistics())
    with pytest.raises(InputError, match="unknown sensor"):
        statistics_for(item, "landsat")


def test_grid_from_finest_asset_when_item_has_no_proj_fields():
    item = pystac.Item("A", None, None, WHEN, properties={"proj:code": "EPSG:32635"})
    for res, n in ((60, 61), (10, 366), (20, 183)):
        item.add_asset(
            f"{res}m",
            pystac.Asset(
                f"{res}.tif",
                extra_fields={"proj:shape": [n, n], "proj:transform": [res, 0, 0, 0, -res, 0]},
            ),
        )
    grid = grid_of(item, 64)
    assert grid.shape == (366, 366) and grid.transform.a == 10 and grid.crs == "EPSG:32635"


def test_geoparquet_round_trip_geopandas_duckdb_and_resume(tmp_path):
    rng = np.random.default_rng(5)
    scl = rng.integers(0, 12, size=(183, 183), dtype=np.uint8)
    href = write_tif(tmp_path / "scl.tif", scl, 20, SOUTH)
    item = make_item("S2A_MSIL2A_Z", SOUTH, 366, {"SCL": href}, constellation="sentinel-2")
    item_path = tmp_path / "item.json"
    pystac.write_file(item, dest_href=str(item_path), include_self_link=False)
    [item] = load_items([item_path])
    out = tmp_path / "index"
    [path] = index_items([item], out, chip_size=64, max_nodata=0.5, progress=False)
    assert path == out / "S2A_MSIL2A_Z.parquet"

    back = gpd.read_parquet(path)
    direct = index_item(item, chip_size=64, max_nodata=0.5)
    assert back.crs.to_epsg() == 4326
    assert "bbox" not in back.columns  # geopandas hides the covering column
    assert back.equals(direct)
    assert index_settings(path)["chip_size"] == 64

    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT chipid, cloud_cover_percentage, ST_AsText(geometry) FROM read_parquet('{path}')"
        " ORDER BY chip_index_y, chip_index_x"
    ).fetchall()
    assert [r[0] for r in rows] == direct.chipid.tolist()
    assert rows[0][2] == direct.geometry.iloc[0].wkt
    assert con.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0] == len(direct)

    # Resume: same settings keep the file; other settings rebuild it.
    mtime = path.stat().st_mtime_ns
    index_items([item], out, chip_size=64, max_nodata=0.5, progress=False)
    assert path.stat().st_mtime_ns == mtime
    index_items([item], out, chip_size=32, max_nodata=0.5, progress=False)
    assert index_settings(path)["chip_size"] == 32


def test_write_index_is_atomic_on_failure(tmp_path):
    crs, x0, y0 = NORTH
    grid = ChipGrid((128, 128), Affine(10, 0, x0, 0, -10, y0), 64, crs)
    zero = np.zeros(grid.count)
    table = chip_table("I", WHEN, "p", grid, {"cloud": zero, "nodata": zero}, 0.5)
    path = write_index(table, tmp_path / "i.parquet")
    table["bad"] = [object()] * len(table)  # not serialisable
    with pytest.raises(Exception):  # noqa: B017
        write_index(table, path)
    assert len(gpd.read_parquet(path)) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["i.parquet"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_in_classes_equals_isin(dtype):
    from eolab.chips.stats import in_classes

    values = np.arange(-3, 300).astype(dtype) if dtype != np.uint8 else np.arange(256, dtype=dtype)
    grid = np.random.default_rng(1).choice(values, size=(300, 257))  # split into row bands
    for classes in ((1, 3, 8, 9, 10), (0,), (255, 254, 7), (2, 3, 4, 5)):
        np.testing.assert_array_equal(in_classes(values, classes), np.isin(values, classes))
        np.testing.assert_array_equal(in_classes(grid, classes), np.isin(grid, classes))
