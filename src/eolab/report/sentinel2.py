"""Report charts of the Sentinel-2 conversions: an RGB quicklook per date from the Zarr cube,
conversion time per product and format (Snakemake benchmark TSVs), sizes and object counts per
format.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eolab.lab import formats as lab_formats
from eolab.report import style
from eolab.report.figure import figure, save, titled
from eolab.report.style import integer_ticks

RGB = ("B04", "B03", "B02")
NODATA_RGB = (1.0, 0.0, 1.0)  # magenta: no sensor or fill-value pixels
#: Longest side of a quicklook panel in pixels (the cube is strided down to it).
QUICKLOOK_PX = 400
#: Which rule converts to which format (their Snakemake benchmark TSVs carry the wall time).
CONVERSION_RULES = {
    "cog": "safe_to_cog",
    "zarr": "safe_to_zarr",
    "zarr-sharded": "safe_to_zarr_sharded",
    "zarr-zip": "zip_zarr",
}


def stretch(rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-band 2-98 % percentile stretch of the valid pixels to 0..1 (display only)."""
    out = np.zeros(rgb.shape, dtype=float)
    for b in range(rgb.shape[-1]):
        band = rgb[..., b].astype(float)
        values = band[valid]
        if values.size == 0:
            continue
        lo, hi = np.percentile(values, (2, 98))
        out[..., b] = np.clip((band - lo) / max(hi - lo, 1.0), 0, 1)
    return out


def read_quicklooks(store: str | os.PathLike, tile: str, year: int) -> dict[str, Any]:
    """The strided RGB (time, y, x, 3) raw DN of a tile-year's 10 m group, its dates, and whether
    the cube has a cloud mask band (an L1C cube has none)."""
    import zarr

    from eolab.sentinel2.datacube import group_path, read_labels

    group = zarr.open_group(str(store), mode="r", path=group_path(tile, year, "10m"))
    bands = [str(b) for b in read_labels(group["band"])]
    data = group["data"]
    step = max(1, int(np.ceil(max(data.shape[-2:]) / QUICKLOOK_PX)))
    picks = [bands.index(b) for b in RGB]
    rgb = np.stack([data[:, i, ::step, ::step] for i in picks], axis=-1)
    times = np.asarray(group["time"][:], dtype="datetime64[ms]")
    return {
        "rgb": rgb,
        "dates": [str(t)[:10] for t in times],
        "step_m": 10 * step,
        "cloud_band": next((b for b in bands if "CLOUD" in b.upper() or b == "SCL"), None),
    }


def plot_quicklooks(cube: Mapping[str, Any], tile: str, year: int, out, demo: bool) -> Path:
    """One RGB panel per date: nodata in magenta; clouds as the cube shows them."""
    rgb, dates = cube["rgb"], cube["dates"]
    ncols = min(4, len(dates))
    nrows = int(np.ceil(len(dates) / ncols))
    fig, axes = figure(nrows, ncols, size=(3.2 * ncols, 3.4 * nrows + 0.9))
    for ax in axes.flat[len(dates) :]:
        ax.set_visible(False)
    for t, date in enumerate(dates):
        valid = np.any(rgb[t] > 0, axis=-1)
        image = stretch(rgb[t], valid)
        image[~valid] = NODATA_RGB
        ax = axes.flat[t]
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"{date} — nodata {1 - valid.mean():.0%}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    cloud = (
        f"cloud band {cube['cloud_band']}"
        if cube["cloud_band"]
        else "no cloud mask band in the cube (L1C): clouds show as bright white"
    )
    conditions = (
        f"B04/B03/B02, 2-98 % stretch per date, every {cube['step_m']} m · magenta = nodata · "
        f"{cloud}"
    )
    titled(fig, f"Sentinel-2 {tile} {year}: RGB quicklook per date (Zarr cube)", conditions, demo)
    return save(fig, out)


def read_benchmark(path: str | os.PathLike) -> dict[str, float]:
    """A Snakemake benchmark TSV's first row, its numeric columns (``s``, ``max_rss`` …)."""
    with open(path, encoding="utf-8", newline="") as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    out = {}
    for key, value in row.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):  # "h:m:s" and "NA" columns
            continue
    return out


