"""Pure array transforms: resampling to 10 m, S1 alignment, normalisation and its inverse.

Resampling (``--resampling``) brings 20 m (60x60) and 60 m (20x20) bands onto the 10 m 120x120
grid by an integer factor, pixel areas aligned (pixel-is-area, as the GeoTIFFs say):

- ``nearest`` (default): each source pixel becomes a 2x2 or 6x6 block. Lossless: the source is
  recovered exactly by taking every 2nd/6th pixel, so outputs can be verified pixel for pixel.
- ``bilinear`` / ``cubic``: ``scipy.ndimage.zoom`` with ``order`` 1 / 3, ``grid_mode=True``
  (pixel-area alignment) and ``mode="nearest"`` at the borders.

Normalisation (``--normalise``), per band, recorded so that ``denormalise`` gives the values back:

- ``patch`` (the reference script's): ``(x - min) / (max - min)`` over the patch -> [0, 1]; min,
  max, mean and std are recorded per patch (``max == min`` gives 0).
- ``global``: ``(x - mean) / std`` with mean/std over the train split, stored once.
- ``none``: the raw values (S2 DN, S1 dB) as float.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLING = ("nearest", "bilinear", "cubic")
NORMALISATION = ("patch", "global", "none")
_ZOOM_ORDER = {"bilinear": 1, "cubic": 3}


def upsample(
    a: np.ndarray, size: int, method: str = "nearest", out: np.ndarray | None = None
) -> np.ndarray:
    """Resample a square 2-D band to ``size`` x ``size`` (integer factor) as float32.

    ``out`` (float32, size x size) receives the result without a temporary when given.
    """
    h, w = a.shape
    if out is None:
        out = np.empty((size, size), dtype=np.float32)
    if h == size and w == size:
        out[...] = a
        return out
    if size % h or size % w or size // h != size // w:
        raise ValueError(f"cannot resample {a.shape} to {size}x{size} by an integer factor")
    factor = size // h
    if method == "nearest":
        # one broadcast copy: out[y*f + i, x*f + j] = a[y, x]
        out.reshape(h, factor, w, factor)[...] = a[:, None, :, None]
        return out
    if method in _ZOOM_ORDER:
        from scipy.ndimage import zoom

        zoom(
            a.astype(np.float32),
            factor,
            output=out,
            order=_ZOOM_ORDER[method],
            mode="nearest",
            grid_mode=True,
        )
        return out
    raise ValueError(f"unknown resampling {method!r}; expected one of {RESAMPLING}")


@dataclass(frozen=True)
class Georef:
    """Where a raster sits: EPSG code, affine transform (a, b, c, d, e, f) and shape."""

    epsg: int | None
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    def bounds(self) -> tuple[float, float, float, float]:
        a, _, c, _, e, f = self.transform
        h, w = self.shape
        return (c, f + e * h, c + a * w, f)

    def same_grid(self, other: Georef, tol: float = 1e-3) -> bool:
        return (
            self.epsg == other.epsg
            and self.shape == other.shape
            and all(abs(x - y) <= tol for x, y in zip(self.transform, other.transform, strict=True))
        )


def align_s1(
    s1: np.ndarray,
    s1_geo: Georef,
    target: Georef,
    *,
    min_coverage: float = 0.9,
) -> tuple[np.ndarray, dict[str, Any]]:
    """S1 (bands, h, w) on the S2 10 m grid: as is when CRS and footprint match, else reprojected.

    Reprojection is bilinear (rasterio.warp); target pixels the S1 patch does not cover are
    filled from the nearest covered pixel when at least ``min_coverage`` of the patch is
    covered. Raises ValueError("coverage ...") below that: such a pair is not a pair.
    """
    if s1_geo.same_grid(target):
        return s1.astype(np.float32, copy=False), {"s1_alignment": "same_grid", "s1_coverage": 1.0}
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, reproject

    if s1_geo.epsg is None or target.epsg is None:
        raise ValueError("coverage unknown: a raster has no EPSG code")
    out = np.full((s1.shape[0], *target.shape), np.nan, dtype=np.float32)
    reproject(
        source=s1.astype(np.float32),
        destination=out,
        src_transform=Affine(*s1_geo.transform),
        src_crs=CRS.from_epsg(s1_geo.epsg),
        dst_transform=Affine(*target.transform),
        dst_crs=CRS.from_epsg(target.epsg),
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    valid = np.isfinite(out).all(axis=0)
    coverage = float(valid.mean())
    if coverage < min_coverage:
        raise ValueError(
            f"coverage {coverage:.1%} of the S2 patch by the S1 patch is below {min_coverage:.0%}"
        )
    if not valid.all():
        from scipy.ndimage import distance_transform_edt

        _, (iy, ix) = distance_transform_edt(~valid, return_indices=True)
        out = out[:, iy, ix]
    return out, {"s1_alignment": "reprojected", "s1_coverage": round(coverage, 6)}


def band_stats(stack: np.ndarray) -> dict[str, np.ndarray]:
    """Per-band min, max, mean, std (float64) of a (bands, h, w) stack."""
    flat = stack.reshape(stack.shape[0], -1)
    # min/max are exact; mean/std (informative in patch mode) use numpy's pairwise float32 sums
    return {
        "min": flat.min(axis=1).astype(np.float64),
        "max": flat.max(axis=1).astype(np.float64),
        "mean": flat.mean(axis=1).astype(np.float64),
        "std": flat.std(axis=1).astype(np.float64),
    }


def scale_offset(mode: str, stats: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``normalised = (x - offset) / scale`` per band."""
    if mode == "patch":
        scale = stats["max"] - stats["min"]
        return np.where(scale > 0, scale, 1.0), stats["min"]
    if mode == "global":
        std = np.asarray(stats["std"], dtype=np.float64)
        return np.where(std > 0, std, 1.0), np.asarray(stats["mean"], dtype=np.float64)
    if mode == "none":
        return np.ones(n), np.zeros(n)
    raise ValueError(f"unknown normalisation {mode!r}; expected one of {NORMALISATION}")


