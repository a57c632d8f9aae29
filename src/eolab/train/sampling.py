"""Which patches a training run sees, and in which order (pure numpy, no framework).

A :class:`Sample` is one square of one tile plus the dates to read: one date (``per="date"``),
the clear dates of a year (``per="year"``) or of several years (``per="years"``, a series that
spans the tile-year stores of those years). Samples come from the GeoParquet chip index as
:func:`eolab.chips.merge.read_index` reads it (:func:`index_samples`: filtered by cloud and nodata
fractions, dates and tiles) or are random squares as the patch-load benchmark draws them
(:func:`random_samples`).

:func:`epoch_order` is the training loop's view: a seeded permutation per epoch, split across
ranks the way ``torch.utils.data.DistributedSampler`` splits it (rank ``r`` takes every
``world_size``-th index from ``r``) but never padded, so no sample is seen twice in an epoch,
and resumable from an offset into the rank's share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eolab.core.errors import InputError
from eolab.lab.patchload import DEFAULT_ALIGN_M, DEFAULT_PATCH_M, Grid, Patch, random_patches

PER = ("date", "year", "years")
_TILE_RE = re.compile(r"_T(\d{2}[A-Z]{3})_")


@dataclass(frozen=True)
class Sample:
    """One training sample: a square of ``tile`` over the dates ``dates`` (ISO days, sorted) in
    the tile-year stores of ``years``; ``dates`` empty means every date of those years."""

    tile: str
    years: tuple[int, ...]
    patch: Patch
    dates: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable name (for logs, duplicate checks and resume bookkeeping)."""
        p = self.patch
        years = "+".join(map(str, self.years))
        days = f"@{self.dates[0]}" if len(self.dates) == 1 else f"#{len(self.dates) or 'all'}"
        return f"{self.tile}/{years}/{p.x_min:.0f}_{p.y_max:.0f}_{p.size:.0f}{days}"


def tile_of(item_id: str) -> str:
    """The MGRS tile of a Sentinel-2 product id (``…_T35VLH_…``)."""
    match = _TILE_RE.search(item_id)
    if not match:
        raise InputError(f"chip index item {item_id!r}: no MGRS tile (_Txxxxx_) in its id")
    return match.group(1)


def filter_chips(
    index: pd.DataFrame,
    *,
    max_cloud: float = 1.0,
    max_nodata: float = 1.0,
    start: str | None = None,
    end: str | None = None,
    tiles: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The chips (one row per chip and date) with cloud and nodata fractions at most the given
    ones, dated within ``start``..``end`` (inclusive ISO days), on ``tiles``; with ``tile`` and
    ``day`` (ISO) columns added."""
    table = index.copy()
    table["tile"] = [tile_of(i) for i in table["item_id"]]
    table["day"] = pd.to_datetime(table["datetime"], utc=True).dt.strftime("%Y-%m-%d")
    keep = (table["cloud_cover_percentage"] <= max_cloud) & (
        table["nodata_percentage"] <= max_nodata
    )
    if start:
        keep &= table["day"] >= start
    if end:
        keep &= table["day"] <= end
    if tiles:
        keep &= table["tile"].isin(list(tiles))
    return table[keep]


def index_samples(
    index: pd.DataFrame,
    *,
    per: str = "date",
    max_cloud: float = 1.0,
    max_nodata: float = 1.0,
    start: str | None = None,
    end: str | None = None,
    tiles: Sequence[str] | None = None,
    min_dates: int = 1,
) -> list[Sample]:
    """Samples from a chip index (see :func:`filter_chips` for the filters), sorted by key.

    ``per="date"``: one sample per chip and clear date. ``"year"``: one per chip and year, over
    its clear dates. ``"years"``: one per chip over its clear dates of every year in range. A
    series needs at least ``min_dates`` clear dates.
    """
    if per not in PER:
        raise InputError(f"per={per!r}: expected one of {', '.join(PER)}")
    table = filter_chips(
        index, max_cloud=max_cloud, max_nodata=max_nodata, start=start, end=end, tiles=tiles
    )
    table = table.assign(year=table["day"].str[:4].astype(int))
    corner = ["tile", "native_xmin", "native_ymax", "native_xmax"]
    by = {"date": [*corner, "day"], "year": [*corner, "year"], "years": corner}[per]
    samples = []
    for keys, rows in table.groupby(by, sort=True):
        tile, xmin, ymax, xmax = keys[:4]
        days = tuple(sorted(set(rows["day"])))
        if len(days) < min_dates:
            continue
        years = tuple(sorted({int(d[:4]) for d in days}))
        samples.append(Sample(tile, years, Patch(float(xmin), float(ymax), xmax - xmin), days))
    return sorted(samples, key=lambda s: s.key)


def random_samples(
    grids: dict[str, Grid],
    count: int,
    seed: int,
    tile: str,
    years: Sequence[int],
    size_m: float = DEFAULT_PATCH_M,
    align_m: float = DEFAULT_ALIGN_M,
) -> list[Sample]:
    """``count`` seeded random squares over every date of ``years``, as the patch-load benchmark
    draws them (:func:`eolab.lab.patchload.random_patches`)."""
    patches = random_patches(grids, count, seed, size_m, align_m)
    return [Sample(tile, tuple(years), p) for p in patches]


def epoch_order(
    n: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    start: int = 0,
) -> np.ndarray:
    """The sample indices rank ``rank`` reads in ``epoch``, from position ``start`` on.

    One permutation of ``range(n)`` per (seed, epoch), the same on every rank; rank ``r``
    takes positions ``r, r + world_size, …``. Unlike DistributedSampler nothing is padded (no
    sample twice per epoch): ranks differ by at most one sample unless ``drop_last`` cuts the
    permutation to a multiple of ``world_size`` (equal shares for collective ops). ``start``
    skips what this rank already read (resume after preemption).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"rank {rank} of world_size {world_size}: need 0 <= rank < world_size")
    if start < 0:
        raise InputError(f"start offset {start} is negative")
    order = (
        np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    ).astype(np.int64)
    if drop_last:
        order = order[: n - n % world_size]
    return order[rank::world_size][start:]


def worker_share(indices: np.ndarray, worker: int, workers: int) -> np.ndarray:
    """The part of ``indices`` one of ``workers`` data-loading processes reads (for iterable
    pipelines; a map-style DataLoader hands out indices itself)."""
    if workers < 1 or not 0 <= worker < workers:
        raise InputError(f"worker {worker} of {workers}: need 0 <= worker < workers")
    return indices[worker::workers]
