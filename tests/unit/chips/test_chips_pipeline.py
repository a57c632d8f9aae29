"""Chips on converted fixture products: STAC items, index statistics against the SAFE masks,
chips from COG = Zarr = JP2 source, merge of a northern and a southern tile, pre-chipping, CLI."""

from __future__ import annotations

import hashlib
import json
import os
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from chips_data import CHIP, convert_tile, nearest_source, read_band
from pystac.extensions.raster import RasterExtension

from eolab.chips.chipper import Chipper
from eolab.chips.index import index_settings, load_items
from eolab.chips.items import write_root_catalog
from eolab.chips.merge import merge_indexes, read_index
from eolab.chips.prechip import BandStats, ChipFilter, prechip, select_chips
from eolab.core.errors import InputError
from eolab.sentinel2.safe import BAND_GROUPS, read_safe


@pytest.fixture(scope="module")
def north(tmp_path_factory, s2_products):
    return convert_tile(tmp_path_factory.mktemp("chips-north"), s2_products, "35VLH")


@pytest.fixture(scope="module")
def south(tmp_path_factory, s2_products_south):
    root = tmp_path_factory.mktemp("chips-south")
    return convert_tile(root, s2_products_south, "51CVP", zarr=False)


@pytest.fixture(scope="module")
def merged(tmp_path_factory, north, south):
    out = tmp_path_factory.mktemp("chips-merged") / "index"
    summary = merge_indexes([north.index_dir, south.index_dir], out)
    return out, summary


def safe_of(item: pystac.Item):
    link = next(link for link in item.links if link.rel == "derived_from")
    return read_safe(link.get_absolute_href())


def test_items_have_projection_file_and_raster_fields(north):
    items = load_items([north.collection])
    listing = json.loads(north.listing.read_text())
    assert sorted(i.id for i in items) == sorted(p["id"] for p in listing["products"])
    for item in items:
        safe = safe_of(item)
        assert item.properties["proj:code"] == safe.crs == "EPSG:32635"
        assert item.properties["grid:code"] == "MGRS-35VLH"
        assert item.datetime == safe.sensing_time
        for group, bands in BAND_GROUPS.items():
            asset = item.assets[group]
            path = asset.get_absolute_href()
            data = open(path, "rb").read()
            assert asset.extra_fields["file:size"] == len(data)
            assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
            geo = safe.geoposition(int(group[:-1]))
            assert asset.extra_fields["proj:shape"] == [geo.nrows, geo.ncols]
            assert asset.extra_fields["proj:transform"] == list(geo.transform)[:6]
            assert [b["name"] for b in asset.extra_fields["bands"]] == bands
            offset = safe.radio_offsets.get(bands[0], 0) / safe.quantification_value
            # raster v1.1 raster:bands, read as pystac's accessor (and odc-stac, stackstac) do
            for raster_band in RasterExtension.ext(asset).bands:
                assert raster_band.offset == pytest.approx(offset)
                assert raster_band.scale == pytest.approx(1e-4)
            assert not os.path.isabs(asset.to_dict()["href"])  # relative: the tree can move
        assert item.assets["MSK_CLASSI_B00"].get_absolute_href() == str(
            safe.cloud_mask_path.resolve()
        )


def test_root_catalog_reaches_every_item(north, south, tmp_path):
    catalog = write_root_catalog([north.collection, south.collection], tmp_path / "catalog.json")
    ids = {i.id for i in load_items([catalog])}
    assert len(ids) == 6 and {"35VLH", "51CVP"} == {i.split("_T")[1][:5] for i in ids}


def up6(mask: np.ndarray) -> np.ndarray:
    """A 60 m mask on the 10 m chip grid (nearest neighbour)."""
    return np.repeat(np.repeat(mask, 6, 0), 6, 1)


