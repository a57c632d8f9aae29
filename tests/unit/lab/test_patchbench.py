"""Benchmark arithmetic and geometry: stderr, ratios, targets, pixel checks, random patches."""

import math
import re

import numpy as np
import pytest

from eolab.core.errors import ConfigError, InputError
from eolab.lab.patchbench import (
    MismatchError,
    check_targets,
    compare,
    compute_ratios,
    plan,
    summarize,
)
from eolab.lab.patchload import Grid, Patch, patch_geometry, random_patches
from eolab.lab.region import Region

FULL = {
    "10m": Grid(300000, 6800040, 10, 10980, 10980),
    "20m": Grid(300000, 6800040, 20, 5490, 5490),
    "60m": Grid(300000, 6800040, 60, 1830, 1830),
}


def test_stderr_is_sample_std_over_sqrt_n():
    d = [1.0, 2.0, 4.0, 7.0]
    s = summarize(d)
    mean = sum(d) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    assert s["total_duration"] == pytest.approx(14.0)
    assert s["mean_durations"] == pytest.approx(mean)
    assert s["std_durations"] == pytest.approx(std)
    assert s["stderr_durations"] == pytest.approx(std / 2)  # sqrt(4), not 4 as in the reference


def test_one_duration_has_zero_spread():
    assert summarize([3.5])["stderr_durations"] == 0.0


def test_ratios_and_targets():
    results = {
        "temp": {
            "zarr": {"mean_durations": 1.0},
            "zarr-xarray": {"mean_durations": 2.5},
            "zarr-zip": {"mean_durations": 1.05},
            "zarr-sharded": {"mean_durations": 1.2},
        }
    }
    ratios = compute_ratios(results, {"zarr": 6000, "zarr-sharded": 100, "zarr-zip": 1})
    assert ratios["temp"]["zarr_vs_xarray_speedup"] == pytest.approx(2.5)
    assert ratios["temp"]["zip_vs_zarr_time_ratio"] == pytest.approx(1.05)
    assert ratios["zarr_vs_sharded_object_ratio"] == pytest.approx(60)
    met = check_targets(ratios)
    assert met["zarr_vs_xarray_speedup"]["met"]["temp"] is True
    assert met["zip_vs_zarr_time_ratio"]["met"]["temp"] is True
    assert met["sharded_vs_zarr_time_ratio"]["met"]["temp"] is False
    assert met["zarr_vs_sharded_object_ratio"]["met"]["all"] is True


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        g: rng.integers(0, 9, (3, n, 4, 4), dtype="uint16")
        for g, n in (("10m", 4), ("20m", 6), ("60m", 3))
    }


def test_compare_catches_one_changed_pixel_and_dtype():
    a = _arrays()
    b = {g: v.copy() for g, v in a.items()}
    compare(a, b, "x", "y")
    b["20m"][1, 2, 3, 0] += 1
    with pytest.raises(MismatchError, match="20m differs from y in 1 pixels"):
        compare(a, b, "x", "y")
    c = {g: v.astype("int32") for g, v in a.items()}
    with pytest.raises(MismatchError, match="dtype"):
        compare(a, c, "x", "y")


def test_random_patches_are_seeded_aligned_and_inside():
    p1 = random_patches(FULL, 50, seed=7)
    assert p1 == random_patches(FULL, 50, seed=7)
    assert p1 != random_patches(FULL, 50, seed=8)
    for p in p1:
        assert p.size == 5100
        assert (p.x_min - 300000) % 60 == 0 and (6800040 - p.y_max) % 60 == 0
        for grid in FULL.values():
            row, col, size = grid.window(p)
            assert size * grid.res == 5100
            assert row + size <= grid.height and col + size <= grid.width


