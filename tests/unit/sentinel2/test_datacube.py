"""SAFE -> Zarr v3 datacube: pixel-exact, georeferenced, sorted, idempotent, crash-safe."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from pyproj import CRS

from eolab.core.errors import ConfigError, DiskSpaceError, InputError, LockedError
from eolab.sentinel2 import datacube, decode, safe
from eolab.sentinel2.products import product_paths

# Small chunks and shards so 3 dates span several time blocks and spatial blocks.
SMALL = {"10m": (2, 64, 64), "20m": (2, 32, 32), "60m": (2, 16, 16)}
SMALL_SHARDS = {"10m": (2, 128, 128), "20m": (2, 64, 64), "60m": (2, 32, 32)}
PLAIN = datacube.CubeSpec(chunks=SMALL)
SHARDED = datacube.CubeSpec(chunks=SMALL, shards=SMALL_SHARDS)


def jp2(product: safe.SafeProduct, band: str) -> np.ndarray:
    """A band read straight from its JP2 (the reference for every round trip)."""
    with rasterio.open(product.band_path(band)) as src:
        return src.read(1)


def snapshot(store: Path) -> dict[str, tuple[int, int, str]]:
    """Every file of a store with size, mtime and checksum."""
    return {
        p.relative_to(store).as_posix(): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def assert_cube_matches(store: Path, safes: list[Path]) -> None:
    """Every band of every date equals its JP2; labels and coordinates match the SAFE."""
    products = sorted((safe.read_safe(p) for p in safes), key=lambda p: p.sensing_time)
    tile, year = products[0].tile, products[0].sensing_time.year
    for group, bands in safe.BAND_GROUPS.items():
        ds = datacube.open_dataset(store, tile, year, group, mask_and_scale=False)
        assert list(ds.data.dims) == list(datacube.DIMS)
        assert ds.data.dtype == np.uint16
        assert list(ds.band.values) == bands
        assert list(ds.product_id.values) == [p.id for p in products]
        expected_t = [np.datetime64(p.sensing_time.replace(tzinfo=None), "ms") for p in products]
        assert (ds.time.values.astype("datetime64[ms]") == np.array(expected_t)).all()
        assert list(ds.orbit_direction.values) == [p.orbit_direction for p in products]
        for i, product in enumerate(products):
            for j, band in enumerate(bands):
                np.testing.assert_array_equal(ds.data.values[i, j], jp2(product, band))
        geo = products[0].geoposition(group)
        t = geo.transform
        np.testing.assert_allclose(ds.x.values, t.c + (np.arange(geo.ncols) + 0.5) * t.a)
        np.testing.assert_allclose(ds.y.values, t.f + (np.arange(geo.nrows) + 0.5) * t.e)
        ref = ds.spatial_ref.attrs
        assert CRS.from_wkt(ref["crs_wkt"]).to_epsg() == products[0].epsg
        assert ref["proj:code"] == f"EPSG:{products[0].epsg}"
        gt = [float(v) for v in ref["GeoTransform"].split()]
        assert gt == [t.c, t.a, t.b, t.f, t.d, t.e]
        assert ds.data.attrs["grid_mapping"] == "spatial_ref"
        assert datacube.unfinished(store) == ""


@pytest.fixture(scope="module", params=["plain", "sharded"])
def built(request, tmp_path_factory, s2_products):
    """(store, spec, summary) of the 3-date fixture converted once per module and layout."""
    spec = {"plain": PLAIN, "sharded": SHARDED}[request.param]
    store = tmp_path_factory.mktemp(request.param) / "cube.zarr"
    summary = datacube.to_zarr(store, product_paths(s2_products), spec, progress=False)
    return store, spec, summary


def test_round_trip_every_band_and_date(built, s2_products):
    store, spec, summary = built
    safes = product_paths(s2_products)
    assert summary["changed"] and summary["decoded"] == len(safes)
    assert_cube_matches(store, safes)
    data = zarr.open_group(store, mode="r")["35VLH/2024/10m/data"]
    assert data.chunks == (2, 4, 64, 64)
    assert data.shards == (None if spec.shards is None else (2, 4, 128, 128))
    assert not datacube.staging_dir(store).exists(), "staging is removed after a run"


def test_stores_of_the_same_name_never_share_a_scratch_staging_folder(tmp_path, s2_products):
    # the workflow's plain and sharded jobs run at once, with the same store name and scratch
    from concurrent.futures import ThreadPoolExecutor

    scratch = tmp_path / "scratch"
    plain, sharded = tmp_path / "zarr" / "cube.zarr", tmp_path / "zarr-sharded" / "cube.zarr"
    assert datacube.staging_dir(plain, scratch) != datacube.staging_dir(sharded, scratch)
    safes = product_paths(s2_products)
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(datacube.to_zarr, store, safes, spec, scratch=scratch, progress=False)
            for store, spec in ((plain, PLAIN), (sharded, SHARDED))
        ]
        for job in jobs:
            job.result()
    assert_cube_matches(plain, safes)
    assert_cube_matches(sharded, safes)
    assert not any(scratch.iterdir()), "staging is removed after a run"


def test_southern_tile_coordinates_and_crs(tmp_path, s2_products_south):
    store = tmp_path / "south.zarr"
    safes = product_paths(s2_products_south)
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)
    ds = datacube.open_dataset(store, "51CVP", 2024, "60m")
    assert ds.spatial_ref.attrs["proj:code"] == "EPSG:32751"
    assert CRS.from_wkt(ds.spatial_ref.attrs["crs_wkt"]).to_epsg() == 32751
    assert float(ds.y.max()) < 10_000_000 and float(ds.y.min()) > 1_000_000


def test_xarray_decodes_time_nodata_and_coordinates(built):
    store = built[0]
    ds = xr.open_zarr(store, group="35VLH/2024/20m")  # consolidated metadata, CF decoding
    assert np.issubdtype(ds.time.dtype, np.datetime64)
    assert {"product_id", "orbit_direction", "reflectance_offset", "spatial_ref"} <= set(ds.coords)
    raw = xr.open_zarr(store, group="35VLH/2024/20m", mask_and_scale=False)
    zeros = int((raw.data == 0).sum())
    assert zeros > 0, "the fixture has a no-data swath edge"
    assert int(ds.data.isnull().sum()) == zeros  # _FillValue 0 -> NaN
    assert ds.data.attrs["band_add_offset"] == [-0.1] * 6
    reflectance = raw.data * raw.reflectance_scale + raw.reflectance_offset
    expected = (raw.data.values[0, 0].astype(float) - 1000) / 10000
    np.testing.assert_allclose(reflectance.values[0, 0], expected)


def test_offsets_and_time_axis_across_the_0400_baseline(tmp_path):
    from eolab.fixtures.sentinel2 import generate_product

    root = tmp_path / "src"
    old = generate_product(root, tile="35VLH", when="2022-01-10T09:50:29.024Z", baseline="03.01",
                           scale=183, seed=3)  # fmt: skip
    new = generate_product(root, tile="35VLH", when="2022-02-03T09:40:11.024Z", baseline="04.00",
                           scale=183, seed=3)  # fmt: skip
    store = tmp_path / "cube.zarr"
    safes = [root / new["path"], root / old["path"]]  # given out of order
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)
    ds = datacube.open_dataset(store, "35VLH", 2022, "10m")
    assert list(ds.processing_baseline.values) == ["03.01", "04.00"]
    np.testing.assert_allclose(ds.reflectance_offset.values, [[0.0] * 4, [-0.1] * 4])
    np.testing.assert_allclose(ds.reflectance_scale.values, 1e-4)
    assert ds.data.attrs["band_add_offset"] is None  # dates disagree: see the coordinate
    assert ds.data.attrs["band_scale_factor"] == [1e-4] * 4


def test_rerun_is_idempotent_and_writes_nothing(built, s2_products):
    store, spec, _ = built
    before = snapshot(store)
    summary = datacube.to_zarr(store, product_paths(s2_products), spec, progress=False)
    assert summary["changed"] is False and summary["decoded"] == 0
    assert snapshot(store) == before


def test_a_rerun_drops_metadata_partials_a_kill_left(built, s2_products, tmp_path):
    """zarr's atomic metadata write leaves ``zarr.<uuid>.partial`` when killed; zarr then warns
    on every listing of that group. The next run removes them (and nothing else)."""
    store = Path(shutil.copytree(built[0], tmp_path / "cube.zarr"))
    group = store / "35VLH" / "2024" / "20m"
    litter = [group / "zarr.0123abcd.partial", group / "data" / "zarr.4567ef.partial"]
    for path in litter:
        path.write_text("{")
    before = {k: v for k, v in snapshot(store).items() if not k.endswith(".partial")}
    with pytest.warns(UserWarning, match="not recognized as a component"):
        dict(zarr.open_group(group, mode="r").members())
    datacube.to_zarr(store, product_paths(s2_products), built[1], progress=False)
    assert not any(path.exists() for path in litter)
    assert snapshot(store) == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dict(zarr.open_group(group, mode="r").members())


def test_appending_an_earlier_date_keeps_time_sorted(tmp_path, s2_products):
    store = tmp_path / "cube.zarr"
    safes = product_paths(s2_products)
    datacube.to_zarr(store, [safes[1], safes[2]], PLAIN, progress=False)
    summary = datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert summary["decoded"] == 1  # the stored dates were moved, not decoded again
    assert_cube_matches(store, safes)


def test_appending_with_another_layout_is_refused_and_changes_nothing(tmp_path, s2_products):
    import dataclasses

    from eolab.core.errors import ConfigError

    store = tmp_path / "cube.zarr"
    safes = product_paths(s2_products)
    datacube.to_zarr(store, safes[:2], PLAIN, progress=False)
    other_codec = dataclasses.replace(PLAIN, compressor={**dict(PLAIN.compressor), "clevel": 9})
    for spec, what in ((SHARDED, "shards"), (other_codec, "compressor")):
        for products in (safes, safes[:2]):  # something to append, or nothing
            with pytest.raises(ConfigError, match=f"another layout.*{what}"):
                datacube.to_zarr(store, products, spec, progress=False)
    assert_cube_matches(store, safes[:2])
    assert "consolidated_metadata" in json.loads((store / "zarr.json").read_text())


def test_appending_into_a_partly_filled_block(tmp_path, s2_products):
    store = tmp_path / "cube.zarr"
    safes = product_paths(s2_products)
    spec = datacube.CubeSpec(chunks={"10m": (4, 64, 64), "20m": (4, 32, 32), "60m": (4, 16, 16)})
    for n in (1, 2, 3):
        datacube.to_zarr(store, safes[:n], spec, progress=False)
    assert_cube_matches(store, safes)


class Crash(RuntimeError):
    pass


def test_crash_between_data_and_labels_is_repaired(tmp_path, s2_products, monkeypatch):
    store = tmp_path / "cube.zarr"
    safes = product_paths(s2_products)
    datacube.to_zarr(store, safes[:2], PLAIN, progress=False)
    real = datacube.CubeGroup._write_labels

    def crash_on_third(self, start, entries):
        if start == 2:
            raise Crash("killed after the data, before the labels")
        return real(self, start, entries)

    monkeypatch.setattr(datacube.CubeGroup, "_write_labels", crash_on_third)
    with pytest.raises(Crash):
        datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert "dates" in datacube.unfinished(store)  # data is longer than the committed length
    root_meta = json.loads((store / "zarr.json").read_text())
    assert "consolidated_metadata" not in root_meta, "no stale consolidated view after a crash"
    monkeypatch.undo()
    summary = datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert summary["changed"] and summary["decoded"] == 1
    assert_cube_matches(store, safes)
    leftovers = [p for p in store.rglob("*.partial")]
    assert not leftovers


def test_crash_after_moving_stored_dates_recovers_them(tmp_path, s2_products, monkeypatch):
    """Stored dates moved to staging survive a crash, even if the next run is not given them."""
    store = tmp_path / "cube.zarr"
    safes = product_paths(s2_products)
    datacube.to_zarr(store, safes[1:], PLAIN, progress=False)

    def crash(self, items):
        raise Crash("killed before the first block")

    monkeypatch.setattr(datacube.CubeGroup, "write_block", crash)
    with pytest.raises(Crash):
        datacube.to_zarr(store, safes[:1], PLAIN, progress=False)
    assert "staged" in datacube.unfinished(store)
    monkeypatch.undo()
    datacube.to_zarr(store, safes[:1], PLAIN, progress=False)
    assert_cube_matches(store, safes)
    assert not datacube.staging_dir(store).exists()


def corrupt_copy(tmp_path: Path, manifest: Path) -> tuple[list[Path], safe.SafeProduct]:
    safes = []
    for p in product_paths(manifest):
        dest = tmp_path / "safes" / p.name
        shutil.copytree(p, dest)
        safes.append(dest)
    return safes, safe.read_safe(safes[1])


def test_corrupt_jp2_names_the_file(tmp_path, s2_products):
    safes, product = corrupt_copy(tmp_path, s2_products)
    bad = product.band_path("B8A")
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
    with pytest.raises(InputError, match=str(bad)):
        datacube.to_zarr(tmp_path / "cube.zarr", safes, PLAIN, progress=False)


def test_missing_band_names_the_file_and_the_store_stays_usable(tmp_path, s2_products):
    safes, product = corrupt_copy(tmp_path, s2_products)
    missing = product.band_path("B03")
    missing.unlink()
    store = tmp_path / "cube.zarr"
    with pytest.raises(InputError, match=f"{missing}.*B03"):
        datacube.to_zarr(store, safes, PLAIN, progress=False)
    good = [s for s in safes if s != Path(product.path)]
    datacube.to_zarr(store, good, PLAIN, progress=False)
    assert_cube_matches(store, good)


def test_a_product_on_another_grid_is_refused(tmp_path, s2_products, s2_products_south):
    store = tmp_path / "cube.zarr"
    datacube.to_zarr(store, product_paths(s2_products)[:1], PLAIN, progress=False)
    other = product_paths(s2_products_south)[0]
    fake = tmp_path / "fake"
    shutil.copytree(other, fake)
    tl = safe.read_safe(fake).tile_metadata_path
    tl.write_text(tl.read_text().replace("EPSG:32751", "EPSG:32635"))
    mtd = fake / safe.PRODUCT_METADATA
    text = mtd.read_text()
    uri = safe.read_safe(fake).product_uri
    mtd.write_text(text.replace(f">{uri}<", f">{uri.replace('T51CVP', 'T35VLH')}<"))
    with pytest.raises(InputError, match="differs from the store"):
        datacube.to_zarr(store, [fake], PLAIN, progress=False)


def test_peak_memory_does_not_grow_with_dates(tmp_path):
    """Pixels pass through staging files: traced memory stays near one product, not N."""
    from eolab.fixtures.sentinel2 import generate_tile_year

    manifest = tmp_path / "m.json"
    generate_tile_year(tmp_path, tile="35VLH", year=2024, dates=3, scale=30, seed=5,
                       manifest=manifest)  # fmt: skip
    safes = product_paths(manifest)
    product = safe.read_safe(safes[0])
    one = sum(decode.group_nbytes(product, g) for g in decode.GROUPS)
    spec = datacube.CubeSpec(
        chunks={"10m": (3, 64, 64), "20m": (3, 32, 32), "60m": (3, 16, 16)},
        write_block_bytes=1 << 18,
    )
    datacube.to_zarr(tmp_path / "warm-up.zarr", safes[:1], spec, progress=False)  # lazy imports
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    datacube.to_zarr(tmp_path / "cube.zarr", safes, spec, progress=False, workers=2)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak < one, f"peak {peak} B traced for 3 dates of {one} B each"
    assert_cube_matches(tmp_path / "cube.zarr", safes)


def test_cli_to_zarr_from_a_manifest_with_shards(tmp_path, s2_products, capsys):
    from eolab.cli import main

    store = tmp_path / "cli.zarr"
    args = ["sentinel2", "to-zarr", "--manifest", str(s2_products), "--store", str(store),
            "--sharded", "--chunks", "10m:2x64x64,20m:2x32x32,60m:2x16x16",
            "--shards", "10m:2x128x128,20m:2x64x64,60m:2x32x32",
            "--compressor", "lz4:5:bitshuffle", "--quiet"]  # fmt: skip
    main(args)
    assert "3 products decoded" in capsys.readouterr().out
    data = zarr.open_group(store, mode="r")["35VLH/2024/20m/data"]
    assert data.shards == (2, 6, 64, 64) and data.chunks == (2, 6, 32, 32)
    assert data.compressors[0].cname.value == "lz4"
    assert_cube_matches(store, product_paths(s2_products))
    main(args)
    assert "unchanged; 0 products decoded" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text", ["10m:20x512,20m:40x256x256,60m:80x128x128", "10m:20x512x512", "5m:1x1x1"]
)
def test_bad_chunk_specs_are_config_errors(text):
    from eolab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="chunks"):
        datacube.parse_blocks(text, "chunks")


def test_shards_must_be_multiples_of_chunks():
    from eolab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="multiples"):
        datacube.CubeSpec(shards={"10m": (20, 1000, 1000), "20m": (40, 1024, 1024),
                                  "60m": (80, 1024, 1024)})  # fmt: skip


# --- half-created groups, one writer, duplicates, disk ----------------------------------------
def test_bad_tile_header_leaves_a_group_the_fixed_rerun_rebuilds(tmp_path, s2_products):
    """A MTD_TL.xml with a negative NROWS stops the first run while it creates the groups;
    after fixing the XML the rerun completes the store (no KeyError), equal to a clean one."""
    src = s2_products.parent
    work = Path(shutil.copytree(src, tmp_path / "src"))
    safes = product_paths(work / s2_products.name)
    header = safe.read_safe(safes[0]).tile_metadata_path
    good = header.read_text()
    header.write_text(good.replace("<NROWS>180</NROWS>", "<NROWS>-5</NROWS>", 1))
    store = tmp_path / "s.zarr"
    with pytest.raises(InputError, match="NROWS/NCOLS must be positive"):
        datacube.to_zarr(store, safes, PLAIN, progress=False)
    header.write_text(good)
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)


@pytest.mark.parametrize("lost", ["processing_baseline", "spatial_ref", "data"])
def test_group_with_state_but_missing_arrays_is_rebuilt(tmp_path, s2_products, lost):
    """Stores of earlier versions wrote the group state first: a kill -9 then left a group with
    `eolab:cube` and some arrays missing, and every rerun failed with a KeyError."""
    safes = product_paths(s2_products)
    store = tmp_path / "s.zarr"
    root = datacube._open_root(store)
    info = decode.product_info(safe.read_safe(safes[0]))
    path = datacube.group_path(info.tile, info.year, "20m")
    datacube.create_group(root, path, info, "20m", PLAIN)
    shutil.rmtree(store / path / lost)
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)


def test_group_without_state_is_rebuilt_and_one_with_dates_is_refused(tmp_path, s2_products):
    safes = product_paths(s2_products)
    store = tmp_path / "s.zarr"
    root = datacube._open_root(store)
    info = decode.product_info(safe.read_safe(safes[0]))
    path = datacube.group_path(info.tile, info.year, "60m")
    root.require_group(path).attrs["tile"] = info.tile  # killed right after the group's json
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)
    shutil.rmtree(store / path / "product_id")  # not a crash of ours: dates would be lost
    with pytest.raises(InputError, match="no product_id array"):
        datacube.to_zarr(store, safes, PLAIN, progress=False)


def test_bad_compressor_level_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="clevel must be 0..9"):
        datacube.CubeSpec(compressor=datacube.parse_compressor("zstd:99:shuffle"))


def test_a_second_writer_gets_the_lock_error_and_changes_nothing(tmp_path, s2_products):
    from eolab.core.lock import exclusive

    safes = product_paths(s2_products)
    store = tmp_path / "s.zarr"
    with exclusive(store), pytest.raises(LockedError, match=r"is being written by pid \d+"):
        datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert not store.exists()
    datacube.to_zarr(store, safes, PLAIN, progress=False)  # the lock is free again
    assert_cube_matches(store, safes)


def test_not_enough_space_for_staging_is_refused_before_staging(tmp_path, s2_products, monkeypatch):
    from eolab.core import disk

    safes = product_paths(s2_products)
    store = tmp_path / "s.zarr"
    real = disk.check_free_space
    monkeypatch.setattr(
        disk, "check_free_space", lambda *a, **k: real(*a, **{**k, "free": lambda p: 1000})
    )
    with pytest.raises(DiskSpaceError, match="staging 35VLH 2024 .* needs"):
        datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert not datacube.staging_dir(store).exists()
    monkeypatch.undo()
    datacube.to_zarr(store, safes, PLAIN, progress=False)
    assert_cube_matches(store, safes)


def _same_time_products(tmp_path: Path, s2_products: Path) -> tuple[list[Path], Path, Path]:
    """The fixture's products plus a reprocessing of the second date with baseline 04.00
    (older) and one with 05.11 (newer): (fixture SAFEs, older SAFE, newer SAFE)."""
    from eolab.fixtures.sentinel2 import generate_product

    safes = product_paths(s2_products)
    original = safe.read_safe(safes[1])
    mission, _, datatake, _, orbit, *_ = original.id.split("_")
    sensing = re.search(r"<SENSING_TIME[^>]*>[^<]+<", original.tile_metadata_path.read_text())
    extra = []
    for baseline in ("04.00", "05.11"):
        entry = generate_product(
            tmp_path / "re",
            tile="35VLH",
            when=datatake,
            mission=mission,
            relative_orbit=int(orbit[1:]),
            baseline=baseline,
            scale=61,
            seed=1,
        )
        path = tmp_path / "re" / entry["path"]
        header = safe.read_safe(path).tile_metadata_path  # the same granule, reprocessed
        text = re.sub(r"<SENSING_TIME[^>]*>[^<]+<", sensing.group(0), header.read_text())
        header.write_text(text)
        extra.append(path)
    return safes, extra[0], extra[1]


def test_same_sensing_time_keeps_the_newest_baseline_with_a_warning(tmp_path, s2_products, caplog):
    safes, older, newer = _same_time_products(tmp_path, s2_products)
    store = tmp_path / "s.zarr"
    summary = datacube.to_zarr(store, [*safes, older], PLAIN, progress=False)
    assert_cube_matches(store, safes)  # 05.10 beats 04.00: the time axis is unchanged
    ids = {d["dropped"]: d["kept"] for d in summary["duplicates"]}
    assert ids == {safe.read_safe(older).id: safe.read_safe(safes[1]).id}
    assert "same sensing time" in caplog.text and safe.read_safe(older).id in caplog.text
    rerun = datacube.to_zarr(store, [*safes, older], PLAIN, progress=False)
    assert rerun["changed"] is False
    # a newer reprocessing arriving later replaces the stored date in place
    datacube.to_zarr(store, [*safes, older, newer], PLAIN, progress=False)
    assert_cube_matches(store, [safes[0], newer, safes[2]])
    clean = tmp_path / "clean.zarr"
    datacube.to_zarr(clean, [newer, *safes], PLAIN, progress=False)
    assert_cube_matches(clean, [safes[0], newer, safes[2]])
