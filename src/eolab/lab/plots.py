"""Charts of the storage × format lab (matplotlib, Agg, PNG).

- file-size histograms per format (log-spaced bins, split by band group where the path says);
- mean patch-load time per storage × format with standard-error bars;
- ML training throughput per compute budget, from measured load and staging times, for three
  (four) ways to feed a job: read S3 directly; copy S3 → NVMe then read; download the zipped
  Zarr → NVMe, unzip, then read (and: read the zip on NVMe without unzipping).

Pure functions build the numbers; ``plot_*`` functions only draw and save.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eolab.core.atomic import atomic_path
from eolab.lab import formats as lab_formats
from eolab.lab.formats import ZARR, ZIP
from eolab.sentinel2.safe import BAND_GROUPS

STORAGE_LABELS = {"network": "network drive", "temp": "node-local NVMe (temp)", "s3": "S3"}
_BAND_TO_GROUP = {band: group for group, bands in BAND_GROUPS.items() for band in bands}
_GROUP_RE = re.compile(r"(?:^|/)(10m|20m|60m)(?:/|\.tif$)")
_BAND_RE = re.compile(r"_(B0[1-9]|B1[0-2]|B8A)\.jp2$")


def _figure(figsize: tuple[float, float] = (8, 5), ncols: int = 1, nrows: int = 1) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)


def _save(fig: Any, path: str | os.PathLike) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --- file sizes --------------------------------------------------------------------------------


def group_of(rel_path: str) -> str:
    """The band group a file belongs to (``10m``/``20m``/``60m``) or ``other`` (metadata)."""
    match = _GROUP_RE.search(rel_path)
    if match:
        return match.group(1)
    match = _BAND_RE.search(rel_path)
    if match:
        return _BAND_TO_GROUP[match.group(1)]
    return "other"


def log_bins(sizes: Iterable[int], per_decade: int = 8) -> np.ndarray:
    """Log-spaced bin edges covering every size (at least one byte)."""
    values = np.maximum(np.asarray(list(sizes), dtype=float), 1.0)
    if values.size == 0:
        return np.array([1.0, 10.0])
    lo = math.floor(math.log10(values.min()))
    hi = math.ceil(math.log10(values.max()) + 1e-9)
    hi = max(hi, lo + 1)
    return np.logspace(lo, hi, (hi - lo) * per_decade + 1)


def plot_file_sizes(
    sizes: Mapping[str, Mapping[str, Sequence[int]]], out: str | os.PathLike
) -> Path:
    """One panel per format: histogram of file sizes by band group, log x, mean marked.

    ``sizes[format][group]`` lists file sizes in bytes."""
    formats = [f for f in sizes if any(sizes[f].values())]
    ncols = min(3, max(1, len(formats)))
    nrows = max(1, math.ceil(len(formats) / ncols))
    fig, axes = _figure((5.2 * ncols, 3.8 * nrows), ncols, nrows)
    for ax in axes.flat[len(formats) :]:
        ax.set_visible(False)
    for ax, fmt in zip(axes.flat, formats, strict=False):
        groups = {g: v for g, v in sizes[fmt].items() if len(v)}
        bins = log_bins([s for v in groups.values() for s in v])
        for group in sorted(groups):
            values = np.maximum(np.asarray(groups[group], dtype=float), 1.0)
            mean = float(values.mean())
            (line,) = ax.plot([], [])
            color = line.get_color()
            ax.hist(
                values,
                bins=bins,
                alpha=0.55,
                color=color,
                label=f"{group}: {len(values)} files, mean {_human(mean)}",
            )
            ax.axvline(mean, color=color, linestyle="--", linewidth=1)
        total = sum(sum(v) for v in groups.values())
        count = sum(len(v) for v in groups.values())
        ax.set_xscale("log")
        ax.set_title(f"{lab_formats.label(fmt)}: {count} files, {_human(total)}")
        ax.set_xlabel("file size (bytes, log scale)")
        ax.set_ylabel("files")
        ax.legend(fontsize=7)
    fig.suptitle("File sizes per format")
    fig.tight_layout()
    return _save(fig, out)


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"


# --- load times --------------------------------------------------------------------------------


def plot_load_times(result: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """Grouped bars: mean patch-load time per format (groups) and storage (bars), ± stderr."""
    results = result["results"]
    storages = list(results)
    formats: list[str] = []
    for storage in storages:
        formats += [f for f in results[storage] if f not in formats]
    fig, axes = _figure((max(7.0, 1.6 * len(formats) + 3), 5))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(storages))
    x = np.arange(len(formats))
    for i, storage in enumerate(storages):
        means = [results[storage].get(f, {}).get("mean_durations", np.nan) for f in formats]
        errs = [results[storage].get(f, {}).get("stderr_durations", 0.0) or 0.0 for f in formats]
        bars = ax.bar(
            x + (i - (len(storages) - 1) / 2) * width,
            means,
            width,
            yerr=errs,
            capsize=3,
            label=STORAGE_LABELS.get(storage, storage),
        )
        for bar, mean in zip(bars, means, strict=True):
            if np.isfinite(mean):
                ax.annotate(
                    f"{mean:.3g}s",
                    (bar.get_x() + bar.get_width() / 2, mean),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(x, [lab_formats.label(f) for f in formats], rotation=20, ha="right")
    for tick, fmt in zip(ax.get_xticklabels(), formats, strict=True):
        tick.set_color(lab_formats.colour(fmt))
    ax.set_yscale("log")
    ax.set_ylabel("mean load time of one patch time series (s, log)")
    n = _repeats(results)
    ax.set_title(f"Patch load time, {result.get('tile')} {result.get('year')} (n={n}, ± stderr)")
    ax.legend()
    return _save(fig, out)


def _repeats(results: Mapping[str, Any]) -> int:
    for per_format in results.values():
        for entry in per_format.values():
            return len(entry.get("durations", []))
    return 0


# --- throughput per compute budget -------------------------------------------------------------


def throughput_curves(
    load_s: Mapping[str, Mapping[str, float]],
    staging_s: Mapping[str, float],
    budgets_s: np.ndarray,
    fmt: str = ZARR,
) -> dict[str, np.ndarray]:
    """Patches per second over a whole job of each budget, per way of feeding it.

    ``load_s[storage][format]`` is the mean patch-load time; ``staging_s`` holds
    ``download:<format>`` (S3 → NVMe) and ``unzip`` seconds. Staging time produces no patches:
    throughput = max(0, budget - staging) / budget / load time.
    """
    curves: dict[str, np.ndarray] = {}

    def after(stage: float, load: float) -> np.ndarray:
        return np.maximum(0.0, budgets_s - stage) / budgets_s / load

    if fmt in load_s.get("s3", {}):
        curves[f"read {lab_formats.label(fmt)} from S3 directly"] = np.full(
            budgets_s.shape, 1.0 / load_s["s3"][fmt]
        )
    temp = load_s.get("temp", {})
    if fmt in temp and f"download:{fmt}" in staging_s:
        curves["copy S3 → NVMe, then read"] = after(staging_s[f"download:{fmt}"], temp[fmt])
    zip_dl = staging_s.get(f"download:{ZIP}")
    if zip_dl is not None and "unzip" in staging_s and ZARR in temp:
        curves["zipped S3 → NVMe, unzip, then read"] = after(
            zip_dl + staging_s["unzip"], temp[ZARR]
        )
    if zip_dl is not None and ZIP in temp:
        curves["zipped S3 → NVMe, read the zip"] = after(zip_dl, temp[ZIP])
    return curves


def budget_range(staging_s: Mapping[str, float]) -> tuple[float, float]:
    """Budgets (s) worth plotting: from a third of the shortest staging to 1000x the longest
    (at least one minute to one day), so tiny demo runs and real tile-years both show the
    crossover."""
    values = [v for v in staging_s.values() if v > 0]
    lo = min(values) / 3 if values else 60.0
    hi = max(values) * 1000 if values else 86400.0
    return min(lo, 60.0), max(hi, 86400.0)


def plot_throughput(
    result: Mapping[str, Any],
    staging_s: Mapping[str, float],
    out: str | os.PathLike,
    fmt: str = ZARR,
) -> Path:
    """Throughput (patch time series per second) against the job's compute budget (log s)."""
    load_s = {
        storage: {f: v["mean_durations"] for f, v in per_format.items()}
        for storage, per_format in result["results"].items()
    }
    used = {
        k: v for k, v in staging_s.items() if k in (f"download:{fmt}", f"download:{ZIP}", "unzip")
    }
    lo, hi = budget_range(used)
    budgets = np.logspace(math.log10(lo), math.log10(hi), 300)
    curves = throughput_curves(load_s, staging_s, budgets, fmt)
    fig, axes = _figure((8.5, 5))
    ax = axes[0, 0]
    for label, values in curves.items():
        ax.plot(budgets, values, label=label, linewidth=2)
    for seconds, name in ((60, "1 min"), (3600, "1 h"), (86400, "1 day")):
        if lo <= seconds <= hi:
            ax.axvline(seconds, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                name,
                (seconds, 0),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=8,
                color="grey",
            )
    ax.set_xscale("log")
    ax.set_xlabel("compute budget of the job (s, log)")
    ax.set_ylabel("training throughput (patch time series / s)")
    staged = ", ".join(f"{k} {v:.3g} s" for k, v in sorted(used.items()))
    ax.set_title(
        f"Throughput per compute budget ({lab_formats.label(fmt)})\n"
        f"measured staging: {staged or 'none'}",
        fontsize=9,
    )
    if curves:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no S3 or temp measurements", transform=ax.transAxes, ha="center")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out)


# --- inputs of the charts ------------------------------------------------------------------------


def file_sizes(datasets: Mapping[str, Any]) -> dict[str, dict[str, list[int]]]:
    """``{format: {group: [file sizes]}}`` of :class:`eolab.lab.staging.Dataset` objects."""
    out: dict[str, dict[str, list[int]]] = {}
    for fmt, ds in datasets.items():
        groups: dict[str, list[int]] = {}
        for rel in ds.files:
            groups.setdefault(group_of(rel), []).append((ds.root / rel).stat().st_size)
        out[fmt] = groups
    return out


def staging_seconds(timings: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``download:<format>`` and ``unzip`` seconds from staging timing JSON documents."""
    out: dict[str, float] = {}
    for doc in timings:
        if doc.get("operation") == "download":
            out[f"download:{doc['format']}"] = float(doc["seconds"])
        elif doc.get("operation") == "unzip":
            out["unzip"] = float(doc["seconds"])
    return out
