"""Fault tier: real processes killed with SIGKILL, two writers at once, a full disk.

Every test adds its outcomes to one tally, printed at the end of the session (and written to
``$EOLAB_FAULT_TALLY`` when set): kills tried / recovered identical; faults tried / clear
one-line errors / tracebacks / data lost.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from fault_util import TALLY


def pytest_terminal_summary(terminalreporter):
    if not TALLY:
        return
    line = (
        f"kills tried {TALLY['kills']}, recovered identical {TALLY['recovered']}; "
        f"faults tried {TALLY['faults']}, clear one-line errors {TALLY['clear']}, "
        f"tracebacks {TALLY['tracebacks']}, data lost {TALLY['lost']}"
    )
    terminalreporter.write_sep("-", "fault tally")
    terminalreporter.write_line(line)
    if os.environ.get("EOLAB_FAULT_TALLY"):
        Path(os.environ["EOLAB_FAULT_TALLY"]).write_text(json.dumps(dict(TALLY)) + "\n")


@pytest.fixture()
def tally() -> Counter:
    return TALLY


@pytest.fixture(scope="session")
def s2_manifest(tmp_path_factory) -> Path:
    """The tiny tile-year (35VLH 2024, 3 dates, 180/90/30 px), read-only."""
    from eolab.fixtures.sentinel2 import generate_tile_year

    root = tmp_path_factory.mktemp("faults-s2")
    manifest = root / "35VLH_2024.json"
    generate_tile_year(
        root, tile="35VLH", year=2024, dates=3, scale=61, seed=1, baseline="05.10",
        manifest=manifest,
    )  # fmt: skip
    return manifest
