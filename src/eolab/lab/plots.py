"""Charts of the storage × format lab (matplotlib, Agg, PNG), in the report's one style.

- file-size histograms per format (log-spaced bins shared by every panel, stacked by band group);
- mean patch-load time per storage × format, ± one standard deviation, with the decode lower
  bound where the benchmark measured it;
- ML training throughput per compute budget: from the train-feed benchmark's measured staging
  seconds and DataLoader samples/s when that result exists ("measured"); otherwise calculated
  from single-process load times and staging times, and labelled so.

``draw_*`` functions build a figure (tests inspect it); ``plot_*`` draw and save.
Colours, order, numbers and captions come from :mod:`eolab.report.style`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eolab.lab import formats as lab_formats
from eolab.lab.formats import SHARDED, ZARR, ZIP
from eolab.report import style
from eolab.sentinel2.safe import BAND_GROUPS

_BAND_TO_GROUP = {band: group for group, bands in BAND_GROUPS.items() for band in bands}
_GROUP_RE = re.compile(r"(?:^|/)(10m|20m|60m)(?:/|\.tif$)")
_BAND_RE = re.compile(r"_(B0[1-9]|B1[0-2]|B8A)\.jp2$")
GROUP_ORDER = ("10m", "20m", "60m", "other")


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


def _count(sizes: Mapping[str, Sequence[int]]) -> int:
    return sum(len(v) for v in sizes.values())


def draw_file_sizes(
    sizes: Mapping[str, Mapping[str, Sequence[int]]],
    tile: str | None = None,
    year: int | None = None,
) -> Any:
    """One panel per format: stacked histogram of file sizes by band group, same log x axis
    in every panel, group means dashed. ``sizes[format][group]`` lists sizes in bytes."""
    fmts = style.ordered_formats(f for f in sizes if any(len(v) for v in sizes[f].values()))
    totals = {f: sum(int(x) for v in sizes[f].values() for x in v) for f in fmts}
    ncols = 2 if len(fmts) == 4 else min(3, max(1, len(fmts)))
    nrows = max(1, math.ceil(len(fmts) / ncols))
    where = f", tile {tile} {year}" if tile else ""
    fig, axes = style.new_figure(
        f"File sizes per format{where}",
        style.conditions_subtitle(
            tile=tile,
            year=year,
            extra=["bins: 8 per decade, shared by every panel", "dashed: mean per band group"],
        ),
        nrows=nrows,
        ncols=ncols,
        figsize=(5.0 * ncols, 3.6 * nrows + 0.6),
        demo=style.is_demo_size(totals.values()),
        sharex=True,
    )
    for ax in axes.flat[len(fmts) :]:
        ax.set_visible(False)
    bins = log_bins([x for f in fmts for v in sizes[f].values() for x in v])
    for ax, fmt in zip(axes.flat, fmts, strict=False):
        _size_panel(ax, fmt, sizes[fmt], bins, totals[fmt], _same_count_note(sizes, fmt))
    return fig


def _same_count_note(sizes: Mapping[str, Mapping[str, Sequence[int]]], fmt: str) -> str:
    """Why the sharded panel can look like the plain one (small stores: one chunk per shard)."""
    if fmt == SHARDED and ZARR in sizes and _count(sizes[fmt]) == _count(sizes[ZARR]):
        return "same object count as plain Zarr: one chunk per shard at this size"
    return ""


def _size_panel(
    ax: Any,
    fmt: str,
    groups: Mapping[str, Sequence[int]],
    bins: np.ndarray,
    total: int,
    note: str,
) -> None:
    names = [g for g in style.ordered_groups(groups) if len(groups[g])]
    values = [np.maximum(np.asarray(groups[g], dtype=float), 1.0) for g in names]
    labels = [
        f"{g}: {style.plural(len(v), 'file')}, mean {style.format_bytes(v.mean())}"
        for g, v in zip(names, values, strict=True)
    ]
    colours = [style.group_colour(g) for g in names]
    ax.hist(values, bins=bins, histtype="barstacked", color=colours, label=labels)
    for v, colour in zip(values, colours, strict=True):
        ax.axvline(float(v.mean()), color=colour, linestyle="--", linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlim(bins[0], bins[-1])
    ax.tick_params(labelbottom=True)  # shared x axis, yet every panel readable alone
    style.integer_ticks(ax.yaxis)
    count = sum(len(v) for v in values)
    title = f"{lab_formats.label(fmt)}: {style.plural(count, 'file')}, {style.format_bytes(total)}"
    ax.set_title(f"{title}\n{note}" if note else title, fontsize=10, color=style.format_colour(fmt))
    ax.set_xlabel("file size (bytes, log scale)")
    ax.set_ylabel("files (count)")
    ax.legend(fontsize=7, loc="upper left")


def plot_file_sizes(
    sizes: Mapping[str, Mapping[str, Sequence[int]]],
    out: str | os.PathLike,
    tile: str | None = None,
    year: int | None = None,
) -> Path:
    """:func:`draw_file_sizes` saved as PNG."""
    return style.save(draw_file_sizes(sizes, tile, year), out)


# --- load times --------------------------------------------------------------------------------


def storage_labels(result: Mapping[str, Any]) -> dict[str, str]:
    """Legend label per storage of a benchmark result, naming the device behind it."""
    devices = result.get("storage_devices") or {}
    labels = {s: style.storage_label(s, devices.get(s)) for s in result["results"]}
    if result.get("same_device") and "temp" in labels:
        labels["temp"] += ", same disk as the network drive"
    return labels


def run_conditions(result: Mapping[str, Any], **extra: Any) -> str:
    """The caption of a patch-load or train-feed result: tile, dates, patch, repeats, cache,
    devices."""
    cache = result.get("page_cache") or {}
    return style.conditions_subtitle(
        tile=result.get("tile"),
        year=result.get("year"),
        dates=result.get("dates"),
        patch_size_m=result.get("patch_size_m"),
        repeats=result.get("repeats"),
        cache_dropped=cache.get("dropped"),
        devices=result.get("storage_devices"),
        **extra,
    )


def _sd(entry: Mapping[str, Any]) -> float:
    sd = entry.get("std_durations")
    if sd is None:  # results from before std was kept: recover it from the stderr
        sd = (entry.get("stderr_durations") or 0.0) * math.sqrt(len(entry.get("durations", [])))
    return float(sd)


def draw_load_times(result: Mapping[str, Any]) -> Any:
    """Grouped bars: mean patch-load time per format (groups, reference first) and storage
    (bars), ± one standard deviation; a black tick marks ``decode_bound_s`` where given."""
    results = result["results"]
    storages = style.ordered_storages(results)
    fmts = style.ordered_formats(f for s in storages for f in results[s])
    n = _repeats(results)
    labels = storage_labels(result)
    fig, axes = style.new_figure(
        f"Patch load time per format and storage, tile {result.get('tile')} {result.get('year')}",
        run_conditions(result),
        figsize=(max(7.5, 1.5 * len(fmts) + 3), 5.5),
        demo=style.is_demo_size((result.get("dataset_bytes") or {}).values()),
    )
    ax = axes[0, 0]
    width = 0.8 / max(1, len(storages))
    x = np.arange(len(fmts))
    bound_drawn = False
    for i, storage in enumerate(storages):
        entries = [results[storage].get(f) for f in fmts]
        means = np.array([e["mean_durations"] if e else np.nan for e in entries])
        sds = np.array([_sd(e) if e else 0.0 for e in entries])
        lower = np.minimum(sds, means * 0.999)  # log axis: a bar cannot reach zero
        pos = x + (i - (len(storages) - 1) / 2) * width
        ax.bar(
            pos,
            means,
            width,
            yerr=[lower, sds],
            capsize=3,
            color=style.storage_colour(storage),
            label=labels[storage],
            error_kw={"elinewidth": 1, "ecolor": "#222222"},
        )
        for xi, mean, sd in zip(pos, means, sds, strict=True):
            if np.isfinite(mean):  # above the error bar's cap, never on it
                ax.annotate(
                    style.format_seconds(mean),
                    (xi, mean + sd),
                    xytext=(0, 4),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7,
                )
        bounds = [
            (p, e["decode_bound_s"])
            for p, e in zip(pos, entries, strict=True)
            if e and e.get("decode_bound_s")
        ]
        if bounds:
            ax.scatter(
                [p for p, _ in bounds],
                [b for _, b in bounds],
                marker="_",
                s=(width * 60) ** 2,
                linewidths=2,
                color="black",
                zorder=3,
                label=None if bound_drawn else "decode lower bound (2 threads)",
            )
            bound_drawn = True
    ax.set_xticks(x, [lab_formats.label(f) for f in fmts], rotation=20, ha="right")
    for tick, fmt in zip(ax.get_xticklabels(), fmts, strict=True):
        tick.set_color(style.format_colour(fmt))
    ax.set_yscale("log")
    _headroom(ax, [e for s in storages for e in results[s].values()])
    ax.set_xlabel("format")
    ax.set_ylabel("load time of one patch time series (s, log scale)")
    ax.legend(  # above the axes: never over a bar
        title=f"bars: mean ± sd, n={n}",
        fontsize=8,
        title_fontsize=8,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.01),
        ncols=2,
    )
    return fig


def _headroom(ax: Any, entries: Sequence[Mapping[str, Any]]) -> None:
    """Log y limits with room above the highest error bar for its rotated value label."""
    lows = [e["mean_durations"] for e in entries] + [
        e["decode_bound_s"] for e in entries if e.get("decode_bound_s")
    ]
    highs = [e["mean_durations"] + _sd(e) for e in entries]
    lo, hi = min(lows) / 2, max(highs)
    ax.set_ylim(lo, hi * (hi / lo) ** 0.3)


def plot_load_times(result: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """:func:`draw_load_times` saved as PNG."""
    return style.save(draw_load_times(result), out)


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
    """Calculated patches per second over a whole job of each budget, per way of feeding it.

    ``load_s[storage][format]`` is the mean single-process patch-load time; ``staging_s`` holds
    ``download:<format>`` (S3 → temp) and ``unzip`` seconds. Staging time produces no patches:
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


