"""Chip grid and per-chip statistics: vectorised results against a direct per-chip loop."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from eolab.chips.stats import ChipGrid, chip_fractions

# 35VLH (north) and 51CVP (south) tile origins at 10 m, from FORMATS.md and the CDSE sample.
NORTH = ("EPSG:32635", 300000.0, 6800040.0)
SOUTH = ("EPSG:32751", 399960.0, 1400020.0)


def full_tile_grid(origin=NORTH, size: int = 256) -> ChipGrid:
    crs, x0, y0 = origin
    return ChipGrid((10980, 10980), Affine(10, 0, x0, 0, -10, y0), size, crs)


def loop_fractions(mask: np.ndarray, factor: int, grid: ChipGrid, offset=(0, 0)) -> np.ndarray:
    """The oracle: upsample the mask to the grid's pixels, then one mean per chip in a loop."""
    fine = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
    fine = fine[offset[0] :, offset[1] :]
    out = np.empty((grid.ny, grid.nx))
    s = grid.size
    for y in range(grid.ny):
        for x in range(grid.nx):
            out[y, x] = fine[y * s : (y + 1) * s, x * s : (x + 1) * s].mean()
    return out


def test_full_size_tile_has_42_by_42_chips_and_exact_bounds():
    grid = full_tile_grid()
    assert (grid.ny, grid.nx, grid.count) == (42, 42, 1764)
    ix, iy = grid.indices()
    bounds = grid.bounds()
    # Row-major like stacchip: x varies fastest.
    assert (ix[:3].tolist(), iy[:3].tolist()) == ([0, 1, 2], [0, 0, 0])
    assert bounds[0].tolist() == [300000.0, 6800040.0 - 2560, 302560.0, 6800040.0]
    last = bounds[-1]
    assert (ix[-1], iy[-1]) == (41, 41)
    assert last.tolist() == [
        300000.0 + 41 * 2560,
        6800040.0 - 42 * 2560,
        300000.0 + 42 * 2560,
        6800040.0 - 41 * 2560,
    ]
    # The partial strip (10980 - 42*256 = 228 px) is not indexed.
    assert 300000.0 + 109800.0 - last[2] == 228 * 10


def test_partial_chips_are_dropped_for_any_size():
    for shape, size in (((366, 366), 64), ((100, 37), 10), ((255, 256), 256)):
        grid = ChipGrid(shape, Affine(10, 0, 0, 0, -10, 0), size, "EPSG:32635")
        assert (grid.ny, grid.nx) == (shape[0] // size, shape[1] // size)


@pytest.mark.parametrize(
    "res,origin",
    [(60, NORTH), (60, SOUTH), (20, NORTH), (10, NORTH)],
    ids=["60m-35VLH", "60m-51CVP", "20m-35VLH", "10m-35VLH"],
)
def test_fractions_equal_per_chip_loop_on_full_size_grid(res, origin):
    grid = full_tile_grid(origin)
    factor = res // 10
    n = 10980 // factor
    rng = np.random.default_rng(res)
    # Blocky masks (clouds come in patches) plus salt noise, so chips differ a lot.
    mask = np.repeat(np.repeat(rng.random((n // 61 + 1, n // 61 + 1)) < 0.4, 61, 0), 61, 1)
    mask = mask[:n, :n] ^ (rng.random((n, n)) < 0.05)
    _, x0, y0 = origin
    got = chip_fractions(mask, Affine(res, 0, x0, 0, -res, y0), grid)
    want = loop_fractions(mask, factor, grid)
    assert got.shape == (42, 42)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert 0.05 < got.std()  # the test data really varies per chip


def test_fractions_with_mask_origin_offset_and_uneven_chip_size():
    """A mask starting 2 pixels left/up of the grid and chips not a whole number of pixels."""
    grid = ChipGrid((200, 230), Affine(10, 0, 1000, 0, -10, 5000), 25, "EPSG:32635")
    rng = np.random.default_rng(7)
    mask = rng.random((40, 45)) < 0.5  # 60 m pixels; covers 240 x 270 px at 10 m
    t = Affine(60, 0, 1000 - 2 * 60, 0, -60, 5000 + 2 * 60)
    got = chip_fractions(mask, t, grid)
    want = loop_fractions(mask, 6, grid, offset=(12, 12))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_weights_are_averaged():
    grid = ChipGrid((4, 4), Affine(10, 0, 0, 0, -10, 40), 2, "EPSG:32635")
    weights = np.arange(16, dtype=float).reshape(4, 4) / 16
    got = chip_fractions(weights, grid.transform, grid)
    np.testing.assert_allclose(got, weights.reshape(2, 2, 2, 2).mean(axis=(1, 3)))


def test_mask_not_covering_grid_is_an_error():
    grid = full_tile_grid()
    with pytest.raises(ValueError, match="does not cover"):
        chip_fractions(np.zeros((1000, 1830), bool), Affine(60, 0, 300000, 0, -60, 6800040), grid)
    with pytest.raises(ValueError, match="north-up"):
        ChipGrid((10, 10), Affine(10, 0, 0, 0, 10, 0), 2, "EPSG:32635")


@pytest.mark.parametrize("res", [20, 60], ids=["20m-whole-pixels", "60m-area-weighted"])
def test_class_masks_equal_the_loop_over_the_matching_boolean_mask(res):
    """A class map with ``classes`` (L2A's SCL) gives the fractions of ``isin(map, classes)``."""
    grid = full_tile_grid()
    factor = res // 10
    n = 10980 // factor
    rng = np.random.default_rng(res + 1)
    scl = np.repeat(np.repeat(rng.integers(0, 12, (n // 50 + 1,) * 2), 50, 0), 50, 1)
    scl = scl[:n, :n].astype(np.uint8)
    scl[rng.random((n, n)) < 0.05] = 9
    t = Affine(res, 0, NORTH[1], 0, -res, NORTH[2])
    for classes in ((1, 3, 8, 9, 10), (0,), (2, 3, 4, 11)):
        got = chip_fractions(scl, t, grid, classes)
        want = loop_fractions(np.isin(scl, classes), factor, grid)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert 0.01 < got.std()
