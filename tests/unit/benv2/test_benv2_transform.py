"""Resampling, S1 alignment and normalisation of BigEarthNet v2 patches (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from eolab.benv2 import transform as T
from eolab.benv2.names import LABEL_INDEX, LABELS, expand_bands, npz_key


def test_nearest_upsampling_repeats_each_pixel_exactly():
    rng = np.random.default_rng(1)
    for size in (60, 20):
        src = rng.integers(1, 10000, (size, size), dtype=np.uint16)
        out = T.upsample(src, 120, "nearest")
        f = 120 // size
        assert out.shape == (120, 120) and out.dtype == np.float32
        for dy in range(f):
            for dx in range(f):
                assert np.array_equal(out[dy::f, dx::f], src.astype(np.float32))


def test_bilinear_upsampling_is_pixel_area_aligned():
    # a linear ramp sampled at pixel centres stays a linear ramp at the finer pixel centres
    x20 = (np.arange(60) + 0.5) * 20.0
    src = np.tile(x20, (60, 1)).astype(np.float32)
    out = T.upsample(src, 120, "bilinear")
    x10 = (np.arange(120) + 0.5) * 10.0
    inner = slice(2, -2)  # the borders repeat the edge value
    assert np.allclose(out[:, inner], np.tile(x10, (120, 1))[:, inner], atol=1e-3)
    assert out.mean() == pytest.approx(src.mean(), rel=1e-3)
    cubic = T.upsample(src, 120, "cubic")
    core = slice(12, -12)  # the cubic spline's border effect decays over a few pixels
    assert np.allclose(cubic[:, core], np.tile(x10, (120, 1))[:, core], atol=0.5)


def test_upsampling_rejects_non_integer_factor_and_unknown_method():
    with pytest.raises(ValueError, match="integer factor"):
        T.upsample(np.zeros((50, 50)), 120)
    with pytest.raises(ValueError, match="unknown resampling"):
        T.upsample(np.zeros((60, 60)), 120, "lanczos")


def _stack(rng):
    s2 = rng.integers(1, 12000, (12, 120, 120)).astype(np.float32)
    s1 = np.stack([rng.uniform(-25, 10, (120, 120)), rng.uniform(-35, 2, (120, 120))])
    return np.concatenate([s2, s1.astype(np.float32)])


@pytest.mark.parametrize("mode", ["patch", "global", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_normalisation_round_trip(mode, dtype):
    rng = np.random.default_rng(2)
    raw = _stack(rng)
    stats = T.band_stats(raw) if mode != "global" else T.band_stats(_stack(rng))
    norm = T.normalise(raw, mode, stats, dtype)
    assert norm.dtype == np.dtype(dtype) and np.isfinite(norm).all()
    if mode == "patch":
        assert norm.min() >= 0 and norm.max() <= 1
        assert np.allclose(norm.reshape(14, -1).min(1), 0) and np.allclose(
            norm.reshape(14, -1).max(1), 1
        )
    if mode == "global":
        assert abs(float(norm.astype(np.float64).mean())) < 0.1
    back = T.denormalise(norm, mode, stats)
    err = np.abs(back - raw).reshape(14, -1).max(1)
    assert (err <= T.tolerance(raw, mode, stats, dtype)).all()
    if dtype == "float32":
        # S2 DN come back exactly after rounding
        exact = T.denormalise(norm, mode, stats, integer_bands=[True] * 12 + [False] * 2)
        assert np.array_equal(exact[:12], raw[:12])


def test_normalisation_of_a_constant_band_is_zero_and_reversible():
    raw = np.full((1, 120, 120), 500.0, dtype=np.float32)
    stats = T.band_stats(raw)
    norm = T.normalise(raw, "patch", stats)
    assert not norm.any()
    assert np.array_equal(T.denormalise(norm, "patch", stats), raw)


def test_tolerance_catches_a_real_error():
    rng = np.random.default_rng(3)
    raw = _stack(rng)
    stats = T.band_stats(raw)
    norm = T.normalise(raw, "patch", stats)
    norm[3, 5, 5] += 1e-3  # one DN-scale error in one pixel
    err = np.abs(T.denormalise(norm, "patch", stats) - raw).reshape(14, -1).max(1)
    assert err[3] > T.tolerance(raw, "patch", stats, "float32")[3]


def test_align_s1_same_grid_is_untouched():
    geo = T.Georef(32633, (10.0, 0.0, 390000.0, 0.0, -10.0, 5348400.0), (120, 120))
    s1 = np.random.default_rng(4).uniform(-25, 0, (2, 120, 120)).astype(np.float32)
    out, info = T.align_s1(s1, geo, geo)
    assert out is s1 or np.array_equal(out, s1)
    assert info["s1_alignment"] == "same_grid"


def test_align_s1_reprojects_a_shifted_patch_and_fills_the_edge():
    target = T.Georef(32633, (10.0, 0.0, 390000.0, 0.0, -10.0, 5348400.0), (120, 120))
    shifted = T.Georef(32633, (10.0, 0.0, 390020.0, 0.0, -10.0, 5348400.0), (120, 120))  # 2 px east
    s1 = np.tile(np.arange(120, dtype=np.float32), (2, 120, 1))
    out, info = T.align_s1(s1, shifted, target, min_coverage=0.9)
    assert info["s1_alignment"] == "reprojected" and info["s1_coverage"] == pytest.approx(118 / 120)
    assert np.isfinite(out).all()
    # target column c is source column c - 2
    assert np.allclose(out[0, :, 10:100], s1[0, :, 8:98], atol=1e-4)


def test_align_s1_across_utm_zones_keeps_values():
    from pyproj import Transformer

    # the same place in zone 33 and zone 32: a smooth field must survive reprojection
    target = T.Georef(32633, (10.0, 0.0, 390000.0, 0.0, -10.0, 5348400.0), (120, 120))
    to32 = Transformer.from_crs(32633, 32632, always_xy=True)
    x0, y0 = to32.transform(389900.0, 5348500.0)
    src = T.Georef(32632, (10.0, 0.0, x0, 0.0, -10.0, y0), (140, 140))
    yy, xx = np.mgrid[0:140, 0:140]
    s1 = np.stack([-10 + 0.01 * xx, -20 + 0.01 * yy]).astype(np.float32)
    out, info = T.align_s1(s1, src, target, min_coverage=0.9)
    assert info["s1_alignment"] == "reprojected" and np.isfinite(out).all()
    assert out[0].min() > -10.1 and out[0].max() < -8.5


def test_align_s1_refuses_a_pair_that_does_not_overlap():
    target = T.Georef(32633, (10.0, 0.0, 390000.0, 0.0, -10.0, 5348400.0), (120, 120))
    elsewhere = T.Georef(32633, (10.0, 0.0, 384000.0, 0.0, -10.0, 5342400.0), (120, 120))
    with pytest.raises(ValueError, match="coverage 0.0%"):
        T.align_s1(np.zeros((2, 120, 120), np.float32), elsewhere, target)


def test_multi_hot_and_names():
    vec = T.multi_hot(["Arable land", "Marine waters"], LABEL_INDEX)
    assert vec.dtype == np.uint8 and vec.sum() == 2 and vec[LABELS.index("Marine waters")] == 1
    assert [npz_key(b) for b in ("B02", "B8A", "B11", "VV")] == [
        "s2_b2",
        "s2_b8a",
        "s2_b11",
        "s1_vv",
    ]
    assert expand_bands("reference") == ("B02", "B03", "B04", "B08", "VV", "VH")
    assert expand_bands("vh,b2,B8A") == ("B02", "B8A", "VH")
    assert len(expand_bands("all")) == 14
    from eolab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="B10"):
        expand_bands("B02,B10")