def conversion_seconds(
    benchmarks: Mapping[str, str | os.PathLike], products: int
) -> dict[str, dict[str, float]]:
    """Per format: the job's wall time and the mean per product (wall time / products)."""
    out = {}
    for fmt, path in benchmarks.items():
        seconds = read_benchmark(path)["s"]
        out[fmt] = {"job_s": seconds, "per_product_s": seconds / max(products, 1)}
    return out


def plot_conversion_times(
    times: Mapping[str, Mapping[str, float]], products: int, tile: str, year: int, out, demo: bool
) -> Path:
    """Bars: seconds per product for each format (the job's total written on the bar)."""
    fig, axes = figure(size=(8, 4.2))
    ax = axes[0, 0]
    names = [f for f in CONVERSION_RULES if f in times]
    values = [times[f]["per_product_s"] for f in names]
    ax.bar(
        [lab_formats.label(f) for f in names],
        values,
        color=[style.format_colour(f) for f in names],
    )
    for x, f in enumerate(names):
        label = f"{times[f]['per_product_s']:.2f} s\n(job {times[f]['job_s']:.1f} s)"
        ax.text(x, values[x], label, ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(values + [0.01]) * 1.3)
    ax.set_ylabel("wall time per product (s)")
    ax.set_xlabel("output format (zipped Zarr: zipping the plain store)")
    conditions = (
        f"{products} SAFE products · job wall time / products, from Snakemake benchmarks · "
        "decode and write, one job per format"
    )
    titled(fig, f"Sentinel-2 {tile} {year}: conversion time per product", conditions, demo)
    return save(fig, out)


def format_sizes(entries: Mapping[str, str | os.PathLike]) -> dict[str, dict[str, int]]:
    """Per format: its files (objects on S3) and their total bytes."""
    out = {}
    for fmt, entry in entries.items():
        files = lab_formats.entry_files(fmt, entry)
        root = Path(entry).parent
        nbytes = sum((root / f).stat().st_size for f in files)
        out[fmt] = {"objects": len(files), "bytes": nbytes}
    return out


def plot_sizes(
    sizes: Mapping[str, Mapping[str, int]], tile: str, year: int, out, demo: bool
) -> Path:
    """Two panels: total size (MB) and number of files/objects per format."""
    names = style.ordered_formats(sizes)
    labels = [lab_formats.label(f) for f in names]
    colours = [style.format_colour(f) for f in names]
    fig, axes = figure(ncols=2, size=(11, 4.2))
    panels = (
        ("bytes", 1e6, "total size (MB)", "{:.1f} MB"),
        ("objects", 1, "files = objects on S3", "{:.0f}"),
    )
    for ax, (key, unit, ylabel, fmt_text) in zip(axes[0], panels, strict=True):
        values = [sizes[f][key] / unit for f in names]
        ax.bar(labels, values, color=colours)
        for x, v in enumerate(values):
            ax.text(x, v, fmt_text.format(v), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, max(values + [1]) * 1.15)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("format")
        ax.tick_params(axis="x", labelsize=8, rotation=15)
        if key == "objects":
            integer_ticks(ax.yaxis)
    conditions = "every file of each format's dataset (SAFE: the products' whole folders)"
    plain, sharded = sizes.get("zarr"), sizes.get("zarr-sharded")
    if plain and sharded and plain["objects"] == sharded["objects"]:
        conditions += " · sharded = plain object count: each shard holds one chunk at this size"
    titled(fig, f"Sentinel-2 {tile} {year}: size and object count per format", conditions, demo)
    return save(fig, out)


def product_count(manifest: str | os.PathLike) -> int:
    """How many products a products manifest lists."""
    import json

    return len(json.loads(Path(manifest).read_text(encoding="utf-8"))["products"])


def plot_all(
    tile: str,
    year: int,
    store: str | os.PathLike,
    manifest: str | os.PathLike,
    benchmarks: Mapping[str, str],
    entries: Mapping[str, str],
    outputs: Mapping[str, str],
    demo: bool,
) -> None:
    """``outputs``: ``quicklook``, ``times``, ``sizes`` -> PNG path."""
    plot_quicklooks(read_quicklooks(store, tile, year), tile, year, outputs["quicklook"], demo)
    products = product_count(manifest)
    times = conversion_seconds(benchmarks, products)
    plot_conversion_times(times, products, tile, year, outputs["times"], demo)
    plot_sizes(format_sizes(entries), tile, year, outputs["sizes"], demo)
