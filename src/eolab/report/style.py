"""One style for every chart of the report (matplotlib, Agg, deterministic PNG).

- Colours are fixed per format and per storage, on two palettes that share no colour, so a
  format (x tick labels, histogram panels) is never mistaken for a storage (bars, curves).
- Formats are ordered reference first, then along the conversion chain: the xarray/dask reader
  (the reference's way of reading the same Zarr store), SAFE (the download), COG, plain,
  sharded and zipped Zarr. Storages go from the slowest expected to the fastest: network,
  temp, S3, then the staged variants. Unknown names follow, alphabetically, in grey.
- Numbers: 3 significant digits with a unit that keeps them between 1 and 1000
  (``63.9 ms``, ``3.05 s``, ``12.5 min``); counts in words with the right plural.
- :func:`new_figure` sets the title, the run-conditions caption below the axes and, for
  demo-size inputs, a visible "demo-size run" marker above the title; :func:`save` writes
  the PNG atomically with a fixed dpi and no date or version in its metadata.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eolab.core.atomic import atomic_path

DPI = 110
#: Colours of the formats (tab10's first five). The xarray/dask reference reads the plain
#: Zarr store, so it shares plain Zarr's colour.
FORMAT_COLOURS: dict[str, str] = {
    "zarr-xarray": "#2ca02c",
    "safe": "#1f77b4",
    "cog": "#ff7f0e",
    "zarr": "#2ca02c",
    "zarr-sharded": "#d62728",
    "zarr-zip": "#9467bd",
}
FORMAT_ORDER: tuple[str, ...] = tuple(FORMAT_COLOURS)
#: Colours of the storages (tab10's other five: none is a format's colour).
STORAGE_COLOURS: dict[str, str] = {
    "network": "#8c564b",
    "temp": "#17becf",
    "s3": "#e377c2",
    "s3-temp": "#bcbd22",
    "unzip-temp": "#7f7f7f",
}
STORAGE_ORDER: tuple[str, ...] = tuple(STORAGE_COLOURS)
STORAGE_LABELS: dict[str, str] = {
    "network": "network drive",
    "temp": "node-local temp",
    "s3": "S3",
    "s3-temp": "S3 → temp, then read",
    "unzip-temp": "zip → temp, unzip, then read",
}
#: Colours of Sentinel-2 band groups (file-size charts) and of files holding no band.
GROUP_COLOURS: dict[str, str] = {
    "10m": "#1b9e77",
    "20m": "#d95f02",
    "60m": "#7570b3",
    "other": "#666666",
}
UNKNOWN_COLOUR = "#444444"
DEMO_LABEL = "demo-size run"
#: Below this many bytes a tile-year's dataset is not a real one: one full-size Sentinel-2
#: L1C product alone holds ~600 MB, the demo's whole year a few MB.
DEMO_MAX_BYTES = 100e6


# --- colours and order -----------------------------------------------------------------------


def format_colour(name: str) -> str:
    """The fixed colour of a format (grey-black for unknown names)."""
    return FORMAT_COLOURS.get(name, UNKNOWN_COLOUR)


def storage_colour(name: str) -> str:
    """The fixed colour of a storage (grey-black for unknown names)."""
    return STORAGE_COLOURS.get(name, UNKNOWN_COLOUR)


def group_colour(name: str) -> str:
    """The fixed colour of a band group (``10m``, ``20m``, ``60m``, ``other``)."""
    return GROUP_COLOURS.get(name, UNKNOWN_COLOUR)


def _ordered(names: Iterable[str], order: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(order)), n))


def ordered_formats(names: Iterable[str]) -> list[str]:
    """``names`` in chart order: reference first, then along the conversion chain."""
    return _ordered(names, FORMAT_ORDER)


def ordered_groups(names: Iterable[str]) -> list[str]:
    """Band groups in chart order: 10m, 20m, 60m, then ``other`` (files holding no band)."""
    return _ordered(names, tuple(GROUP_COLOURS))


def ordered_storages(names: Iterable[str]) -> list[str]:
    """``names`` in chart order: network, temp, S3, then the staged variants."""
    return _ordered(names, STORAGE_ORDER)


def storage_label(name: str, device: str | None = None) -> str:
    """Legend label of a storage, naming the device behind it when known."""
    base = STORAGE_LABELS.get(name, name)
    return f"{base} ({device})" if device else base


# --- numbers and words -----------------------------------------------------------------------


def sig3(value: float) -> str:
    """``value`` with 3 significant digits, trailing zeros kept (``3.00``, ``0.0639``, ``125``)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, decimals)
    if rounded and math.floor(math.log10(abs(rounded))) != math.floor(math.log10(abs(value))):
        decimals -= 1  # 9.996 rounds up to 10.0: one decimal less
    return f"{value:.{max(0, decimals)}f}"


