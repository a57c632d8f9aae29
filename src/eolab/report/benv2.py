"""Report charts of the BigEarthNet v2 conversion (``eolab benv2 tiles`` output folder).

Reads ``patches.parquet`` (converted patches: split, country, labels), ``summary.json``
(throughput, timings, skipped/failed by reason) and ``log.jsonl`` (one line per patch and run).
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2.names import LABELS, SPLITS
from eolab.report.figure import figure, save, titled
from eolab.report.style import integer_ticks

#: The conversion's phases in the order they run (summary.json ``timings_s``).
PHASES = ("plan", "stats", "pool_start", "convert", "store")


def read_outputs(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The patch table rows, the summary and the log lines of one conversion folder."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    rows = pq.read_table(out / "patches.parquet").to_pylist()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    log_path = out / "log.jsonl"
    lines = log_path.read_text(encoding="utf-8").splitlines() if log_path.exists() else []
    return {"rows": rows, "summary": summary, "log": [json.loads(x) for x in lines if x.strip()]}


def conditions(summary: Mapping[str, Any]) -> str:
    """The run's conditions for a subtitle: patches, workers, dtype, normalisation, CPU."""
    opts = summary.get("options", {})
    env = summary.get("environment", {})
    parts = [f"{summary.get('done', 0)} of {summary.get('selected', 0)} patches converted"]
    if opts.get("workers"):
        parts.append(f"{opts['workers']} workers")
    if opts.get("dtype"):
        parts.append(f"{opts['dtype']}, {opts.get('normalise', '')}".rstrip(", "))
    if env.get("cpu"):
        parts.append(f"{env['cpu']} ({env.get('cpu_count')} CPUs)")
    return " · ".join(parts)


def split_country_counts(rows: Sequence[Mapping[str, Any]]) -> tuple[list, list, np.ndarray]:
    """(splits, countries, counts[split, country]) of the converted patches."""
    countries = sorted({r["country"] for r in rows})
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    counts = np.zeros((len(splits), len(countries)), dtype=int)
    for r in rows:
        counts[splits.index(r["split"]), countries.index(r["country"])] += 1
    return splits, countries, counts


def label_frequencies(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Patches carrying each of the 19 classes (every class listed, zeros included)."""
    counter = Counter(label for r in rows for label in r["labels"])
    return {label: counter.get(label, 0) for label in LABELS}


def plot_split_country(
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    out: str | os.PathLike,
    demo: bool,
) -> Path:
    """Heat map: converted patches per split (rows) and country (columns), counts written in."""
    splits, countries, counts = split_country_counts(rows)
    fig, axes = figure(size=(max(6, 1.1 * len(countries) + 2), 1.0 * len(splits) + 2.2))
    ax = axes[0, 0]
    mesh = ax.pcolormesh(counts, cmap="Blues", vmin=0, edgecolors="white", linewidth=1)
    for (i, j), n in np.ndenumerate(counts):
        colour = "white" if n > counts.max() * 0.6 else "black"
        ax.text(j + 0.5, i + 0.5, str(n), ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(np.arange(len(countries)) + 0.5, countries, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(splits)) + 0.5, splits)
    ax.set_xlabel("country")
    ax.set_ylabel("split")
    colorbar = fig.colorbar(mesh, ax=ax, label="patches")
    integer_ticks(colorbar.ax.yaxis)
    titled(fig, "BigEarthNet v2: converted patches per split × country", conditions(summary), demo)
    return save(fig, out)


def plot_label_frequencies(
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    out: str | os.PathLike,
    demo: bool,
) -> Path:
    """Horizontal bars: patches per class, all 19 classes in BigEarthNet's order."""
    freq = label_frequencies(rows)
    fig, axes = figure(size=(9.5, 8))
    ax = axes[0, 0]
    names = list(freq)[::-1]  # barh draws bottom-up: the first class on top
    values = [freq[n] for n in names]
    ax.barh([textwrap.fill(n, 46) for n in names], values, color="#4c72b0")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel(f"patches carrying the class (of {len(rows)}; a patch carries several)")
    ax.set_ylabel("class (BigEarthNet 19-class nomenclature)")
    ax.tick_params(axis="y", labelsize=8)
    integer_ticks(ax.xaxis)
    ax.set_xlim(0, max(values + [1]) * 1.12)
    titled(fig, "BigEarthNet v2: label frequencies", conditions(summary), demo)
    return save(fig, out)


def skip_reasons(summary: Mapping[str, Any], log: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Patches not converted, per status and reason (``skipped: no_s1``), from the last run's
    log lines (the summary's ``failures_by_reason`` when the log has none)."""
    reasons = Counter(
        f"{line['status']}: {line.get('reason', '?')}"
        for line in log
        if line.get("status") in ("skipped", "failed")
    )
    if not reasons:
        reasons.update(summary.get("failures_by_reason", {}))
    return dict(sorted(reasons.items()))


def plot_conversion(
    summary: Mapping[str, Any], log: Sequence[Mapping[str, Any]], out: str | os.PathLike, demo: bool
) -> Path:
    """Two panels: time per conversion phase (with the throughput) and patches per outcome."""
    fig, axes = figure(ncols=2, size=(11, 4.5))
    given = {k.removesuffix("_s"): v for k, v in summary["timings_s"].items() if k != "total_s"}
    order = [p for p in PHASES if p in given] + sorted(set(given) - set(PHASES))
    timings = {p: given[p] for p in reversed(order)}  # barh draws bottom-up: first phase on top
    ax = axes[0, 0]
    ax.barh(list(timings), list(timings.values()), color="#55a868")
    for y, v in enumerate(timings.values()):
        ax.text(v, y, f" {v:.2f} s", va="center", fontsize=8)
    ax.set_xlim(0, max(list(timings.values()) + [0.1]) * 1.25)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("phase")
    rate = summary.get("throughput_patches_per_s")
    rate_text = f"{rate:.1f} patches/s" if rate else "no patch converted this run"
    ax.set_title(f"conversion phases — {rate_text}", fontsize=10)

    ax = axes[0, 1]
    outcomes = {"converted": summary.get("done", 0), **skip_reasons(summary, log)}
    colours = ["#55a868"] + ["#c44e52"] * (len(outcomes) - 1)
    ax.bar(list(outcomes), list(outcomes.values()), color=colours)
    for x, v in enumerate(outcomes.values()):
        ax.text(x, v, str(v), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("patches")
    ax.set_xlabel("outcome (status: reason)")
    integer_ticks(ax.yaxis)
    ax.set_ylim(0, max(outcomes.values()) * 1.15 + 1)
    if len(outcomes) == 1:
        ax.set_title("nothing skipped or failed", fontsize=10)
    else:
        ax.set_title("skipped and failed, by reason (log.jsonl)", fontsize=10)
    titled(fig, "BigEarthNet v2: conversion throughput and outcomes", conditions(summary), demo)
    return save(fig, out)


def plot_all(out_dir: str | os.PathLike, outputs: Mapping[str, str], demo: bool) -> None:
    """Every BigEarthNet chart (``outputs``: split_country, labels, conversion -> PNG path)."""
    data = read_outputs(out_dir)
    rows = [r for r in data["rows"]]
    plot_split_country(rows, data["summary"], outputs["split_country"], demo)
    plot_label_frequencies(rows, data["summary"], outputs["labels"], demo)
    plot_conversion(data["summary"], data["log"], outputs["conversion"], demo)
