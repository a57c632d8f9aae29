"""SAFE -> COG: pixel-exact, georeferenced, described, valid COGs; atomic and idempotent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from eolab.cli import main
from eolab.core.errors import InputError
from eolab.sentinel2 import cog, safe
from eolab.sentinel2.products import product_paths

SMALL_TILES = cog.CogOptions(blocksize=64)  # 180/90 px rasters get tiles and overviews


def jp2(product: safe.SafeProduct, band: str) -> np.ndarray:
    with rasterio.open(product.band_path(band)) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, s2_products):
    """The 3-date fixture converted once (64 px tiles) with a listing."""
    out = tmp_path_factory.mktemp("cog")
    listing = out / "list.json"
    docs = cog.products_to_cog(
        product_paths(s2_products), out / "35VLH" / "2024", SMALL_TILES, listing=listing,
        progress=False, tile="35VLH", year=2024,
    )  # fmt: skip
    return out, listing, docs


def test_round_trip_metadata_and_georeferencing(converted, s2_products):
    out, listing, docs = converted
    doc = json.loads(listing.read_text())
    assert doc["tile"] == "35VLH" and doc["year"] == 2024
    assert [p["id"] for p in doc["products"]] == [d["id"] for d in docs]
    for entry, path in zip(doc["products"], product_paths(s2_products), strict=True):
        product = safe.read_safe(path)
        assert entry["id"] == product.id
        assert entry["cogs"]["10m"] == f"35VLH/2024/{product.id}/10m.tif"
        folder = listing.parent / entry["cogs"]["10m"].rsplit("/", 1)[0]
        for name in (safe.PRODUCT_METADATA, safe.TILE_METADATA):
            assert (folder / name).read_bytes() == (
                product.metadata_path if name == safe.PRODUCT_METADATA
                else product.tile_metadata_path
            ).read_bytes()  # fmt: skip
        meta = json.loads((folder / cog.PRODUCT_JSON).read_text())
        assert meta["orbit_direction"] == product.orbit_direction
        assert meta["baseline"] == product.baseline == entry["baseline"]
        for group, bands in safe.BAND_GROUPS.items():
            with rasterio.open(listing.parent / entry["cogs"][group]) as src:
                assert src.descriptions == tuple(bands)
                assert src.nodata == 0 and src.dtypes == ("uint16",) * len(bands)
                assert src.crs.to_epsg() == product.epsg
                assert src.transform.almost_equals(product.transform(group))
                assert src.scales == (1e-4,) * len(bands)
                assert src.offsets == (-0.1,) * len(bands)
                for i, band in enumerate(bands, start=1):
                    assert float(src.tags(i)["wavelength_nm"]) == safe.WAVELENGTH_NM[band]
                    np.testing.assert_array_equal(src.read(i), jp2(product, band))


def test_each_cog_is_valid_tiled_and_has_overviews(converted):
    out, listing, _ = converted
    for entry in json.loads(listing.read_text())["products"]:
        for group, rel in entry["cogs"].items():
            path = listing.parent / rel
            valid, errors, _ = cog_validate(path, quiet=True)
            assert valid, errors
            with rasterio.open(path) as src:
                if group != "60m":  # 180 and 90 px > 64 px tiles; 60m is 30 px
                    assert src.block_shapes[0] == (64, 64)
                    assert src.overviews(1)
                    assert src.tags()["OVERVIEW_RESAMPLING"] == "AVERAGE"


def test_default_512_tiles_on_a_larger_product(tmp_path):
    from eolab.fixtures.sentinel2 import generate_product

    entry = generate_product(tmp_path / "src", tile="35VLH", when="2024-06-01T09:50:29.024Z",
                             scale=15, seed=2, orbit_direction="ASCENDING")  # fmt: skip
    doc = cog.product_to_cog(tmp_path / "src" / entry["path"], tmp_path / "out")
    assert doc["orbit_direction"] == "ASCENDING"
    path = cog.cog_path(tmp_path / "out", doc["id"], "10m")  # 732 px
    assert cog_validate(path, quiet=True)[0]
    with rasterio.open(path) as src:
        assert src.block_shapes[0] == (512, 512) and src.overviews(1) == [2]
        assert src.compression.name == "deflate"


def test_rerun_skips_and_new_options_rewrite(converted, s2_products):
    out, _, docs = converted
    path = product_paths(s2_products)[0]
    target = cog.cog_path(out / "35VLH" / "2024", docs[0]["id"], "10m")
    before = target.stat().st_mtime_ns
    cog.product_to_cog(path, out / "35VLH" / "2024", SMALL_TILES)
    assert target.stat().st_mtime_ns == before
    zstd = cog.CogOptions(blocksize=64, compress="zstd", overview_resampling="nearest")
    copy = out / "zstd"
    shutil.copytree(out / "35VLH" / "2024" / docs[0]["id"], copy / docs[0]["id"])
    cog.product_to_cog(path, copy, zstd)
    with rasterio.open(cog.cog_path(copy, docs[0]["id"], "10m")) as src:
        assert src.compression.name == "zstd"
        assert src.tags()["OVERVIEW_RESAMPLING"] == "NEAREST"


def test_baseline_before_0400_has_no_offset(tmp_path):
    from eolab.fixtures.sentinel2 import generate_product

    entry = generate_product(tmp_path / "src", tile="51CVP", when="2021-03-01T01:50:29.024Z",
                             baseline="03.01", scale=183, seed=4)  # fmt: skip
    doc = cog.product_to_cog(tmp_path / "src" / entry["path"], tmp_path / "out")
    assert doc["radio_add_offset"]["B02"] == 0
    with rasterio.open(cog.cog_path(tmp_path / "out", doc["id"], "20m")) as src:
        assert src.offsets == (0.0,) * 6 and src.scales == (1e-4,) * 6
        assert src.crs.to_epsg() == 32751


def broken_copy(tmp_path: Path, manifest: Path) -> safe.SafeProduct:
    src = product_paths(manifest)[0]
    dest = tmp_path / src.name
    shutil.copytree(src, dest)
    return safe.read_safe(dest)


def test_corrupt_jp2_names_the_file_and_leaves_nothing(tmp_path, s2_products):
    product = broken_copy(tmp_path, s2_products)
    bad = product.band_path("B11")
    bad.write_bytes(b"\x00\x00\x00\x0cjP  garbage" * 10)
    with pytest.raises(InputError, match=str(bad)):
        cog.product_to_cog(product.path, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_missing_band_via_cli_is_one_clear_line(tmp_path, s2_products, capsys):
    product = broken_copy(tmp_path, s2_products)
    missing = product.band_path("B01")
    missing.unlink()
    with pytest.raises(SystemExit) as exc:
        main(["sentinel2", "to-cog", str(product.path), str(tmp_path / "out"), "--quiet"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("eolab: error: ") and str(missing) in err and "B01" in err


def test_a_killed_runs_temporary_folder_is_removed_and_a_second_writer_refused(
    tmp_path, s2_products
):
    from eolab.core.errors import LockedError
    from eolab.core.lock import exclusive

    out = tmp_path / "cogs"
    stale = out / ".S2A_MSIL1C_X.abc123.tmp"  # what atomic_path leaves after a kill -9
    (stale / "sub").mkdir(parents=True)
    (stale / ".10m.raw.npy").write_bytes(b"\0" * 1024)
    safes = product_paths(s2_products)[:1]
    with exclusive(out), pytest.raises(LockedError, match=r"is being written by pid \d+"):
        cog.products_to_cog(safes, out, progress=False)
    assert stale.is_dir()  # the live writer's temporaries are never touched
    cog.products_to_cog(safes, out, progress=False)
    assert not stale.exists()
    assert [p.name for p in out.iterdir()] == [safe.read_safe(safes[0]).id]
