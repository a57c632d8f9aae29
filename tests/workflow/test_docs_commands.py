"""Every ```bash block of the README and docs/ runs, on a copy of the session's demo outputs.

A block that cannot run here is marked on the line before it, with the reason:
``<!-- cluster-only: REASON -->`` (needs Slurm, CSC_PROJECT, CDSE keys or the internet) or
``<!-- not-run: REASON -->`` (e.g. the test suite's own set-up, or a full-size run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from workflow_util import BIN, ROOT, make_workflow_copy

pytestmark = pytest.mark.workflow

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(bash|sh|shell|console)\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"^<!--\s*(cluster-only|not-run)\s*:\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    code: str
    marker: str | None
    reason: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_blocks() -> list[Block]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            before = text[: match.start()].rstrip("\n").splitlines()
            marked = MARKER.match(before[-1].strip()) if before else None
            blocks.append(
                Block(
                    doc=str(doc.relative_to(ROOT)),
                    line=text.count("\n", 0, match.start()) + 1,
                    code=match.group(2),
                    marker=marked.group(1) if marked else None,
                    reason=marked.group(2) if marked else "",
                )
            )
    return blocks


BLOCKS = shell_blocks()
RUNNABLE = [b for b in BLOCKS if b.marker is None]


def test_the_docs_have_shell_blocks_and_every_marked_one_says_why():
    assert len(RUNNABLE) >= 5, [b.id for b in BLOCKS]
    for block in BLOCKS:
        if block.marker:
            assert len(block.reason) >= 10, f"{block.id}: {block.marker} without a reason"


@pytest.fixture(scope="module")
def docs_workdir(demo_run, tmp_path_factory):
    """A workflow copy holding a copy of the demo's outputs and Snakemake's records of them (so
    the docs' commands may overwrite them), with `.venv` = this interpreter's environment."""
    workdir = make_workflow_copy(tmp_path_factory.mktemp("docs"))
    shutil.copytree(demo_run / "results", workdir / "results", symlinks=True)
    shutil.copytree(
        demo_run / ".snakemake",
        workdir / ".snakemake",
        symlinks=True,
        ignore=shutil.ignore_patterns("locks", "log", "incomplete"),
    )
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    return workdir


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_the_block_runs_on_the_demo_outputs(docs_workdir, block):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CSC_PROJECT", None)
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.code],
        cwd=docs_workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{block.id} failed ({proc.returncode}):\n{block.code}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
