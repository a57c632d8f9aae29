"""Helpers to run the workflow in an isolated copy, so tests never touch the project's results/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What a workflow run needs from the project (linked, not copied).
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "envs", "profiles", "report")


def make_workflow_copy(dest: Path) -> Path:
    """Link the workflow's parts into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        if (ROOT / part).exists():
            (dest / part).symlink_to(ROOT / part)
    return dest


def run_snakemake(workdir: Path, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the project's venv on PATH (rules call ``eolab``)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
