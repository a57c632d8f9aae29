"""Pre-chipping: cut a sample of indexed chips into ``.npz`` batches for training.

Chips are chosen by filters on the index statistics and sampled **without** replacement
(stacchip's prechip draws with replacement, so one chip can appear twice in a training set), in a
seeded, order-independent way: rows are sorted by ``chipid`` before the draw. Each batch
``batch_NNNNN.npz`` holds ``pixels`` (chip, band, y, x) in the source dtype, the chip ids, items,
dates, native bounds and WGS84 centres, and its own per-band sums, so a rerun keeps finished
batches (same chip ids) and only cuts the rest. ``prechip.json`` (written last) has the
selection, the batch files and per-band statistics over every chosen chip: count, mean, std,
min, max of valid pixels (nodata 0 excluded, which would drag means down).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer

from eolab.chips.chipper import Chipper
from eolab.core.atomic import atomic_open, write_json
from eolab.core.errors import InputError
from eolab.core.progress import bar as progress_bar
from eolab.core.provenance import environment


@dataclass(frozen=True)
class ChipFilter:
    """Which chips may be sampled (bounds are inclusive)."""

    max_cloud: float = 1.0
    max_nodata: float = 1.0
    platforms: tuple[str, ...] = ()
    start: str | None = None  # ISO date
    end: str | None = None

    def apply(self, index: pd.DataFrame) -> pd.DataFrame:
        keep = (index["cloud_cover_percentage"] <= self.max_cloud) & (
            index["nodata_percentage"] <= self.max_nodata
        )
        if self.platforms:
            keep &= index["platform"].isin(self.platforms)
        dates = pd.to_datetime(index["date"].astype(str))
        if self.start:
            keep &= dates >= pd.Timestamp(self.start)
        if self.end:
            keep &= dates <= pd.Timestamp(self.end)
        return index[keep.to_numpy()]


def select_chips(index: pd.DataFrame, filters: ChipFilter, sample: int, seed: int) -> pd.DataFrame:
    """Up to ``sample`` distinct chips passing ``filters``, drawn without replacement with
    ``seed``; the same index, filters and seed give the same chips in the same order."""
    if sample < 1:
        raise InputError(f"prechip sample must be at least 1, got {sample}")
    candidates = filters.apply(index).sort_values("chipid", kind="stable")
    if candidates["chipid"].duplicated().any():
        dup = candidates["chipid"][candidates["chipid"].duplicated()].iloc[0]
        raise InputError(f"chip index lists chip {dup} twice; merge the indexes first")
    rng = np.random.default_rng(seed)
    n = min(sample, len(candidates))
    picked = rng.choice(len(candidates), size=n, replace=False)
    return candidates.iloc[picked].reset_index(drop=True)


@dataclass
class BandStats:
    """Running per-band count, mean, M2 (sum of squared deviations), min, max; mergeable."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def empty(cls, bands: int) -> BandStats:
        return cls(
            np.zeros(bands, np.int64),
            np.zeros(bands),
            np.zeros(bands),
            np.full(bands, np.inf),
            np.full(bands, -np.inf),
        )

    @classmethod
    def of(cls, pixels: np.ndarray, nodata: float | None = 0) -> BandStats:
        """Statistics of ``pixels`` (chip, band, y, x) per band, ignoring ``nodata``."""
        values = np.moveaxis(pixels, 1, 0).reshape(pixels.shape[1], -1).astype(np.float64)
        valid = np.ones_like(values, bool) if nodata is None else values != nodata
        count = valid.sum(axis=1)
        total = np.where(valid, values, 0).sum(axis=1)
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        m2 = np.where(valid, (values - mean[:, None]) ** 2, 0).sum(axis=1)
        vmin = np.where(valid, values, np.inf).min(axis=1)
        vmax = np.where(valid, values, -np.inf).max(axis=1)
        return cls(count.astype(np.int64), mean, m2, vmin, vmax)

    def merge(self, other: BandStats) -> BandStats:
        """Chan et al.'s parallel combination of two sets of moments."""
        n = self.count + other.count
        delta = other.mean - self.mean
        safe_n = np.where(n > 0, n, 1)
        mean = self.mean + delta * other.count / safe_n
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe_n
        return BandStats(
            n, mean, m2, np.minimum(self.min, other.min), np.maximum(self.max, other.max)
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"stat_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_arrays(cls, data) -> BandStats:
        return cls(*(np.asarray(data[f"stat_{k}"]) for k in ("count", "mean", "m2", "min", "max")))

    def summary(self, bands: list[str]) -> dict[str, dict[str, float]]:
        std = np.sqrt(
            np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0)
        )
        return {
            band: {
                "count": int(self.count[i]),
                "mean": float(self.mean[i]),
                "std": float(std[i]),
                "min": float(self.min[i]) if self.count[i] else None,
                "max": float(self.max[i]) if self.count[i] else None,
            }
            for i, band in enumerate(bands)
        }