def test_index_statistics_equal_direct_computation_on_safe_masks(north):
    items = {i.id: i for i in load_items([north.collection])}
    for path in sorted(north.index_dir.glob("*.parquet")):
        index = gpd.read_parquet(path)
        item = items[index.item_id.iloc[0]]
        safe = safe_of(item)
        with rasterio.open(safe.cloud_mask_path) as src:
            classi = src.read()
        cloud = up6((classi[0] > 0) | (classi[1] > 0))
        nodata = up6(read_band(safe.band_path("B01")) == 0)
        settings = index_settings(path)
        assert settings["chips_total"] == 25 and settings["chip_size"] == CHIP
        expected = []
        for y in range(5):
            for x in range(5):
                window = np.s_[y * CHIP : (y + 1) * CHIP, x * CHIP : (x + 1) * CHIP]
                if nodata[window].mean() <= 0.5:
                    expected.append(
                        (f"{item.id}-{x}-{y}", cloud[window].mean(), nodata[window].mean())
                    )
        assert index.chipid.tolist() == [e[0] for e in expected]
        np.testing.assert_allclose(
            index.cloud_cover_percentage, [e[1] for e in expected], atol=1e-6
        )
        np.testing.assert_allclose(index.nodata_percentage, [e[2] for e in expected], atol=1e-6)
    all_rows = read_index(north.index_dir)
    assert all_rows.cloud_cover_percentage.std() > 0.05  # the fixtures do vary


def test_chips_from_cog_and_zarr_equal_the_jp2_source(north):
    index = read_index(north.index_dir)
    cog = Chipper(index, source="cog", items=[north.collection])
    cube = Chipper(index, source="zarr", zarr_store=north.zarr)
    items = {i.id: i for i in load_items([north.collection])}
    jp2s = {}
    with cog, cube:
        assert len(cog) == len(index) > 0
        for i, (a, b) in enumerate(zip(cog, cube, strict=True)):
            assert a.chipid == b.chipid == index.chipid.iloc[i]
            assert a.bands == b.bands
            assert a.pixels.shape == (13, CHIP, CHIP) and a.pixels.dtype == np.uint16
            np.testing.assert_array_equal(a.pixels, b.pixels)
            safe = safe_of(items[a.row["item_id"]])
            for k, band in enumerate(a.bands):
                key = (safe.id, band)
                if key not in jp2s:
                    with rasterio.open(safe.band_path(band)) as src:
                        jp2s[key] = src.read(1), src.transform
                jp2, transform = jp2s[key]
                np.testing.assert_array_equal(
                    a.pixels[k], nearest_source(a.row, 10.0, jp2, transform), err_msg=band
                )
    # Bands in wavelength order: B8A between B08 and B09.
    assert cog[0].bands == [
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B10",
        "B11",
        "B12",
    ]