def format_seconds(seconds: float) -> str:
    """A duration with 3 significant digits in µs, ms, s, min or h (``63.9 ms``, ``3.05 s``)."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    for unit, scale, below in (
        ("µs", 1e-6, 1e-3),
        ("ms", 1e-3, 1.0),
        ("s", 1.0, 60.0),
        ("min", 60.0, 3600.0),
    ):
        if abs(seconds) < below * 0.9995:  # 59.99 s shows as 1.00 min, not 60.0 s
            return f"{sig3(seconds / scale)} {unit}"
    return f"{sig3(seconds / 3600.0)} h"


def format_bytes(nbytes: float) -> str:
    """A size with 3 significant digits in B, KiB, MiB, GiB or TiB (``1.50 MiB``)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1023.5:
            return f"{value:.0f} B" if unit == "B" else f"{sig3(value)} {unit}"
        value /= 1024
    return f"{sig3(value)} TiB"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files`` (``many`` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


# --- run conditions and demo marker ----------------------------------------------------------


def conditions_subtitle(
    *,
    tile: str | None = None,
    year: int | None = None,
    dates: int | None = None,
    patch_size_m: float | None = None,
    repeats: int | None = None,
    cache_dropped: bool | None = None,
    devices: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    width: int = 130,
) -> str:
    """The run's conditions on one or more lines; parts not given are left out.

    ``devices`` maps a storage to what is behind it (``/dev/nvme0n1p1 at /tmp``, an endpoint).
    """
    parts = []
    if tile is not None:
        parts.append(f"tile {tile}" + (f" {year}" if year is not None else ""))
    elif year is not None:
        parts.append(str(year))
    if dates is not None:
        parts.append(plural(dates, "date"))
    if patch_size_m is not None:
        parts.append(f"patch {patch_size_m:.0f} m")
    if repeats is not None:
        parts.append(plural(repeats, "timed repeat"))
    if cache_dropped is not None:
        parts.append("page cache dropped before each load" if cache_dropped else "warm page cache")
    parts += list(extra)
    for storage in ordered_storages(devices or {}):
        parts.append(f"{STORAGE_LABELS.get(storage, storage)}: {devices[storage]}")
    lines: list[str] = []
    for part in parts:  # wrap between parts, never inside one
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def is_demo_size(dataset_bytes: Iterable[float]) -> bool:
    """True when every dataset of a tile-year is smaller than any real one (`DEMO_MAX_BYTES`)."""
    sizes = [float(b) for b in dataset_bytes]
    return bool(sizes) and max(sizes) < DEMO_MAX_BYTES


def mark_demo(fig: Any) -> None:
    """Write "demo-size run" boxed above the title's left end, where nothing else is drawn
    (`save` grows the PNG to hold it)."""
    fig.text(
        0.005,
        1.005,
        f"{DEMO_LABEL}: inputs are demo-size, figures say little about full-size tiles",
        ha="left",
        va="bottom",
        fontsize=9,
        color="#b00020",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "#fff3f3", "edgecolor": "#b00020"},
    )


# --- figures ---------------------------------------------------------------------------------


def new_figure(
    title: str,
    subtitle: str = "",
    *,
    nrows: int = 1,
    ncols: int = 1,
    figsize: tuple[float, float] = (8.0, 5.0),
    demo: bool = False,
    **subplots: Any,
) -> tuple[Any, Any]:
    """A figure (constrained layout) with ``title`` on top and ``subtitle`` as a caption below
    the axes; returns ``(fig, axes)`` with ``axes`` a 2-D array."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, squeeze=False, layout="constrained", **subplots
    )
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:  # the figure's bottom line: constrained layout keeps it clear of the axes
        fig.supxlabel(subtitle, x=0.01, ha="left", fontsize=8, color="#333333")
    if demo:
        mark_demo(fig)
    return fig, axes


def integer_ticks(axis: Any) -> None:
    """Only whole numbers on a count axis (``ax.yaxis``): no 0.5 files."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically (fixed dpi, no software version or date) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