def check_uniform(chosen: pd.DataFrame) -> None:
    """Refuse a selection whose chips differ in ground size: their pixels cannot share a batch."""
    sizes = sorted(
        {
            (round(w, 3), round(h, 3))
            for w, h in zip(
                chosen["native_xmax"] - chosen["native_xmin"],
                chosen["native_ymax"] - chosen["native_ymin"],
                strict=True,
            )
        }
    )
    if len(sizes) > 1:
        listed = ", ".join(f"{w:g} x {h:g} m" for w, h in sizes)
        raise InputError(
            f"the selected chips differ in size ({listed}); prechip one chip size at a time "
            "(filter by platform)"
        )


def _check_bands(chips: list, bands: list[str]) -> None:
    for chip in chips:
        if list(chip.bands) != bands:
            raise InputError(
                f"chip {chip.chipid} has bands {list(chip.bands)}, the others {bands}; prechip "
                "one sensor at a time (filter by platform)"
            )


def _batch_arrays(chips: list, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    _check_bands(chips, list(chips[0].bands))
    arrays = {
        "pixels": np.stack([c.pixels for c in chips]),
        "chipid": np.array([c.chipid for c in chips], dtype=np.str_),
        "item_id": rows["item_id"].to_numpy().astype(np.str_),
        "platform": rows["platform"].to_numpy().astype(np.str_),
        "date": pd.to_datetime(rows["date"].astype(str)).to_numpy().astype("datetime64[D]"),
        "native_crs": rows["native_crs"].to_numpy().astype(np.str_),
        "native_bounds": rows[
            ["native_xmin", "native_ymin", "native_xmax", "native_ymax"]
        ].to_numpy(np.float64),
        "bands": np.array(chips[0].bands, dtype=np.str_),
    }
    arrays["lonlat"] = centres_lonlat(rows)
    return arrays


def centres_lonlat(rows: pd.DataFrame) -> np.ndarray:
    """WGS84 (lon, lat) of chip centres, transformed from the native bounds."""
    out = np.empty((len(rows), 2))
    cx = ((rows["native_xmin"] + rows["native_xmax"]) / 2).to_numpy()
    cy = ((rows["native_ymin"] + rows["native_ymax"]) / 2).to_numpy()
    crs = rows["native_crs"].to_numpy()
    for code in np.unique(crs):
        at = crs == code
        to_wgs = Transformer.from_crs(code, "EPSG:4326", always_xy=True)
        out[at, 0], out[at, 1] = to_wgs.transform(cx[at], cy[at])
    return out


def _existing_batch(path: Path, chipids: list[str]) -> BandStats | None:
    """Statistics of a finished batch with exactly these chips, else None."""
    try:
        with np.load(path) as data:
            if data["chipid"].tolist() == chipids:
                return BandStats.from_arrays(data)
    except (OSError, KeyError, ValueError):
        return None
    return None


def prechip(
    index: pd.DataFrame,
    chipper: Chipper,
    out_dir: str | Path,
    filters: ChipFilter,
    sample: int,
    seed: int = 42,
    batch_size: int = 64,
    nodata: float | None = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Select chips, cut them into ``out_dir/batch_NNNNN.npz`` and write ``prechip.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = select_chips(index, filters, sample, seed)
    if chosen.empty:
        raise InputError(f"no chip passes the prechip filters {filters}")
    check_uniform(chosen)
    total: BandStats | None = None
    bands: list[str] = []
    batches = []
    starts = range(0, len(chosen), batch_size)
    for b, start in enumerate(
        progress_bar(starts, desc="prechip", unit="batch", disable=not progress)
    ):
        rows = chosen.iloc[start : start + batch_size]
        path = out_dir / f"batch_{b:05d}.npz"
        stats = _existing_batch(path, rows["chipid"].tolist()) if path.exists() else None
        if stats is None:
            chips = [chipper.chip(row) for row in rows.to_dict("records")]
            if bands:
                _check_bands(chips, bands)
            arrays = _batch_arrays(chips, rows)
            stats = BandStats.of(arrays["pixels"], nodata)
            with atomic_open(path, "wb") as fh:
                np.savez(fh, **arrays, **stats.arrays())
        if not bands:
            with np.load(path) as data:
                bands = data["bands"].tolist()
                shape = list(data["pixels"].shape[1:])
                dtype = str(data["pixels"].dtype)
        total = stats if total is None else total.merge(stats)
        batches.append({"file": path.name, "chips": len(rows)})
    manifest = {
        "filters": asdict(filters),
        "sample_requested": sample,
        "chips": len(chosen),
        "candidates": len(filters.apply(index)),
        "index_rows": len(index),
        "seed": seed,
        "batch_size": batch_size,
        "resolution": chipper.resolution,
        "bands": bands,
        "chip_shape": shape,
        "dtype": dtype,
        "nodata": nodata,
        "band_stats": total.summary(bands),
        "batches": batches,
        "chipids": chosen["chipid"].tolist(),
        "environment": environment(),
    }
    write_json(out_dir / "prechip.json", manifest)
    # batches of an earlier, larger selection would otherwise pass for part of this one
    listed = {b["file"] for b in batches}
    for stale in out_dir.glob("batch_*.npz"):
        if stale.name not in listed:
            stale.unlink()
    return manifest