def test_chips_at_20m_and_resolution_errors(north):
    index = read_index(north.index_dir)
    items = {i.id: i for i in load_items([north.collection])}
    with Chipper(index, source="cog", items=[north.collection], resolution=20) as chipper:
        chip = chipper[len(chipper) - 1]
        assert chip.pixels.shape == (13, CHIP // 2, CHIP // 2)
        assert chip.transform.a == 20
        safe = safe_of(items[chip.row["item_id"]])
        for band in ("B02", "B05", "B01"):
            with rasterio.open(safe.band_path(band)) as src:
                want = nearest_source(chip.row, 20.0, src.read(1), src.transform)
            np.testing.assert_array_equal(chip.pixels[chip.bands.index(band)], want)
    with Chipper(index, source="zarr", zarr_store=north.zarr, resolution=60) as chipper:
        with pytest.raises(InputError, match="not a whole number of 60 m pixels"):
            chipper[0]
    with pytest.raises(InputError, match="need the STAC items"):
        Chipper(index, source="cog")


def test_merge_two_tiles_into_partitioned_dataset(merged, north, south):
    out, summary = merged
    files = sorted(out.rglob("*.parquet"))
    assert len(files) == summary["items"] == 6
    for f in files:
        platform, item_id = f.relative_to(out).parts[:2]
        assert platform == "sentinel-2-l1c" and f.name == f"index_{item_id}.parquet"
    both = read_index(out)
    parts = [read_index(north.index_dir), read_index(south.index_dir)]
    assert len(both) == summary["chips"] == sum(len(p) for p in parts)
    assert set(both.native_crs) == {"EPSG:32635", "EPSG:32751"}
    south_rows = both[both.native_crs == "EPSG:32751"]
    assert (south_rows.geometry.bounds.maxy < -70).all()  # 51CVP lies near 73 degrees south
    assert not both.chipid.duplicated().any()

    with Chipper(both, source="zarr", zarr_store=[north.zarr]) as chipper:
        north_row = chipper.row_of(both[both.native_crs == "EPSG:32635"].chipid.iloc[0])
        assert chipper[north_row].pixels.shape == (13, CHIP, CHIP)
        with pytest.raises(InputError, match="no cube group 51CVP/2024"):
            chipper[chipper.row_of(south_rows.chipid.iloc[0])]

    duckdb = pytest.importorskip("duckdb")
    count, items = (
        duckdb.connect()
        .sql(
            f"SELECT count(*), count(DISTINCT item_id) FROM read_parquet('{out}/**/*.parquet', "
            "union_by_name=true)"
        )
        .fetchall()[0]
    )
    assert (count, items) == (len(both), 6)


def test_merge_duplicates_and_conflicts(north, tmp_path):
    one = sorted(north.index_dir.glob("*.parquet"))[0]
    summary = merge_indexes([north.index_dir, one], tmp_path / "twice")
    assert summary["items"] == 3  # the same item twice with equal rows is kept once
    changed = gpd.read_parquet(one)
    changed.loc[0, "cloud_cover_percentage"] = 0.123
    other = tmp_path / "other" / one.name
    other.parent.mkdir()
    changed.to_parquet(other)
    with pytest.raises(InputError, match="differs between"):
        merge_indexes([north.index_dir, other], tmp_path / "conflict")
    assert not (tmp_path / "conflict").exists()
    with pytest.raises(InputError, match="no such chip index"):
        merge_indexes([tmp_path / "missing"], tmp_path / "x")


def test_prechip_samples_without_replacement_and_respects_filters(merged, north, tmp_path):
    out, _ = merged
    index = read_index(out)
    filters = ChipFilter(max_cloud=0.6, max_nodata=0.1, platforms=("sentinel-2-l1c",))
    candidates = filters.apply(index)
    assert 0 < len(candidates) < len(index)
    picked = select_chips(index, filters, sample=10**6, seed=3)
    assert len(picked) == len(candidates) and not picked.chipid.duplicated().any()
    again = select_chips(index.sample(frac=1, random_state=1), filters, sample=7, seed=3)
    assert again.chipid.tolist() == select_chips(index, filters, 7, 3).chipid.tolist()

    north_only = index[index.native_crs == "EPSG:32635"]
    with Chipper(north_only, source="zarr", zarr_store=north.zarr) as chipper:
        manifest = prechip(
            north_only,
            chipper,
            tmp_path / "pre",
            filters,
            sample=9,
            seed=5,
            batch_size=4,
            progress=False,
        )
    assert manifest["chips"] == min(9, len(filters.apply(north_only)))
    chosen = set()
    pixels = []
    for batch in manifest["batches"]:
        with np.load(tmp_path / "pre" / batch["file"]) as data:
            ids = data["chipid"].tolist()
            assert not chosen & set(ids)
            chosen |= set(ids)
            pixels.append(data["pixels"])
            assert data["bands"].tolist() == manifest["bands"]
    rows = north_only.set_index("chipid").loc[sorted(chosen)]
    assert (rows.cloud_cover_percentage <= 0.6).all() and (rows.nodata_percentage <= 0.1).all()
    assert sorted(chosen) == sorted(manifest["chipids"])
    # Per-band statistics over every chosen chip equal a direct computation.
    stack = np.concatenate(pixels).astype(np.float64)
    for k, band in enumerate(manifest["bands"]):
        values = stack[:, k][stack[:, k] != 0]
        stats = manifest["band_stats"][band]
        assert stats["count"] == values.size
        assert stats["mean"] == pytest.approx(values.mean())
        assert stats["std"] == pytest.approx(values.std())
        assert (stats["min"], stats["max"]) == (values.min(), values.max())

    # A rerun keeps finished batches; a changed seed rewrites them.
    first = tmp_path / "pre" / "batch_00000.npz"
    mtime = first.stat().st_mtime_ns
    with Chipper(north_only, source="zarr", zarr_store=north.zarr) as chipper:
        prechip(north_only, chipper, tmp_path / "pre", filters, 9, 5, 4, progress=False)
        assert first.stat().st_mtime_ns == mtime
        prechip(north_only, chipper, tmp_path / "pre", filters, 9, 6, 4, progress=False)
        smaller = prechip(north_only, chipper, tmp_path / "pre", filters, 3, 6, 4, progress=False)
    # a smaller selection leaves no batch of the larger one behind
    assert sorted(p.name for p in (tmp_path / "pre").glob("batch_*.npz")) == [
        b["file"] for b in smaller["batches"]
    ]
    with pytest.raises(InputError, match="no chip passes"):
        prechip(north_only, None, tmp_path / "none", ChipFilter(max_cloud=-1), 3)


def test_prechip_refuses_mixed_chip_sizes_and_band_sets(merged, tmp_path):
    index = read_index(merged[0]).sort_values("chipid").head(4).copy()
    bigger = index.index[-1]
    index.loc[bigger, "native_xmax"] += (
        index.loc[bigger, "native_xmax"] - index.loc[bigger, "native_xmin"]
    )
    with pytest.raises(InputError, match=r"differ in size \(.* m, .* m\).*one chip size"):
        prechip(index, None, tmp_path / "pre", ChipFilter(), 4, progress=False)
    assert not list((tmp_path / "pre").glob("batch_*.npz"))  # refused before any cut

    class TwoSensors:  # a chipper whose chips carry different band sets
        resolution = 10.0

        def chip(self, row):
            bands = ("B02", "B03") if row["chipid"] == first else ("B02",)
            return SimpleNamespace(
                chipid=row["chipid"], bands=bands, pixels=np.ones((len(bands), 2, 2))
            )

    same = index.drop(bigger)
    first = same.chipid.iloc[0]
    with pytest.raises(InputError, match="has bands .* one sensor at a time"):
        prechip(same, TwoSensors(), tmp_path / "pre2", ChipFilter(), 3, progress=False)


def test_band_stats_merge_equals_one_pass():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 50, size=(3, 2, 4, 4))
    b = rng.integers(0, 50, size=(5, 2, 4, 4))
    merged = BandStats.of(a).merge(BandStats.of(b))
    whole = BandStats.of(np.concatenate([a, b]))
    for field in ("count", "mean", "m2", "min", "max"):
        np.testing.assert_allclose(getattr(merged, field), getattr(whole, field))


