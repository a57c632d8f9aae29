"""The region of a tile that the patch benchmark draws its random patches from.

Kept free of heavy imports: the workflow checks ``benchmark.patch_load.region`` with it while
Snakemake parses the rules (`eolab.workflow.patch_region_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eolab.core.errors import ConfigError


@dataclass(frozen=True)
class Region:
    """Where patches may lie, in the tile's CRS (m): left x1, top y1, right x2, bottom y2.

    A side left as None is the tile's edge (the reference's ``--x1 --y1 --x2 --y2``)."""

    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None

    def check_order(self) -> None:
        """Raise ConfigError unless x1 < x2 and y2 < y1 (for the sides that are given)."""
        if self.x1 is not None and self.x2 is not None and not self.x1 < self.x2:
            raise ConfigError(f"region: x1={self.x1} must be less than x2={self.x2}")
        if self.y1 is not None and self.y2 is not None and not self.y2 < self.y1:
            raise ConfigError(f"region: y2={self.y2} must be less than y1={self.y1} (top)")

    def on(self, grid: Any) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) with the missing sides filled from ``grid`` (a patchload.Grid:
        ulx, uly, res, width, height); ConfigError when the region is not inside the tile."""
        self.check_order()
        left, top = grid.ulx, grid.uly
        right, bottom = left + grid.width * grid.res, top - grid.height * grid.res
        x1, y1 = _side(self.x1, left), _side(self.y1, top)
        x2, y2 = _side(self.x2, right), _side(self.y2, bottom)
        Region(x1, y1, x2, y2).check_order()
        if x1 < left or x2 > right or y1 > top or y2 < bottom:
            raise ConfigError(
                f"region x1={x1} y1={y1} x2={x2} y2={y2} is not inside the tile "
                f"(x {left}..{right}, y {bottom}..{top})"
            )
        return x1, y1, x2, y2


def _side(value: float | None, edge: float) -> float:
    return edge if value is None else float(value)
