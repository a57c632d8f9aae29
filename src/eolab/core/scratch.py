"""Node-local temporary space: ``$LOCAL_SCRATCH``, then ``$TMPDIR``, then a configured folder.

On CSC Puhti a job that asks for ``--gres=nvme:<GB>`` gets its NVMe share as ``$LOCAL_SCRATCH``;
on Roihu every job has node-local disk as ``$TMPDIR``; elsewhere (a laptop, CI) the configured
fallback or the system temporary folder is used. The Slurm executor submits with
``--export=ALL``, so a job can inherit a variable that points at another job's (or another
node's) folder: a variable is only used when it names an existing directory.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eolab.core.errors import ConfigError

# Checked in this order; the first one naming an existing directory wins.
NODE_LOCAL_ENV_VARS = ("LOCAL_SCRATCH", "TMPDIR")


@dataclass(frozen=True)
class NodeLocal:
    """A resolved node-local folder and where it came from (an env var, config or system)."""

    path: Path
    source: str


def resolve_node_local(
    configured: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> NodeLocal:
    """Resolve the node-local folder without creating anything but the configured fallback.

    ``configured`` (None or "" for none) is created when it is the one chosen; the last resort is
    :func:`tempfile.gettempdir`.
    """
    environ = os.environ if environ is None else environ
    for name in NODE_LOCAL_ENV_VARS:
        value = environ.get(name, "")
        if value and Path(value).is_dir():
            return NodeLocal(Path(value), f"${name}")
    if configured:
        path = Path(configured).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"node-local fallback folder {path}: cannot create it: {exc}"
            ) from exc
        return NodeLocal(path, "configured")
    return NodeLocal(Path(tempfile.gettempdir()), "system")


def node_local_dir(
    configured: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The folder for a job's temporary outputs (see :func:`resolve_node_local`)."""
    return resolve_node_local(configured, environ).path


# -- sizing node-local space (Puhti's `--gres=nvme:<GB>`) ----------------------------------------


ZARR_SUMMARY_SUFFIX = ".summary.json"  # <store>.summary.json: the workflow's Zarr rule output


def input_bytes(paths: Iterable[str | os.PathLike]) -> int:
    """Bytes behind a job's inputs: files, folders (recursively), and for the JSON files that
    stand for data the data itself: a products manifest's SAFE products, a COG listing's COGs,
    a Zarr store's summary (``<store>.summary.json``) the store beside it. Rules name only
    those files as inputs (see rules/sentinel2.smk).

    Missing paths count 0: during a dry run the inputs of later jobs do not exist yet.
    """
    total = 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            total += _tree_bytes(path)
        elif path.is_file():
            if path.name.endswith(ZARR_SUMMARY_SUFFIX):
                total += _tree_bytes(path.with_name(path.name[: -len(ZARR_SUMMARY_SUFFIX)]))
            elif path.suffix == ".json":
                total += _manifest_bytes(path)
            total += path.stat().st_size
    return total


def nvme_gb(nbytes: int, factor: float = 2.0, margin_gb: int = 10) -> int:
    """GiB of node-local disk for ``nbytes`` of input: ``factor`` x input, rounded up, + margin."""
    if factor < 0 or margin_gb < 0:
        raise ValueError(f"factor ({factor}) and margin_gb ({margin_gb}) must be >= 0")
    return math.ceil(nbytes * factor / 2**30) + margin_gb


@functools.cache
def slurm_offers_nvme() -> bool:
    """Whether the Slurm cluster we submit to has an ``nvme`` GRES (Puhti: yes; Roihu, a laptop:
    no). Asked once per process; no Slurm, or one that does not answer, means no."""
    if not shutil.which("sinfo"):
        return False
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(
        g.split(":")[0] == "nvme" for line in proc.stdout.split() for g in line.split(",")
    )


def nvme_gres(paths: Iterable[str | os.PathLike], factor: float = 2.0, margin_gb: int = 10) -> str:
    """``nvme:<GiB>`` sized from the inputs where Slurm offers an nvme GRES, else "" (no GRES).

    The Slurm executor turns the ``gres`` resource into ``--gres=...`` and leaves it out when
    empty, so a rule can declare this unconditionally and still run on Roihu or a laptop.
    """
    if not slurm_offers_nvme():
        return ""
    return f"nvme:{nvme_gb(input_bytes(paths), factor, margin_gb)}"


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += (Path(folder) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total


def _manifest_bytes(path: Path) -> int:
    """The products' bytes if ``path`` is a products manifest or a COG listing, else 0."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return 0
    products = doc.get("products") if isinstance(doc, dict) else None
    if not isinstance(products, list):
        return 0
    total = 0
    for product in products:
        if isinstance(product.get("bytes"), int):
            total += product["bytes"]
        elif product.get("path"):
            total += _tree_bytes(path.parent / product["path"])
        elif isinstance(product.get("cogs"), dict):
            for rel in product["cogs"].values():
                cog = path.parent / rel
                total += cog.stat().st_size if cog.is_file() else 0
    return total