#: The storage behind each calculated curve (its colour).
_CALCULATED_STORAGE = {
    "copy S3 → NVMe, then read": "s3-temp",
    "zipped S3 → NVMe, unzip, then read": "unzip-temp",
    "zipped S3 → NVMe, read the zip": "temp",
}


def budget_range(staging_s: Iterable[float]) -> tuple[float, float]:
    """Budgets (s) worth plotting: from half the shortest staging to 30x the longest, where a
    staged curve rises from zero to its plateau (beyond that every curve is flat); one minute
    to one day when nothing was staged."""
    values = [v for v in staging_s if v > 0]
    if not values:
        return 60.0, 86400.0
    return min(values) / 2, max(values) * 30


def measured_curves(feed: Mapping[str, Any], budgets_s: np.ndarray) -> list[dict[str, Any]]:
    """Measured throughput per storage × format of a train-feed result: staging seconds then
    the DataLoader's samples/s at its best worker count, averaged over a job of each budget."""
    curves = []
    for storage, per_format in feed["results"].items():
        for fmt, entry in per_format.items():
            best = max(entry["dataloader"], key=lambda m: m["samples_per_s"])
            staging = float(entry.get("staging_s") or 0.0)
            rate = np.maximum(0.0, budgets_s - staging) / budgets_s * best["samples_per_s"]
            curves.append(
                {
                    "storage": storage,
                    "format": fmt,
                    "staging_s": staging,
                    "workers": best["workers"],
                    "samples_per_s": best["samples_per_s"],
                    "values": rate,
                }
            )
    return curves


