"""Map-style datasets of patch time series for training loops (numpy; see ``eolab.train.torch``).

:class:`PatchSeriesDataset` reads :class:`~eolab.train.sampling.Sample` s from the Sentinel-2
cube in any format eolab writes (``zarr``, ``zarr-sharded``, ``zarr-zip``; ``cog`` as the slow
reference) on a local path or S3, through the patch-load benchmark's loaders
(:func:`eolab.lab.patchload.open_loader`): the same pixels the benchmark checks across formats.

One item is a dict of numpy arrays:

- ``10m``, ``20m``, ``60m``: uint16 ``(time, band, y, x)`` raw DN per band group (bands in
  ``eolab.sentinel2.safe.BAND_GROUPS`` order), or, with ``resolution`` set, ``image``: uint16
  ``(time, 13, y, x)`` with every group resampled by nearest neighbour to ``resolution`` metres
  (bands as ``dataset.bands``: the 10 m, then the 20 m, then the 60 m group);
- ``valid``: bool ``(time, y, x)`` on the finest output grid, True where no band is nodata (0);
- ``time``: int64 ``(time,)`` sensing times, ms since 1970-01-01 UTC;
- ``bounds``: float64 ``(xmin, ymin, xmax, ymax)`` in the tile's CRS; ``crs`` (``EPSG:…``),
  ``key`` (the sample's name) and ``index``.

Loaders are opened lazily, in the process that reads, and dropped (not closed) in a forked
child: a DataLoader worker never uses its parent's S3 sessions or file handles, and pickling the
dataset (spawn workers) carries only the configuration.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from eolab.core.errors import InputError
from eolab.core.s3 import S3Access
from eolab.lab.patchload import GROUPS, Grid, Loader, Patch, open_loader
from eolab.lab.staging import Dataset, dataset
from eolab.sentinel2.safe import BAND_GROUPS
from eolab.train.sampling import Sample

FORMATS = ("zarr", "zarr-sharded", "zarr-zip", "cog")
BANDS: tuple[str, ...] = tuple(b for g in GROUPS for b in BAND_GROUPS[g])
NODATA = 0


@dataclass(frozen=True)
class CubeSource:
    """Where one format's tile-year stores are: per ``(tile, year)`` the entry point (Zarr store,
    zip or COG listing) as a local path, or as an S3 key when ``s3`` is given. One Zarr store
    may hold several tile-years (give it for each)."""

    fmt: str
    entries: Mapping[tuple[str, int], str]
    s3: S3Access | None = field(default=None, repr=False)
    loader_threads: int = 4

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InputError(f"format {self.fmt!r}: expected one of {', '.join(FORMATS)}")
        if not self.entries:
            raise InputError(f"{self.fmt} cube: no tile-year stores given")

    @property
    def storage(self) -> str:
        return "s3" if self.s3 is not None else "local"

    def describe(self, tile: str, year: int) -> str:
        where = self.entry(tile, year)
        return f"s3://{self.s3.bucket}/{where}" if self.s3 is not None else where

    def entry(self, tile: str, year: int) -> str:
        try:
            return str(self.entries[tile, int(year)])
        except KeyError:
            raise InputError(
                f"{self.fmt} cube: no store for tile {tile} year {year} "
                f"(have {sorted(self.entries)})"
            ) from None

    def open(self, tile: str, year: int) -> Loader:
        """An opened patch loader of one tile-year (in the calling process)."""
        entry = self.entry(tile, year)
        if self.s3 is None:
            ds, prefix = dataset(self.fmt, entry), ""
        else:
            key = PurePosixPath(entry.strip("/"))
            ds, prefix = Dataset(self.fmt, Path("."), key.name, ()), str(key.parent).strip(".")
        return open_loader(
            self.fmt,
            self.storage,
            ds,
            tile,
            int(year),
            s3=self.s3,
            s3_prefix=prefix,
            workers=self.loader_threads,
        )


def loader_times(loader: Loader) -> np.ndarray:
    """Sensing times (int64 ms UTC) of a loader's dates, in its time order."""
    if loader.format == "cog":
        stamps = [item.get("datetime") for item in loader.items]
        if any(s is None for s in stamps):
            raise InputError(f"{loader.format}: COG listing without product datetimes")
        days = np.array([np.datetime64(str(s).replace("Z", "").split("+")[0]) for s in stamps])
        return days.astype("datetime64[ms]").astype(np.int64)
    import zarr

    array = zarr.open_array(loader.store, path=f"{loader.path}/{GROUPS[0]}/time", mode="r")
    return np.asarray(array[:], dtype=np.int64)