def test_cli_index_merge_get_prechip(north, tmp_path, capsys):
    from eolab.cli import main

    stac = tmp_path / "stac"
    main(
        ["chips", "items", str(north.listing), "--products", str(north.manifest)]
        + ["--out", str(stac / "35VLH_2024")]
    )
    main(
        ["chips", "catalog", str(stac / "35VLH_2024" / "collection.json")]
        + ["--out", str(stac / "catalog.json")]
    )
    assert len(load_items([stac / "catalog.json"])) == 3
    main(
        [
            "chips",
            "index",
            str(north.collection),
            "--chip-size",
            "64",
            "--out",
            str(tmp_path / "idx"),
        ]
    )
    main(["chips", "merge", str(tmp_path / "idx"), "--out", str(tmp_path / "merged")])
    index = read_index(tmp_path / "merged")
    assert len(index) > 0 and set(index.chip_index_x) <= {0, 1}
    chipid = index.chipid.iloc[-1]
    main(
        [
            "chips",
            "get",
            str(tmp_path / "merged"),
            chipid,
            "--items",
            str(north.collection),
            "--out",
            str(tmp_path / "chip.npz"),
        ]
    )
    out = capsys.readouterr().out
    assert chipid in out and "(13, 64, 64)" in out
    with np.load(tmp_path / "chip.npz") as data:
        assert data["pixels"].shape == (13, 64, 64)
    main(
        [
            "chips",
            "prechip",
            str(tmp_path / "merged"),
            "--source",
            "zarr",
            "--zarr",
            str(north.zarr),
            "--sample",
            "3",
            "--out",
            str(tmp_path / "pre"),
        ]
    )
    manifest = json.loads((tmp_path / "pre" / "prechip.json").read_text())
    assert manifest["chips"] == min(3, len(index))
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "chips",
                "get",
                str(tmp_path / "merged"),
                "0",
                "--source",
                "zarr",
                "--zarr",
                str(north.zarr),
                "--resolution",
                "60",
            ]
        )
    assert exc.value.code == 1
    assert "eolab: error: chip" in capsys.readouterr().err


def test_chips_from_a_sharded_cube_equal_the_plain_cube(north, tmp_path):
    from eolab.sentinel2 import datacube
    from eolab.sentinel2.products import product_paths

    sharded = tmp_path / "sharded.zarr"
    spec = datacube.CubeSpec(shards=datacube.DEFAULT_SHARDS)
    datacube.to_zarr(sharded, product_paths(north.manifest), spec, progress=False)
    index = read_index(north.index_dir)
    plain = Chipper(index, source="zarr", zarr_store=north.zarr)
    shards = Chipper(index, source="zarr", zarr_store=sharded)
    with plain, shards:
        n = 0
        for a, b in zip(plain, shards, strict=True):
            assert a.chipid == b.chipid
            np.testing.assert_array_equal(a.pixels, b.pixels)
            n += 1
    assert n == len(index) > 0
