"""What every report chart shares: an Agg figure, a title with the run's conditions, an atomic
PNG save, and the check the unit tests run on every chart (title, labelled axes, data).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eolab.core.atomic import atomic_path
from eolab.core.errors import OutputError

DEMO_NOTE = "demo-size data (generated fixtures)"


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8, 4.5)) -> Any:
    """``(fig, axes)`` with a 2-D array of axes, drawn off-screen (Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, squeeze=False)


def titled(fig: Any, title: str, conditions: str, demo: bool) -> None:
    """The figure's title, with the run's conditions (and the demo-size note) below it."""
    lines = [conditions] if conditions else []
    if demo:
        lines.append(DEMO_NOTE)
    fig.suptitle(title, fontsize=12, fontweight="bold", y=1.0)
    if lines:
        fig.text(0.5, 0.955, " · ".join(lines), ha="center", va="top", fontsize=8.5, color="#444")
    fig.tight_layout(rect=(0, 0, 1, 0.93))


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and free it; `OutputError` (nothing written)
    when the chart has no title, an unlabelled axis or an empty panel (`chart_problems`)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if problems := chart_problems(fig):
        plt.close(fig)
        raise OutputError(
            f"{path}: chart not written: {'; '.join(problems)} (a bug in eolab.report)"
        )
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def integer_ticks(axis: Any) -> None:
    """Counts are whole: no 0.5 ticks on a count axis."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def chart_problems(fig: Any) -> list[str]:
    """What a reviewer would send back: no title, an axis without a label, an empty panel.

    Image panels (``imshow``) need no axis labels; every other visible panel needs both.
    """
    problems = []
    if not fig.get_suptitle().strip():
        problems.append("no title")
    for i, ax in enumerate(fig.axes):
        colorbar = getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"
        if not ax.get_visible() or colorbar:
            continue
        has_data = bool(ax.lines or ax.patches or ax.collections or ax.images or ax.tables)
        if not has_data:
            problems.append(f"panel {i}: no data")
        if ax.images:
            continue
        if not ax.get_xlabel().strip():
            problems.append(f"panel {i}: no x label")
        if not ax.get_ylabel().strip():
            problems.append(f"panel {i}: no y label")
    return problems