def days_of(times_ms: np.ndarray) -> np.ndarray:
    """ISO days (``YYYY-MM-DD``, UTC) of int64 ms timestamps."""
    return np.datetime_as_string(times_ms.astype("datetime64[ms]"), unit="D")


def resample_nearest(
    block: np.ndarray,
    src_res: float,
    out_res: float,
    n: int,
    dx: float = 0.0,
    dy: float = 0.0,
) -> np.ndarray:
    """Nearest-neighbour resampling of the last two axes to the ``n`` px square of ``out_res``
    m whose corner is ``dx`` m right of and ``dy`` m below the block's: each output pixel takes
    the source pixel holding its centre, as the chipper does (integer upsampling repeats pixels
    exactly)."""
    steps = (np.arange(n) + 0.5) * out_res
    cols = np.floor((dx + steps) / src_res + 1e-9).astype(np.int64)
    rows = np.floor((dy + steps) / src_res + 1e-9).astype(np.int64)
    return block[..., rows[:, None], cols[None, :]]


def covering_patch(patch: Patch, grids: Mapping[str, Grid]) -> Patch:
    """The smallest square aligned to every group's pixels that holds ``patch`` (a chip of the
    index need not align to the 60 m grid; the loaders read aligned squares only)."""
    grid = max(grids.values(), key=lambda g: g.res)
    step = grid.res
    x0 = grid.ulx + math.floor((patch.x_min - grid.ulx) / step + 1e-9) * step
    y0 = grid.uly - math.floor((grid.uly - patch.y_max) / step + 1e-9) * step
    x1 = patch.x_min + patch.size
    y1 = patch.y_max - patch.size
    side = max(math.ceil((x1 - x0) / step - 1e-9), math.ceil((y0 - y1) / step - 1e-9)) * step
    # keep the square inside the tile when widening it would cross the right or bottom edge
    x0 = min(x0, grid.ulx + (grid.width * step - side))
    y0 = max(y0, grid.uly - (grid.height * step - side))
    return Patch(x0, y0, side)


def aligned(patch: Patch, grids: Mapping[str, Grid]) -> bool:
    """True when ``patch`` lies on every group's pixel edges (the loaders can read it as is)."""
    return all(
        abs(v - round(v)) < 1e-6
        for g in grids.values()
        for v in ((patch.x_min - g.ulx) / g.res, (g.uly - patch.y_max) / g.res, patch.size / g.res)
    )


@functools.cache
def tile_crs(tile: str) -> str:
    """``EPSG:326xx``/``327xx`` of an MGRS tile."""
    from eolab.sentinel2.mgrs import tile_grid

    return tile_grid(tile).crs


