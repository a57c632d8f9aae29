"""The chip grid and per-chip mask fractions, computed with array operations (no loop per chip).

A chip grid divides a north-up raster of ``shape`` pixels (the item's finest resolution) into
square chips of ``size`` pixels, row-major from the upper-left corner. Only **full** chips are
indexed, as stacchip does (``floor(shape / size)`` per axis): a 10980 px tile with 256 px chips
has 42 × 42 chips and the last 228 px strip on the right and at the bottom is not indexed. Full
chips keep every sample the same shape for batching; an edge strip narrower than a chip would
need padding, which mixes invented pixels into training data.

A mask may have another resolution than the grid (Sentinel-2's cloud mask is 60 m, chips are cut
at 10 m) and need not divide it (a 256 px chip at 10 m is 42⅔ pixels at 60 m). The fraction of a
chip covered by a mask is then the area-weighted sum of the mask pixels it overlaps, as if the
mask were upsampled by nearest neighbour to the grid: with ``Oy[i, r]`` the overlap of chip row i
with mask row r (and ``Ox`` likewise for columns), the covered area is ``Oy @ M @ Ox.T``, computed
one chip row (then column) at a time over the mask pixels it overlaps: loops over 42 rows and 42
columns, not over 1764 chips.
Where a chip spans a whole number of mask pixels on the same origin this is a reshape and a sum.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from affine import Affine


@dataclass(frozen=True)
class ChipGrid:
    """Full square chips of ``size`` pixels over a north-up raster of ``shape`` (rows, cols)."""

    shape: tuple[int, int]
    transform: Affine
    size: int
    crs: str

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"chip size must be positive, got {self.size}")
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise ValueError(f"chip grids need a north-up transform, got {tuple(t)[:6]}")

    @property
    def nx(self) -> int:
        """Chips per row (full chips only)."""
        return self.shape[1] // self.size

    @property
    def ny(self) -> int:
        """Chips per column (full chips only)."""
        return self.shape[0] // self.size

    @property
    def count(self) -> int:
        return self.nx * self.ny

    @property
    def chip_width(self) -> float:
        """Chip width in CRS units."""
        return self.size * self.transform.a

    @property
    def chip_height(self) -> float:
        """Chip height in CRS units (positive)."""
        return self.size * -self.transform.e

    def indices(self) -> tuple[np.ndarray, np.ndarray]:
        """``(chip_index_x, chip_index_y)`` of every chip, row-major (y outer, x inner)."""
        iy, ix = np.divmod(np.arange(self.count, dtype=np.int64), self.nx)
        return ix, iy

    def bounds(self) -> np.ndarray:
        """``(count, 4)`` array of chip bounds ``xmin, ymin, xmax, ymax`` in the grid's CRS."""
        ix, iy = self.indices()
        x0, y0 = self.transform.c, self.transform.f
        xmin = x0 + ix * self.chip_width
        ymax = y0 - iy * self.chip_height
        return np.column_stack([xmin, ymax - self.chip_height, xmin + self.chip_width, ymax])


def workers() -> int:
    """Cores this process may use (a Slurm allocation, not the whole node)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_row_bands(n_rows: int, func: Callable[[slice], None], min_rows: int = 8) -> None:
    """Call ``func`` on row bands of ``range(n_rows)`` in threads (numpy releases the GIL);
    a plain call when there is one core or few rows."""
    n = min(workers(), n_rows // min_rows)
    if n <= 1:
        func(slice(0, n_rows))
        return
    edges = np.linspace(0, n_rows, n + 1).astype(int)
    with ThreadPoolExecutor(n) as pool:
        for done in [
            pool.submit(func, slice(a, b)) for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]:
            done.result()


def class_runs(classes: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted classes as inclusive runs of consecutive values: (1, 3, 8, 9, 10) -> 1, 3, 8-10."""
    runs: list[list[int]] = []
    for value in sorted(set(classes)):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return [(lo, hi) for lo, hi in runs]