def test_patches_inside_a_region_are_seeded_aligned_and_inside_it():
    # the tile: x 300000..409800, y 6690240..6800040; the region's sides are not aligned
    region = Region(x1=350005, y1=6760000, x2=362000, y2=6748990)
    patches = random_patches(FULL, 200, seed=3, region=region)
    assert patches == random_patches(FULL, 200, seed=3, region=region)
    assert len({(p.x_min, p.y_max) for p in patches}) > 20
    for p in patches:
        assert p.x_min >= 350005 and p.x_min + p.size <= 362000
        assert p.y_max <= 6760000 and p.y_max - p.size >= 6748990
        assert (p.x_min - 300000) % 60 == 0 and (6800040 - p.y_max) % 60 == 0
        FULL["10m"].window(p)
    # the extreme aligned corners are reachable: 350040..356880 and 6760000-..-6754080 ->
    xs, ys = {p.x_min for p in patches}, {p.y_max for p in patches}
    assert min(xs) >= 350040 and max(xs) <= 356880 and max(ys) <= 6759960
    # whole-tile default draws the same patches as before regions existed
    assert random_patches(FULL, 20, seed=7) == random_patches(FULL, 20, seed=7, region=Region())
    # one side given: the others are the tile's edges
    for p in random_patches(FULL, 100, seed=4, region=Region(x2=320000)):
        assert 300000 <= p.x_min and p.x_min + p.size <= 320000


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (Region(x1=360000, x2=350000), "x1=360000 must be less than x2=350000"),
        (Region(y1=6750000, y2=6760000), "y2=6760000 must be less than y1=6750000"),
        (
            Region(x1=290000, y1=6760000, x2=362000, y2=6740000),
            "x1=290000.0 y1=6760000.0 x2=362000.0 y2=6740000.0 is not inside the tile "
            "(x 300000..409800, y 6690240..6800040)",
        ),
        (Region(y2=6600000), "is not inside the tile"),
        (
            Region(x1=350000, y1=6760000, x2=355000, y2=6740000),
            "no 5100.0 m patch with corners on multiples of 60.0 m",
        ),
        # wide enough (5100 m) but no aligned corner: 350010 rounds up to 350040
        (Region(x1=350010, y1=6760000, x2=355110, y2=6740000), "no 5100.0 m patch"),
    ],
)
def test_bad_regions_are_config_errors_naming_values_and_tile(region, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        random_patches(FULL, 5, seed=1, region=region)
    assert "\n" not in str(info.value)


def test_patches_shrink_to_small_fixture_tiles():
    small = {
        g: Grid(300000, 6800040, r, n, n)
        for g, r, n in (("10m", 10, 180), ("20m", 20, 90), ("60m", 60, 30))
    }
    size, align = patch_geometry(small, 5100, 60)
    assert (size, align) == (900, 60)  # half the 1800 m tile
    patches = random_patches(small, 20, seed=1)
    assert len({(p.x_min, p.y_max) for p in patches}) > 5
    for p in patches:
        assert small["10m"].window(p)[2] == 90 and small["60m"].window(p)[2] == 15
    coarse = {
        g: Grid(0, 0, r * 30, n // 30, n // 30)
        for g, r, n in (("10m", 10, 10980), ("20m", 20, 5490), ("60m", 60, 1830))
    }
    assert patch_geometry(coarse, 5100, 60) == (3600, 1800)


def test_window_rejects_misaligned_and_outside_patches():
    with pytest.raises(InputError, match="align"):
        FULL["60m"].window(Patch(300030, 6800040, 5100))
    with pytest.raises(InputError, match="outside"):
        FULL["60m"].window(Patch(300000 + 109800 - 60, 6800040, 5100))


def test_plan_skips_pairs_and_adds_the_baseline_where_zarr_is_read():
    pairs = plan(["safe", "zarr"], ["network", "s3"], skip=["s3:safe"])
    assert pairs == [
        ("network", "safe"),
        ("network", "zarr"),
        ("s3", "zarr"),
        ("network", "zarr-xarray"),
        ("s3", "zarr-xarray"),
    ]
    assert ("s3", "zarr-xarray") not in plan(["safe", "zarr"], ["network", "s3"], ["s3:zarr"])
    with pytest.raises(InputError, match="temp:cog"):
        plan(["safe"], ["network"], ["temp:cog"])
    with pytest.raises(InputError, match="nothing to measure"):
        plan(["safe"], ["network"], ["network:safe"])
