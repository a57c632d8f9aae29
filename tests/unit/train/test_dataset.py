"""PatchSeriesDataset: the patch loader's pixels, date selection, multi-year series, resampling
to one grid (checked against the chipper), valid masks, fork and pickle safety."""

import multiprocessing
import pickle

import numpy as np
import pandas as pd
import pytest

from eolab.chips.chipper import Chipper
from eolab.chips.merge import read_index
from eolab.core.errors import InputError
from eolab.lab.patchload import GROUPS, open_loader, random_patches
from eolab.lab.staging import dataset
from eolab.train.dataset import BANDS, FORMATS, CubeSource, PatchSeriesDataset, covering_patch
from eolab.train.sampling import Sample, index_samples, random_samples

TILE = "35VLH"


def source(fmt, *tys):
    return CubeSource(fmt, {(ty.tile, ty.year): str(ty.entries[fmt]) for ty in tys})


@pytest.fixture(scope="module")
def index(ty2024, ty2025):
    return read_index([ty2024.index_dir, ty2025.index_dir])


@pytest.mark.parametrize("fmt", FORMATS)
def test_pixels_equal_the_patch_loader(ty2024, fmt):
    entry = ty2024.entries[fmt]
    with open_loader(fmt, "network", dataset(fmt, entry), TILE, 2024) as loader:
        patches = random_patches(loader.grids, 3, seed=5, size_m=600)
        samples = [Sample(TILE, (2024,), p) for p in patches]
        with PatchSeriesDataset(source(fmt, ty2024), samples) as ds:
            for i, patch in enumerate(patches):
                expected = loader.load(patch)
                item = ds[i]
                for g in GROUPS:
                    np.testing.assert_array_equal(item[g], expected[g])
                    assert item[g].dtype == np.uint16
                valid = (expected["10m"] != 0).all(axis=1)
                for g, f in (("20m", 2), ("60m", 6)):
                    coarse = (expected[g] != 0).all(axis=1)
                    valid &= coarse.repeat(f, axis=1).repeat(f, axis=2)
                np.testing.assert_array_equal(item["valid"], valid)
                assert item["bounds"].tolist() == [
                    patch.x_min,
                    patch.y_max - patch.size,
                    patch.x_min + patch.size,
                    patch.y_max,
                ]
                assert item["crs"] == "EPSG:32635" and item["time"].shape == (3,)


def test_the_fixture_has_nodata_so_the_mask_is_tested(ty2024):
    grid_samples = [Sample(TILE, (2024,), p) for p in _grid_patches(ty2024)]
    with PatchSeriesDataset(source("zarr", ty2024), grid_samples) as ds:
        masks = np.concatenate([ds[i]["valid"].ravel() for i in range(len(ds))])
    assert masks.any() and not masks.all()


def _grid_patches(ty):
    with open_loader("zarr", "network", dataset("zarr", ty.entries["zarr"]), TILE, ty.year) as ld:
        return random_patches(ld.grids, 6, seed=1, size_m=900)


@pytest.mark.parametrize("fmt", ["zarr-sharded", "cog"])
def test_index_samples_at_10m_equal_the_chipper(ty2024, index, fmt):
    """Chips cut by the chipper (its own window arithmetic) = the dataset's resampled stack."""
    samples = index_samples(index, per="date", start="2024-01-01", end="2024-12-31")
    by_place = {(s.patch.x_min, s.patch.y_max, s.dates[0]): k for k, s in enumerate(samples)}
    chips = Chipper(read_index(ty2024.index_dir), source="zarr", zarr_store=ty2024.entries["zarr"])
    with chips, PatchSeriesDataset(source(fmt, ty2024), samples, resolution=10) as ds:
        checked = 0
        for chip in list(chips)[::7]:
            day = pd.Timestamp(chip.row["datetime"]).strftime("%Y-%m-%d")
            k = by_place[chip.row["native_xmin"], chip.row["native_ymax"], day]
            item = ds[k]
            assert item["image"].shape == (1, 13, 32, 32)
            for b, band in enumerate(chip.bands):
                np.testing.assert_array_equal(item["image"][0, BANDS.index(band)], chip.pixels[b])
            assert item["time"][0] == pd.Timestamp(chip.row["datetime"]).value // 10**6
            np.testing.assert_array_equal(item["valid"][0], (chip.pixels != 0).all(axis=0))
            checked += 1
    assert checked >= 5