def match_classes(
    values: np.ndarray,
    runs: list[tuple[int, int]],
    out: np.ndarray,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """``out[...] = np.isin(values, classes)`` (bool ``out``), a few times faster: each run of
    classes is one equality or one range test (``values - lo <= hi - lo`` wraps around when
    unsigned). Meant for cache-sized blocks; ``scratch`` (the shape of ``values``, bool, or
    None) is reused between calls instead of allocating temporaries."""
    unsigned = values.dtype.kind == "u"
    if len(runs) > 1 and scratch is None:
        scratch = np.empty(values.shape, bool)
    for i, (lo, hi) in enumerate(runs):
        hit = out if i == 0 else scratch
        if lo == hi:
            np.equal(values, lo, out=hit)
        elif unsigned and 0 <= lo and hi <= np.iinfo(values.dtype).max:
            if values.dtype == np.uint8:  # subtract into hit's own bytes, compare in place
                shifted = np.subtract(values, np.uint8(lo), out=hit.view(np.uint8))
            else:
                shifted = values - values.dtype.type(lo)
            np.less_equal(shifted, hi - lo, out=hit)
        else:
            np.logical_and(values >= lo, values <= hi, out=hit)
        if i:
            out |= hit
    if not runs:
        out[...] = False
    return out


def in_classes(values: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """``np.isin(values, classes)`` for class maps (see ``match_classes``), in row bands."""
    runs = class_runs(classes)
    out = np.empty(values.shape, bool)
    in_row_bands(len(values), lambda rows: match_classes(values[rows], runs, out[rows]), 64)
    return out


def overlaps(n_chips: int, chip_len: float, offset: float, n_px: int, px_len: float) -> np.ndarray:
    """``(n_chips, n_px)`` overlap lengths of chips ``[i*chip_len, (i+1)*chip_len)`` with pixels
    ``[offset + r*px_len, offset + (r+1)*px_len)`` on one axis."""
    c = np.arange(n_chips + 1, dtype=np.float64) * chip_len
    p = offset + np.arange(n_px + 1, dtype=np.float64) * px_len
    lo = np.maximum(c[:-1, None], p[None, :-1])
    hi = np.minimum(c[1:, None], p[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def _mask_offsets(grid: ChipGrid, mask_shape: tuple[int, int], mask_transform: Affine):
    """The mask's origin relative to the grid's (x to the right, y downwards) and pixel sizes."""
    t = mask_transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise ValueError(f"masks need a north-up transform, got {tuple(t)[:6]}")
    off_x = t.c - grid.transform.c
    off_y = grid.transform.f - t.f
    px_w, px_h = t.a, -t.e
    covers = (
        off_x <= 1e-9 * px_w
        and off_y <= 1e-9 * px_h
        and off_x + mask_shape[1] * px_w >= grid.nx * grid.chip_width - 1e-9 * px_w
        and off_y + mask_shape[0] * px_h >= grid.ny * grid.chip_height - 1e-9 * px_h
    )
    if not covers:
        raise ValueError(
            f"mask of shape {mask_shape} at {tuple(t)[:6]} does not cover the chip grid "
            f"{grid.ny}x{grid.nx} chips of {grid.size} px at {tuple(grid.transform)[:6]}"
        )
    return off_x, off_y, px_w, px_h


def _whole_pixels(chip_len: float, offset: float, px_len: float) -> int | None:
    """Mask pixels per chip when chips span whole pixels from the same origin, else None."""
    ratio = chip_len / px_len
    k = round(ratio)
    if k >= 1 and abs(ratio - k) < 1e-9 and abs(offset) < 1e-9 * px_len:
        return k
    return None


def chip_fractions(
    mask: np.ndarray, mask_transform: Affine, grid: ChipGrid, classes: tuple[int, ...] | None = None
) -> np.ndarray:
    """Fraction ``(ny, nx)`` of each chip's area where ``mask`` is true (or its mean weight).

    ``mask`` is a 2-D boolean (or 0..1 weight) array georeferenced by ``mask_transform`` in the
    grid's CRS; it must cover the grid. With ``classes``, ``mask`` is a class map and the mask
    is "value in ``classes``", tested chip row by chip row (never a full-size boolean array).
    Exact for integer pixel-size ratios (area weights).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"masks are 2-D, got shape {mask.shape}")
    off_x, off_y, px_w, px_h = _mask_offsets(grid, mask.shape, mask_transform)
    if grid.count == 0:
        return np.zeros((grid.ny, grid.nx))
    kx = _whole_pixels(grid.chip_width, off_x, px_w)
    ky = _whole_pixels(grid.chip_height, off_y, px_h)
    if kx is not None and ky is not None and (classes is not None or mask.dtype == bool):
        return _whole_pixel_counts(mask, grid, kx, ky, classes) / (kx * ky)
    if classes is not None:
        mask = in_classes(mask, classes)
    if kx is not None and ky is not None:  # 0..1 weights on whole pixels
        block = mask[: grid.ny * ky, : grid.nx * kx].reshape(grid.ny, ky, grid.nx, kx)
        return block.sum(axis=(1, 3), dtype=np.float64) / (kx * ky)
    oy = overlaps(grid.ny, grid.chip_height, off_y, mask.shape[0], px_h)
    ox = overlaps(grid.nx, grid.chip_width, off_x, mask.shape[1], px_w)
    # Separable: reduce rows, then columns, each chip row/column over the pixels it overlaps.
    area = _weighted_sums(oy, mask)
    area = _weighted_sums(ox, area.T).T
    return area / (grid.chip_width * grid.chip_height)


def _whole_pixel_counts(
    mask: np.ndarray, grid: ChipGrid, kx: int, ky: int, classes: tuple[int, ...] | None
) -> np.ndarray:
    """Pixels of each chip in the mask (bool) or in ``classes`` (class map), chips spanning
    ``ky`` x ``kx`` whole mask pixels. One chip row at a time, so the test and its temporaries
    stay in the CPU cache: the rows of a chip row are added up first (vector adds of whole
    rows, uint16 is exact below 65536 rows), then each chip's columns."""
    runs = class_runs(classes) if classes is not None else None
    width = grid.nx * kx
    counts = np.empty((grid.ny, grid.nx), dtype=np.int64)
    row_dtype = np.uint16 if ky < 2**16 else np.int64

    def reduce(chip_rows: slice) -> None:
        # whole mask rows (contiguous), only the chips' columns summed; buffers per thread
        hit, scratch = np.empty((2, ky, mask.shape[1]), bool)
        for cy in range(chip_rows.start, chip_rows.stop):
            band = mask[cy * ky : (cy + 1) * ky]
            if runs is not None:
                band = match_classes(band, runs, hit, scratch)
            columns = band[:, :width].view(np.uint8).sum(axis=0, dtype=row_dtype)
            counts[cy] = columns.reshape(grid.nx, kx).sum(axis=1, dtype=np.int64)

    in_row_bands(grid.ny, reduce, min_rows=1)
    return counts


def _weighted_sums(weights: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``weights @ data`` for banded ``weights`` (n_chips, n_px): one matrix-vector product per
    chip over the contiguous pixels it overlaps. Small BLAS-2 calls on purpose: a threaded
    BLAS-3 product stalls for tens of milliseconds on a busy machine."""
    out = np.empty((weights.shape[0], data.shape[1]))
    for i, row in enumerate(weights):
        (hit,) = np.nonzero(row)
        r0, r1 = hit[0], hit[-1] + 1
        out[i] = row[r0:r1] @ data[r0:r1].astype(np.float64, copy=False)
    return out
