"""What every stage chart of the report shares: an Agg figure, a title with the run's
conditions (and the shared demo-size marker), and a save that refuses a chart a reviewer would
send back (no title, an unlabelled axis, an empty panel) before `style.save` writes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eolab.core.errors import OutputError
from eolab.report import style


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8, 4.5)) -> Any:
    """``(fig, axes)`` with a 2-D array of axes, drawn off-screen (Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, squeeze=False)


def titled(fig: Any, title: str, conditions: str, demo: bool) -> None:
    """The figure's title with the run's conditions below it, and the shared "demo-size run"
    marker (`style.mark_demo`) above it for demo-size inputs."""
    fig.suptitle(title, fontsize=12, fontweight="bold", y=0.98)
    if conditions:
        fig.text(0.5, 0.93, conditions, ha="center", va="top", fontsize=8.5, color="#444")
    if demo:
        style.mark_demo(fig)
    fig.tight_layout(rect=(0, 0, 1, 0.9))


def save(fig: Any, path: str | os.PathLike) -> Path:
    """`style.save` (atomic PNG, fixed dpi); `OutputError` and nothing written when the chart
    has no title, an unlabelled axis or an empty panel (`chart_problems`)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if problems := chart_problems(fig):
        plt.close(fig)
        raise OutputError(
            f"{path}: chart not written: {'; '.join(problems)} (a bug in eolab.report)"
        )
    return style.save(fig, path)


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