def test_series_select_clear_dates_and_span_years(ty2024, ty2025, index):
    samples = index_samples(index, per="years", max_cloud=0.4, min_dates=3)
    two_years = [s for s in samples if s.years == (2024, 2025)]
    assert two_years
    src = source("zarr-zip", ty2024, ty2025)
    with PatchSeriesDataset(src, two_years, resolution=10) as ds:
        whole = PatchSeriesDataset(src, [], resolution=10)
        for k, s in enumerate(two_years[:4]):
            item = ds[k]
            days = np.datetime_as_string(item["time"].astype("datetime64[ms]"), unit="D")
            assert tuple(days) == s.dates
            # the same square over every date of both years, then the clear dates picked out
            whole.samples = [Sample(TILE, (2024, 2025), s.patch)]
            full = whole[0]
            pick = np.isin(
                np.datetime_as_string(full["time"].astype("datetime64[ms]"), unit="D"), s.dates
            )
            np.testing.assert_array_equal(item["image"], full["image"][pick])
            assert len(full["time"]) == 5 and pick.sum() == len(s.dates) < 5
        whole.close()


def test_groups_mode_refuses_unaligned_chips_and_names_the_fix(ty2024, index):
    sample = index_samples(index, per="date")[1]
    with PatchSeriesDataset(source("zarr", ty2024), [sample]) as ds:
        with pytest.raises(InputError, match="resolution="):
            ds[0]


def test_missing_dates_and_stores_are_named(ty2024):
    patch = random_samples(_grids(ty2024), 1, 0, TILE, [2024], size_m=600)[0].patch
    with PatchSeriesDataset(
        source("zarr", ty2024), [Sample(TILE, (2024,), patch, ("2024-05-05",))]
    ) as ds:
        with pytest.raises(InputError, match=r"2024-05-05.*does not hold"):
            ds[0]
    odd = Sample(TILE, (2024, 2025), patch, ("2024-03-02",))
    with PatchSeriesDataset(source("zarr", ty2024), [odd]) as ds:
        with pytest.raises(InputError, match="none of its dates is in year 2025"):
            ds[0]
    with PatchSeriesDataset(source("zarr", ty2024), [Sample(TILE, (2023,), patch)]) as ds:
        with pytest.raises(InputError, match="no store for tile 35VLH year 2023"):
            ds[0]
    with pytest.raises(InputError, match="format 'safe'"):
        CubeSource("safe", {(TILE, 2024): "x"})


def _grids(ty):
    with PatchSeriesDataset(source("zarr", ty), []) as ds:
        return ds.grids(TILE, ty.year)


def test_covering_patch_is_aligned_and_holds_the_chip():
    from eolab.lab.patchload import Grid, Patch

    grids = {
        g: Grid(300000, 6800040, r, n, n)
        for g, r, n in (("10m", 10, 180), ("20m", 20, 90), ("60m", 60, 30))
    }
    chip = Patch(300320, 6799720, 320)
    cover = covering_patch(chip, grids)
    assert (cover.x_min - 300000) % 60 == 0 and (6800040 - cover.y_max) % 60 == 0
    assert cover.size % 60 == 0
    assert cover.x_min <= chip.x_min and cover.x_min + cover.size >= chip.x_min + chip.size
    assert cover.y_max >= chip.y_max and cover.y_max - cover.size <= chip.y_max - chip.size
    edge = covering_patch(Patch(301480, 6798360, 320), grids)  # bottom-right chip of the tile
    assert edge.x_min + edge.size <= 301800 and edge.y_max - edge.size >= 6798240


def _read_in_child(ds, queue):
    queue.put([ds[i]["10m"].sum(dtype=np.int64) for i in range(len(ds))])


def test_fork_after_reading_and_pickle_reopen_their_own_stores(ty2024):
    samples = random_samples(_grids(ty2024), 4, 3, TILE, [2024], size_m=600)
    ds = PatchSeriesDataset(source("zarr-zip", ty2024), samples)
    expected = [ds[i]["10m"].sum(dtype=np.int64) for i in range(len(ds))]  # parent opened
    assert ds._loaders
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(ds, queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0 and got == expected
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._loaders == {} and clone[2]["10m"].sum(dtype=np.int64) == expected[2]
    clone.close()
    ds.close()


@pytest.mark.parametrize("fmt", ["safe", *FORMATS])
def test_loaders_read_a_time_slice_of_the_whole_series(ty2024, fmt):
    entry = ty2024.manifest if fmt == "safe" else ty2024.entries[fmt]
    with open_loader(fmt, "network", dataset(fmt, entry), TILE, 2024) as loader:
        patch = random_patches(loader.grids, 1, seed=9, size_m=600)[0]
        whole = loader.load(patch)
        part = loader.load(patch, slice(1, 3))
    for g in GROUPS:
        assert part[g].shape[0] == 2
        np.testing.assert_array_equal(part[g], whole[g][1:3])
