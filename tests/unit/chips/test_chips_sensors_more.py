"""Chip statistics for Landsat Collection 2 Level-2 (QA_PIXEL bit flags, each provider's asset
keys) and aerial imagery (NAIP, LINZ: no statistics, optional resampling of the chip grid).

Items are written as the providers publish them (``eolab.fixtures.stac_items``) over real
GeoTIFFs; the per-chip fractions are checked against a plain per-pixel Python loop."""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
from affine import Affine

from eolab.chips.index import index_item, index_items, index_settings
from eolab.chips.sensors import SENSORS, detect_sensor, statistics_for
from eolab.cli import main
from eolab.core.errors import InputError
from eolab.fixtures.stac_items import (
    LANDSAT_PROVIDERS,
    landsat_c2_l2_item,
    linz_item,
    naip_item,
    qa_pixel,
    write_geotiff,
)

SHAPE = (224, 288)  # 7 x 9 chips of 32 px, no partial strip; a second case below has one
ORIGIN = Affine(30, 0, 499980, 0, -30, 4200000)
CHIP = 32
# column -> the QA_PIXEL bits whose union it counts
BITS = {
    "cloud_cover_percentage": (1, 2, 3, 4),
    "nodata_percentage": (0,),
    "dilated_cloud_percentage": (1,),
    "cirrus_percentage": (2,),
    "cloud_shadow_percentage": (4,),
}