def _feed_staging(feed: Mapping[str, Any]) -> list[float]:
    return [
        float(e.get("staging_s") or 0.0) for per in feed["results"].values() for e in per.values()
    ]


def _time_marks(ax: Any, lo: float, hi: float) -> None:
    for seconds, name in ((1, "1 s"), (60, "1 min"), (3600, "1 h"), (86400, "1 day")):
        if lo <= seconds <= hi:
            ax.axvline(seconds, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                name,
                (seconds, 0),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=8,
                color="grey",
                xycoords=("data", "axes fraction"),
            )


def _budget_axis(ax: Any, lo: float, hi: float) -> None:
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("compute budget of the job (s, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    _time_marks(ax, lo, hi)


def draw_measured_throughput(feed: Mapping[str, Any], demo: bool = False) -> Any:
    """One panel per format: measured throughput per compute budget, one curve per storage."""
    lo, hi = budget_range(_feed_staging(feed))
    budgets = np.logspace(math.log10(lo), math.log10(hi), 300)
    curves = measured_curves(feed, budgets)
    fmts = style.ordered_formats(c["format"] for c in curves)
    workers = ", ".join(str(w) for w in feed.get("workers", []))
    fig, axes = style.new_figure(
        f"Measured training throughput per compute budget, tile {feed['tile']} {feed['year']}",
        run_conditions(
            feed,
            extra=[
                f"DataLoader: batch {feed.get('batch_size')}, best of {workers} workers, "
                f"{style.plural(int(feed.get('samples', 0)), 'sample')} timed",
                f"{style.plural(int(feed.get('cores', 0)), 'core')}",
                "staged storages: measured staging seconds, then the measured samples/s",
            ],
        ),
        ncols=len(fmts),
        figsize=(4.2 * max(1, len(fmts)) + 1, 4.6),
        demo=demo,
        sharey=True,
    )
    for ax, fmt in zip(axes.flat, fmts, strict=True):
        for c in sorted(
            (c for c in curves if c["format"] == fmt),
            key=lambda c: (
                style.STORAGE_ORDER.index(c["storage"])
                if c["storage"] in style.STORAGE_ORDER
                else 99
            ),
        ):
            staged = f", staging {style.format_seconds(c['staging_s'])}" if c["staging_s"] else ""
            ax.plot(
                budgets,
                c["values"],
                color=style.storage_colour(c["storage"]),
                linewidth=2,
                label=f"{style.storage_label(c['storage'])}: "
                f"{c['samples_per_s']:.3g}/s, {style.plural(c['workers'], 'worker')}{staged}",
            )
        _budget_axis(ax, lo, hi)
        ax.set_title(lab_formats.label(fmt), color=style.format_colour(fmt), fontsize=10)
        ax.legend(title="measured", fontsize=7, title_fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("training throughput (patch time series / s)")
    for ax in axes.flat[1:]:
        ax.set_ylabel("patch time series / s")
    return fig


def draw_throughput(
    result: Mapping[str, Any],
    staging_s: Mapping[str, float],
    fmt: str = ZARR,
    feed: Mapping[str, Any] | None = None,
) -> Any:
    """The measured chart when a train-feed result is given; otherwise throughput calculated
    from single-process load times and staging times, labelled so."""
    demo = style.is_demo_size((result.get("dataset_bytes") or {}).values())
    if feed is not None and feed.get("results"):
        return draw_measured_throughput(feed, demo)
    load_s = {
        storage: {f: v["mean_durations"] for f, v in per_format.items()}
        for storage, per_format in result["results"].items()
    }
    used = {
        k: v for k, v in staging_s.items() if k in (f"download:{fmt}", f"download:{ZIP}", "unzip")
    }
    lo, hi = budget_range(used.values())
    budgets = np.logspace(math.log10(lo), math.log10(hi), 300)
    curves = throughput_curves(load_s, staging_s, budgets, fmt)
    staged = [
        f"{_STAGING_NAMES[k]} {style.format_seconds(v)}"
        for k, v in sorted(used.items(), key=lambda kv: list(_STAGING_NAMES).index(kv[0]))
    ]
    fig, axes = style.new_figure(
        f"Training throughput per compute budget ({lab_formats.label(fmt)}), tile "
        f"{result.get('tile')} {result.get('year')}\ncalculated from single-process load times",
        run_conditions(result, extra=[f"measured staging: {', '.join(staged) or 'none'}"]),
        figsize=(8.5, 5),
        demo=demo,
    )
    ax = axes[0, 0]
    for label, values in curves.items():
        storage = _CALCULATED_STORAGE.get(label, "s3")
        readable = label.replace("NVMe", "temp")
        ax.plot(budgets, values, label=readable, linewidth=2, color=style.storage_colour(storage))
    _budget_axis(ax, lo, hi)
    ax.set_ylabel("training throughput (patch time series / s)")
    if curves:
        ax.legend(title="calculated, not measured", fontsize=8, title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no S3 or temp measurements", transform=ax.transAxes, ha="center")
    return fig


_STAGING_NAMES = {
    f"download:{ZARR}": "download Zarr S3 → temp",
    f"download:{ZIP}": "download zipped Zarr",
    "unzip": "unzip",
}


def plot_throughput(
    result: Mapping[str, Any],
    staging_s: Mapping[str, float],
    out: str | os.PathLike,
    fmt: str = ZARR,
    feed: Mapping[str, Any] | None = None,
) -> Path:
    """:func:`draw_throughput` saved as PNG."""
    return style.save(draw_throughput(result, staging_s, fmt, feed), out)


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