class PatchSeriesDataset:
    """``dataset[i]`` -> the arrays of ``samples[i]`` read from ``source`` (module docstring).

    ``resolution`` (m) stacks all bands on one grid instead of returning the three groups; the
    patch side must then be a whole number of ``resolution`` pixels.
    """

    def __init__(
        self,
        source: CubeSource,
        samples: Sequence[Sample],
        resolution: float | None = None,
    ) -> None:
        self.source = source
        self.samples = list(samples)
        self.resolution = resolution
        self.bands = BANDS if resolution else None
        self._pid = os.getpid()
        self._loaders: dict[tuple[str, int], Loader] = {}
        self._times: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_loaders"], state["_times"] = {}, {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def _loader(self, tile: str, year: int) -> Loader:
        if self._pid != os.getpid():  # a forked worker: the parent's loaders are not ours
            self._loaders, self._times, self._pid = {}, {}, os.getpid()
        key = (tile, int(year))
        if key not in self._loaders:
            loader = self.source.open(tile, year)
            self._times[key] = loader_times(loader)
            self._loaders[key] = loader
        return self._loaders[key]

    def grids(self, tile: str, year: int) -> dict[str, Grid]:
        """The band-group grids of a tile-year store (for random samples)."""
        return self._loader(tile, year).grids

    def times(self, tile: str, year: int) -> np.ndarray:
        """Sensing times (int64 ms) of every date of a tile-year store."""
        self._loader(tile, year)
        return self._times[tile, int(year)]

    def _read_year(self, sample: Sample, year: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        wanted = [d for d in sample.dates if d.startswith(str(year))]
        if sample.dates and not wanted:
            raise InputError(f"sample {sample.key}: none of its dates is in year {year}")
        loader = self._loader(sample.tile, year)
        times = self._times[sample.tile, int(year)]
        if not sample.dates:
            return loader.load(self._read_patch(sample, loader)), times
        days = days_of(times)
        positions = np.flatnonzero(np.isin(days, wanted))
        missing = sorted(set(wanted) - set(days[positions]))
        if missing:
            raise InputError(
                f"{self.source.describe(sample.tile, year)}: sample {sample.key} asks for "
                f"dates {missing} the store does not hold (index and cube out of step?)"
            )
        first, last = int(positions[0]), int(positions[-1])
        arrays = loader.load(self._read_patch(sample, loader), slice(first, last + 1))
        take = positions - first
        if len(take) != last + 1 - first:  # clear dates with cloudy ones between them
            arrays = {g: a[take] for g, a in arrays.items()}
        return arrays, times[positions]

    def _read_patch(self, sample: Sample, loader: Loader) -> Patch:
        """What the loader reads: the sample's square, or with ``resolution`` the aligned square
        around it (cut to the sample when resampling)."""
        if aligned(sample.patch, loader.grids):
            return sample.patch
        if not self.resolution:
            raise InputError(
                f"sample {sample.key}: the square does not align to every band group's pixels "
                "(chips of the index rarely align to 60 m): give resolution= to resample"
            )
        return covering_patch(sample.patch, loader.grids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.samples[i]
        parts = [self._read_year(sample, year) for year in sample.years]
        groups = {g: np.concatenate([p[0][g] for p in parts]) for g in GROUPS}
        times = np.concatenate([p[1] for p in parts])
        patch = sample.patch
        finest = self.resolution or min(float(g.removesuffix("m")) for g in GROUPS)
        n = round(patch.size / finest)
        if abs(patch.size / finest - n) > 1e-6:
            raise InputError(f"sample {sample.key}: {patch.size} m is not whole {finest} m pixels")
        item: dict[str, Any] = {}
        if self.resolution:
            read = self._read_patch(sample, self._loader(sample.tile, sample.years[0]))
            dx, dy = patch.x_min - read.x_min, read.y_max - patch.y_max
            image = np.concatenate(
                [
                    resample_nearest(groups[g], float(g.removesuffix("m")), finest, n, dx, dy)
                    for g in GROUPS
                ],
                axis=1,
            )
            item["image"] = image
            item["valid"] = (image != NODATA).all(axis=1)
        else:
            item.update(groups)
            item["valid"] = np.logical_and.reduce(
                [
                    resample_nearest(
                        (a != NODATA).all(axis=1), float(g.removesuffix("m")), finest, n
                    )
                    for g, a in groups.items()
                ]
            )
        item.update(
            time=times,
            bounds=np.array(
                [patch.x_min, patch.y_max - patch.size, patch.x_min + patch.size, patch.y_max]
            ),
            crs=tile_crs(sample.tile),
            key=sample.key,
            index=int(i),
        )
        return item

    def close(self) -> None:
        """Close the loaders this process opened."""
        if self._pid == os.getpid():
            for loader in self._loaders.values():
                loader.close()
        self._loaders, self._times = {}, {}

    def __enter__(self) -> PatchSeriesDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
