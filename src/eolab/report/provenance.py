"""The report's provenance page: what ran (every Snakemake benchmark TSV: rule, wildcards, wall
time, peak memory), on which configuration (its SHA-256 and every key) and where (the
``environment`` block the results already carry: versions, CPU, host; eolab.core.provenance).

Written as one self-contained HTML page (no script, no external resource).
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eolab.core.atomic import atomic_path


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the configuration as canonical JSON (sorted keys): equal configs, equal hash."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted.key, JSON value)`` for every leaf of the configuration."""
    rows = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, json.dumps(value, default=str)))
    return rows


def jobs(benchmarks_root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every job that wrote a Snakemake benchmark TSV: rule, wildcards, seconds, max RSS (MB)."""
    root = Path(benchmarks_root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        with open(path, encoding="utf-8", newline="") as fh:
            first = next(csv.DictReader(fh, delimiter="\t"), None)
        if first is None:
            continue
        rel = path.relative_to(root).with_suffix("")  # <rule>.tsv or <rule>/<wildcards>.tsv
        rows.append(
            {
                "rule": rel.parts[0],
                "wildcards": "/".join(rel.parts[1:]),
                "s": float(first.get("s") or "nan"),
                "max_rss_mb": float(first.get("max_rss") or "nan"),
            }
        )
    return rows


def environments(records: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """The ``environment`` block of each result JSON that has one (with its file name)."""
    out = []
    for path in records:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        env = doc.get("environment") if isinstance(doc, dict) else None
        if env:
            out.append({"file": str(path), **env})
    return out


def _table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#eef}code{background:#f4f4f4}"
)


def render(config: Mapping[str, Any], job_rows: list[dict], envs: list[dict]) -> str:
    """The provenance page's HTML."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>eolab provenance</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>eolab provenance</h1>",
        f"<p>Configuration SHA-256 (canonical JSON): <code>{config_hash(config)}</code></p>",
        "<h2>Where the results were produced</h2>",
    ]
    env_rows = []
    for env in envs:
        versions = env.get("versions", {})
        env_rows.append(
            [
                env["file"],
                env.get("created", ""),
                env.get("hostname", ""),
                f"{env.get('cpu', '')} ({env.get('cpu_count', '?')} CPUs)",
                env.get("slurm_job_id") or "-",
                env.get("python", ""),
                ", ".join(f"{k} {v}" for k, v in versions.items() if v),
            ]
        )
    header = ["result", "created (UTC)", "host", "CPU", "Slurm job", "Python", "versions"]
    parts.append(_table(header, env_rows) if env_rows else "<p>No result carries provenance.</p>")
    total = sum(j["s"] for j in job_rows)
    parts.append(f"<h2>What ran: {len(job_rows)} jobs, {total:.1f} s in all</h2>")
    parts.append(
        _table(
            ["rule", "wildcards", "wall time (s)", "peak memory (MB)"],
            [
                [j["rule"], j["wildcards"], f"{j['s']:.2f}", f"{j['max_rss_mb']:.0f}"]
                for j in job_rows
            ],
        )
    )
    parts.append("<h2>Configuration</h2>")
    parts.append(_table(["key", "value"], flatten(config)))
    parts.append("</body></html>")
    return "".join(parts)


def write_page(
    config: Mapping[str, Any],
    benchmarks_root: str | os.PathLike,
    records: Iterable[str | os.PathLike],
    out: str | os.PathLike,
) -> Path:
    """Write the provenance page to ``out`` (atomically)."""
    page = render(config, jobs(benchmarks_root), environments(records))
    out = Path(out)
    with atomic_path(out, suffix=".html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out
