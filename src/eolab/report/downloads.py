"""Report chart of the STAC dataset downloads (``_download-summary.json`` of each dataset):
files downloaded (verified how), already present and failed; bytes and throughput.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eolab.report.figure import figure, save, titled
from eolab.report.style import format_bytes, integer_ticks, plural

OUTCOME_COLOURS = {"present": "#9e9e9e", "failed": "#c44e52"}
VERIFIED_COLOURS = ("#2e7d32", "#66bb6a", "#a5d6a7", "#c8e6c9")


def read_summaries(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """The download summaries, in the given order."""
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def outcomes(summary: Mapping[str, Any]) -> dict[str, int]:
    """Files per outcome: ``downloaded (<how verified>)`` per verification, present, failed."""
    download = summary.get("download") or {}
    out = {f"downloaded ({how})": n for how, n in sorted((download.get("verified") or {}).items())}
    out["present"] = download.get("present", 0)
    out["failed"] = download.get("failed", 0)
    return out


def throughput(summary: Mapping[str, Any]) -> dict[str, float] | None:
    """MiB/s and files/s of the download phase (None when nothing was downloaded)."""
    download = summary.get("download") or {}
    seconds = download.get("seconds") or 0
    if not seconds or not download.get("downloaded"):
        return None
    return {
        "mib_per_s": download["bytes"] / 2**20 / seconds,
        "files_per_s": download["downloaded"] / seconds,
    }


def plot_downloads(summaries: list[Mapping[str, Any]], out: str | os.PathLike, demo: bool) -> Path:
    """Stacked bars per dataset: files per outcome; the bytes and throughput written on each."""
    fig, axes = figure(size=(max(6.0, 2.2 * len(summaries) + 3), 4.6))
    ax = axes[0, 0]
    names = [s["dataset"] for s in summaries]
    per_dataset = [outcomes(s) for s in summaries]
    # outcomes no dataset had stay out of the legend
    keys = sorted(
        {k for o in per_dataset for k, n in o.items() if n}, key=lambda k: (k in OUTCOME_COLOURS, k)
    )
    bottom = [0] * len(names)
    verified = iter(VERIFIED_COLOURS * 2)
    for key in keys:
        values = [o.get(key, 0) for o in per_dataset]
        colour = OUTCOME_COLOURS.get(key) or next(verified)
        ax.bar(names, values, bottom=bottom, label=key, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, summary in enumerate(summaries):
        speed = throughput(summary)
        if not summary.get("download"):
            ax.text(x, bottom[x], "catalog only", ha="center", va="bottom", fontsize=8)
            continue
        text = format_bytes(summary["download"].get("bytes", 0))
        if speed:
            text += f"\n{speed['mib_per_s']:.3g} MiB/s, {speed['files_per_s']:.3g} files/s"
        ax.text(x, bottom[x], text, ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(bottom + [1]) * 1.3)
    ax.set_ylabel("files")
    ax.set_xlabel("dataset")
    integer_ticks(ax.yaxis)
    if keys:
        ax.legend(fontsize=8, title="outcome", loc="upper left", bbox_to_anchor=(1.01, 1))
    workers = sorted({s.get("workers") for s in summaries if s.get("workers")})
    conditions = (
        f"{plural(len(summaries), 'dataset')} · workers {', '.join(map(str, workers)) or '?'}"
    )
    conditions += " · throughput of the download phase (bytes fetched this run / its seconds)"
    titled(fig, "Downloads: files fetched, verified and failed per dataset", conditions, demo)
    return save(fig, out)


LEGEND = {"fetched_bytes": "fetched this run", "present_bytes": "already present"}


def intake_counts(manifest: Mapping[str, Any]) -> dict[str, float]:
    """Products verified / not verified, and bytes fetched this run / already present."""
    products = manifest["products"]
    fetched = sum(p.get("fetched_bytes", 0) for p in products)
    return {
        "verified": sum(1 for p in products if p.get("verified", True)),
        "not verified": sum(1 for p in products if not p.get("verified", True)),
        "fetched_bytes": fetched,
        "present_bytes": sum(p.get("bytes", 0) for p in products) - fetched,
    }


def plot_intake(
    manifests: Mapping[str, Mapping[str, Any]],
    job_seconds: Mapping[str, float],
    out: str | os.PathLike,
    demo: bool,
) -> Path:
    """Per tile-year (``manifests`` by label): products verified or not, and bytes fetched this
    run or already present, with the job's throughput (fetched bytes / its wall time)."""
    fig, axes = figure(ncols=2, size=(11, 4.6))
    labels = list(manifests)
    counts = [intake_counts(manifests[k]) for k in labels]
    panels = (
        (axes[0, 0], ("verified", "not verified"), ("#2e7d32", "#c44e52"), 1, "products"),
        (
            axes[0, 1],
            ("fetched_bytes", "present_bytes"),
            ("#1f77b4", "#9e9e9e"),
            2**20,
            "size (MiB)",
        ),
    )
    for ax, keys, colours, unit, ylabel in panels:
        bottom = [0.0] * len(labels)
        for key, colour in zip(keys, colours, strict=True):
            values = [c[key] / unit for c in counts]
            ax.bar(labels, values, bottom=bottom, color=colour, label=LEGEND.get(key, key))
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylim(0, max(bottom + [1]) * 1.3)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("tile and year")
        ax.legend(fontsize=8)
        if unit == 1:
            integer_ticks(ax.yaxis)
    for x, (label, c) in enumerate(zip(labels, counts, strict=True)):
        seconds = job_seconds.get(label)
        if seconds and c["fetched_bytes"]:
            rate = c["fetched_bytes"] / 2**20 / seconds
            top = (c["fetched_bytes"] + c["present_bytes"]) / 2**20
            axes[0, 1].text(x, top, f"{rate:.3g} MiB/s", ha="center", va="bottom", fontsize=8)
    conditions = "CDSE intake · throughput = bytes fetched this run / the job's wall time"
    titled(fig, "Intake: products verified and bytes fetched per tile-year", conditions, demo)
    return save(fig, out)