def loop_fractions(qa: np.ndarray, bits: tuple[int, ...], chip: int) -> dict[tuple, float]:
    """The oracle: every pixel of every full chip, tested bit by bit in plain Python."""
    out = {}
    values = qa.tolist()
    for cy in range(len(values) // chip):
        for cx in range(len(values[0]) // chip):
            hits = 0
            for r in range(cy * chip, (cy + 1) * chip):
                row = values[r]
                for c in range(cx * chip, (cx + 1) * chip):
                    if any((row[c] >> b) & 1 for b in bits):
                        hits += 1
            out[(cx, cy)] = hits / chip**2
    return out


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("landsat")
    qa = qa_pixel(SHAPE, seed=7)
    name = "LC09_L2SP_047027_20230615_20230617_02_T1_QA_PIXEL.TIF"
    return qa, write_geotiff(folder / name, qa, ORIGIN, "EPSG:32610", nodata=1)


@pytest.fixture(scope="module")
def oracle(qa_file):
    qa, _ = qa_file
    return {column: loop_fractions(qa, bits, CHIP) for column, bits in BITS.items()}


def landsat(provider: str, qa_href: str, shape=SHAPE, transform=ORIGIN) -> pystac.Item:
    return pystac.Item.from_dict(landsat_c2_l2_item(provider, qa_href, shape, transform))


def test_fixture_has_every_flag_and_fill_is_value_one(qa_file):
    qa, _ = qa_file
    for bit in range(8):
        share = ((qa >> bit) & 1).mean()
        assert 0.005 < share < 0.9, f"bit {bit} covers {share:.3f}"
    fill = (qa & 1) == 1
    assert (qa[fill] == 1).all()  # USGS writes fill as exactly 1


@pytest.mark.parametrize("provider", LANDSAT_PROVIDERS)
def test_landsat_fractions_equal_per_pixel_loop_for_every_provider(provider, qa_file, oracle):
    _, href = qa_file
    item = landsat(provider, href)
    assert detect_sensor(item) == "landsat-c2-l2"
    table = index_item(item, chip_size=CHIP, max_nodata=1.0)
    assert len(table) == (SHAPE[0] // CHIP) * (SHAPE[1] // CHIP)
    assert set(BITS) <= set(table.columns)
    assert (table["platform"] == "landsat-c2-l2").all()
    assert table.attrs["eolab_chips"]["grid"]["crs"] == "EPSG:32610"
    for column, want in oracle.items():
        got = {
            (int(x), int(y)): float(v)
            for x, y, v in zip(table.chip_index_x, table.chip_index_y, table[column], strict=True)
        }
        assert got.keys() == want.keys()
        np.testing.assert_allclose(
            [got[k] for k in sorted(want)], [want[k] for k in sorted(want)], rtol=0, atol=1e-6
        )
    # the data really varies: some chips all fill, some clear, clouds everywhere in between
    nodata = table["nodata_percentage"].to_numpy()
    assert nodata.max() == 1.0 and nodata.min() == 0.0
    assert 0.1 < table["cloud_cover_percentage"].std()


def test_landsat_max_nodata_drops_fill_chips(qa_file, oracle):
    _, href = qa_file
    table = index_item(landsat("planetary-computer", href), chip_size=CHIP, max_nodata=0.25)
    kept = {(int(x), int(y)) for x, y in zip(table.chip_index_x, table.chip_index_y, strict=True)}
    want = {k for k, v in oracle["nodata_percentage"].items() if v <= 0.25}
    assert kept == want and 0 < len(want) < len(oracle["nodata_percentage"])


def test_landsat_partial_strip_is_not_indexed(tmp_path):
    qa = qa_pixel((100, 70), seed=3)
    href = write_geotiff(tmp_path / "qa.tif", qa, ORIGIN, "EPSG:32610")
    table = index_item(landsat("earth-search", href, (100, 70)), chip_size=CHIP, max_nodata=1.0)
    assert len(table) == 3 * 2
    want = loop_fractions(qa, BITS["cloud_cover_percentage"], CHIP)
    got = dict(
        zip(
            zip(table.chip_index_x.astype(int), table.chip_index_y.astype(int), strict=True),
            table["cloud_cover_percentage"],
            strict=True,
        )
    )
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)


def test_landsat_without_qa_band_names_the_item_and_its_keys(qa_file):
    _, href = qa_file
    doc = landsat_c2_l2_item("planetary-computer", href, SHAPE, ORIGIN)
    doc["assets"].pop("qa_pixel")
    item = pystac.Item.from_dict(doc)
    with pytest.raises(InputError) as err:
        index_item(item, chip_size=CHIP)
    message = str(err.value)
    assert "LC09_L2SP_047027_20230615_02_T1" in message
    assert "qa_pixel" in message and "'red'" in message and "'nir08'" in message


@pytest.mark.parametrize(
    ("make", "sensor", "res", "shape"),
    [(naip_item, "naip", 0.6, (500, 400)), (linz_item, "linz", 0.075, (800, 1000))],
)
def test_aerial_items_count_every_chip(tmp_path, make, sensor, res, shape):
    transform = Affine(res, 0, 1_750_000.0, 0, -res, 5_430_000.0)
    image = np.random.default_rng(1).integers(0, 255, (4, *shape), dtype=np.uint8)
    href = write_geotiff(tmp_path / "image.tif", image, transform, "EPSG:2193")
    item = pystac.Item.from_dict(make(href, shape, transform, epsg=2193))
    assert detect_sensor(item) == sensor
    table = index_item(item, chip_size=50, max_nodata=0.0)
    meta = table.attrs["eolab_chips"]
    if sensor == "naip":  # the item's own grid
        assert meta["grid"]["shape"] == list(shape) and meta["resolution"] is None
    else:  # LINZ at 30 cm: 800 x 0.075 m = 60 m = 200 px
        assert meta["grid"]["shape"] == [200, 250] and meta["resolution"] == 0.3
        assert meta["grid"]["transform"][0] == 0.3
    ny, nx = meta["grid"]["shape"][0] // 50, meta["grid"]["shape"][1] // 50
    assert len(table) == meta["chips_total"] == ny * nx
    assert (table["cloud_cover_percentage"] == 0).all()
    assert (table["nodata_percentage"] == 0).all()
    chip_m = 50 * meta["grid"]["transform"][0]
    width = table["native_xmax"] - table["native_xmin"]
    np.testing.assert_allclose(width, chip_m)
    assert table["native_xmin"].min() == transform.c
    assert table["native_ymax"].max() == transform.f


def test_aerial_resolution_option_resamples_and_rebuilds_the_index(tmp_path):
    shape, res = (500, 400), 0.6
    transform = Affine(res, 0, 500_000.0, 0, -res, 3_000_000.0)
    href = write_geotiff(
        tmp_path / "naip.tif", np.zeros((4, *shape), np.uint8), transform, "EPSG:26917"
    )
    item = pystac.Item.from_dict(naip_item(href, shape, transform))
    out = tmp_path / "index"
    (path,) = index_items([item], out, chip_size=100, progress=False)
    assert index_settings(path)["grid"]["shape"] == [500, 400]
    (path,) = index_items([item], out, chip_size=100, progress=False, resolution=0.3)
    settings = index_settings(path)
    assert settings["grid"]["shape"] == [1000, 800] and settings["chips_kept"] == 80


def test_resolution_is_refused_for_non_aerial_sensors(qa_file):
    _, href = qa_file
    with pytest.raises(InputError, match="aerial sensors only"):
        statistics_for(landsat("usgs", href), "auto", resolution=0.3)
    assert {"landsat-c2-l2", "naip", "linz", "aerial"} <= set(SENSORS)


def test_cli_index_accepts_landsat_and_reports_errors_on_one_line(tmp_path, qa_file, capsys):
    _, href = qa_file
    path = tmp_path / "item.json"
    path.write_text(json.dumps(landsat_c2_l2_item("usgs", href, SHAPE, ORIGIN)))
    main(["chips", "index", str(path), "--out", str(tmp_path / "ix"), "--sensor", "landsat-c2-l2",
          "--chip-size", str(CHIP)])  # fmt: skip
    assert "1 chip indexes" in capsys.readouterr().out
    written = index_settings(
        tmp_path / "ix" / "LC09_L2SP_047027_20230615_20230617_02_T1_SR.parquet"
    )
    assert written["sensor"] == "landsat-c2-l2"
    with pytest.raises(SystemExit) as exit_:
        main(["chips", "index", str(path), "--out", str(tmp_path / "iy"), "--resolution", "0.3"])
    assert exit_.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after tqdm's progress bar
    assert err.startswith("eolab: error: --resolution applies to aerial sensors only")