def normalise(
    stack: np.ndarray, mode: str, stats: dict[str, Any], dtype: str = "float32"
) -> np.ndarray:
    """Normalise a (bands, h, w) stack per band with ``stats`` (see the module docstring).

    Computed in float32 (the source values, uint16 DN or float32 dB, are exact in float32).
    """
    scale, offset = scale_offset(mode, stats, stack.shape[0])
    out = np.subtract(stack, offset.astype(np.float32)[:, None, None], dtype=np.float32)
    out *= (1.0 / scale).astype(np.float32)[:, None, None]
    return out.astype(dtype, copy=False)


def denormalise(
    normalised: np.ndarray,
    mode: str,
    stats: dict[str, Any],
    integer_bands: Any = None,
    dtype: str = "float64",
) -> np.ndarray:
    """The inverse of ``normalise``; bands flagged in ``integer_bands`` are rounded.

    With float32 outputs rounding the S2 bands gives the source DN back exactly.
    """
    scale, offset = scale_offset(mode, stats, normalised.shape[0])
    out = normalised.astype(dtype) * scale.astype(dtype)[:, None, None]
    out += offset.astype(dtype)[:, None, None]
    if integer_bands is not None:
        mask = np.asarray(integer_bands, dtype=bool)
        out[mask] = np.rint(out[mask])
    return out


def tolerance(expected: np.ndarray, mode: str, stats: dict[str, Any], dtype: str) -> np.ndarray:
    """Largest |denormalise(normalise(x)) - x| per band that rounding can cause.

    The stored value's rounding error is at most eps/2 of its magnitude, ``|x - offset| /
    scale`` <= ``(|x| + |offset|) / scale``; float32 arithmetic in ``normalise`` and in a float32
    ``denormalise`` adds a few float32 ulps of the same magnitudes.
    """
    n = expected.shape[0]
    absmax = np.abs(expected.reshape(n, -1)).max(axis=1).astype(np.float64)
    return tolerance_for(absmax, mode, stats, dtype, n)


def tolerance_for(
    absmax: np.ndarray, mode: str, stats: dict[str, Any], dtype: str, n: int
) -> np.ndarray:
    """``tolerance`` from the per-band largest |x| (when it is known already)."""
    scale, offset = scale_offset(mode, stats, n)
    magnitude = absmax + np.abs(offset) + scale
    eps = float(np.finfo(np.dtype(dtype)).eps)
    eps32 = float(np.finfo(np.float32).eps)
    return (eps + 4 * eps32) * magnitude + 1e-9


def multi_hot(labels: list[str], index: dict[str, int]) -> np.ndarray:
    """uint8 vector over the 19 classes."""
    out = np.zeros(len(index), dtype=np.uint8)
    for label in labels:
        out[index[label]] = 1
    return out
