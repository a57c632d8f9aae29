"""Report charts of the chip index (``eolab chips merge`` output): the chip grid of each tile
coloured by cloud and by nodata fraction, one column per date, and the distribution of both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eolab.report import style
from eolab.report.figure import figure, save, titled
from eolab.report.style import integer_ticks

#: Most dates drawn per tile map (the first ones; the subtitle says when more exist).
MAX_DATES = 6
_TILE_RE = re.compile(r"_T(\d{2}[C-HJ-NP-X][A-HJ-NP-Z]{2})_")


def tile_of(item_id: str) -> str:
    """The MGRS tile of a Sentinel-2 item id (``..._T35VLH_...``); the id itself otherwise."""
    match = _TILE_RE.search(item_id)
    return match.group(1) if match else item_id


def read_chips(index_root: str | os.PathLike) -> Any:
    """The merged chip index as a DataFrame with a ``tile`` column."""
    from eolab.chips.merge import read_index

    table = read_index(Path(index_root))
    table["tile"] = [tile_of(i) for i in table["item_id"]]
    return table


def grid(
    chips: Any, column: str, shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """One item's chips as a (row, col) array of ``column`` (NaN = chip dropped) and its extent
    (left, right, bottom, top) in km of the item's own CRS. ``shape`` (rows, cols): the tile's
    whole grid, so that dates missing edge chips draw at the same scale (default: these chips')."""
    ny, nx = shape or (int(chips["chip_index_y"].max()) + 1, int(chips["chip_index_x"].max()) + 1)
    values = np.full((ny, nx), np.nan)
    values[chips["chip_index_y"].to_numpy(), chips["chip_index_x"].to_numpy()] = chips[column]
    # Extent from the chips that exist, grown to the full grid by the chip size.
    size_x = float((chips["native_xmax"] - chips["native_xmin"]).iloc[0])
    size_y = float((chips["native_ymax"] - chips["native_ymin"]).iloc[0])
    left = float((chips["native_xmin"] - chips["chip_index_x"] * size_x).min())
    top = float((chips["native_ymax"] + chips["chip_index_y"] * size_y).max())
    extent = (left, left + nx * size_x, top - ny * size_y, top)
    return values, tuple(v / 1000 for v in extent)


def plot_tile_maps(chips: Any, tile: str, out: str | os.PathLike, demo: bool) -> Path:
    """Rows: cloud and nodata fraction; columns: the tile's dates; a cell per chip."""
    import matplotlib as mpl

    rows = chips[chips["tile"] == tile]
    items = sorted(rows["item_id"].unique(), key=lambda i: rows[rows.item_id == i].datetime.min())
    shown = items[:MAX_DATES]
    shape = (int(rows["chip_index_y"].max()) + 1, int(rows["chip_index_x"].max()) + 1)
    fig, axes = figure(nrows=2, ncols=len(shown), size=(2.6 * len(shown) + 1.5, 5.8))
    fig.subplots_adjust(top=0.83, right=0.86, wspace=0.35, hspace=0.45)
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    for col, item in enumerate(shown):
        item_rows = rows[rows["item_id"] == item]
        date = str(item_rows["datetime"].iloc[0])[:10]
        for row, (column, what) in enumerate(
            (("cloud_cover_percentage", "cloud"), ("nodata_percentage", "nodata"))
        ):
            values, extent = grid(item_rows, column, shape)
            ax = axes[row, col]
            image = ax.imshow(values, extent=extent, cmap=cmap, vmin=0, vmax=1)
            ax.set_title(f"{date}: {what}", fontsize=9)
            ax.set_xlabel("easting (km)", fontsize=8)
            ax.set_ylabel("northing (km)" if col == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.colorbar(image, cax=fig.add_axes((0.89, 0.15, 0.015, 0.63)), label="fraction of pixels")
    crs = rows["native_crs"].iloc[0]
    size_km = float((rows["native_xmax"] - rows["native_xmin"]).iloc[0]) / 1000
    note = (
        f"{len(shown)} of {len(items)} dates" if len(items) > len(shown) else f"{len(items)} dates"
    )
    conditions = f"{note} · {size_km:g} km chips in {crs} · grey: chip dropped (too much nodata)"
    fig.suptitle(f"Chip grid of tile {tile}: cloud and nodata fraction per chip", fontweight="bold")
    fig.text(0.5, 0.94, conditions, ha="center", va="top", fontsize=8.5, color="#444")
    if demo:
        style.mark_demo(fig)
    return save(fig, out)


def plot_distributions(chips: Any, out: str | os.PathLike, demo: bool) -> Path:
    """Histograms of the cloud and the nodata fraction of every chip, one colour per tile."""
    fig, axes = figure(ncols=2, size=(10, 4.2))
    bins = np.linspace(0, 1, 21)
    tiles = sorted(chips["tile"].unique())
    for ax, (column, what) in zip(
        axes[0], (("cloud_cover_percentage", "cloud"), ("nodata_percentage", "nodata")), strict=True
    ):
        data = [chips.loc[chips["tile"] == t, column].to_numpy() for t in tiles]
        ax.hist(data, bins=bins, stacked=True, label=tiles)
        ax.set_xlabel(f"{what} fraction of the chip")
        ax.set_ylabel("chips (all dates)")
        ax.set_xlim(0, 1)
        integer_ticks(ax.yaxis)
        ax.legend(title="tile", fontsize=8)
    conditions = f"{len(chips)} chips of {chips['item_id'].nunique()} items, stacked per tile"
    titled(fig, "Chip index: distribution of cloud and nodata fractions", conditions, demo)
    return save(fig, out)


def plot_all(index_root: str | os.PathLike, outputs: Mapping[str, str], demo: bool) -> None:
    """``outputs``: ``distributions`` and ``map_<tile>`` per tile -> PNG path."""
    chips = read_chips(index_root)
    plot_distributions(chips, outputs["distributions"], demo)
    for key, path in outputs.items():
        if key.startswith("map_"):
            plot_tile_maps(chips, key.removeprefix("map_"), path, demo)
