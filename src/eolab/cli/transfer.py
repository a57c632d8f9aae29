"""``eolab transfer …``: move large files between places without staging them on disk."""

from __future__ import annotations

from pathlib import Path

import click


def _size(text: str) -> int:
    """``16MiB``, ``64M``, ``5242880`` -> bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


@click.group(short_help="Stream remote files into S3 or a folder.")
def transfer() -> None:
    """Stream remote files (e.g. expiring signed links) into S3 or a local folder."""


@transfer.command("urls-to-s3", short_help="Stream links into S3 or a folder.")
@click.argument("links", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dest", required=True, help="s3://bucket/prefix or a local folder.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="[default: one per link, max 16]"
)
@click.option(
    "--part-size", default="16MiB", show_default=True, help="Multipart part size (min 5MiB)."
)
@click.option("--s3-endpoint", default=None, envvar="AWS_ENDPOINT_URL", help="S3 endpoint URL.")
@click.option("--retries", type=click.IntRange(1, 50), default=6, show_default=True)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Read timeout, s.")
@click.option(
    "--summary", type=click.Path(path_type=Path), default=None, help="Write a summary JSON here."
)
@click.option("--no-progress", is_flag=True)
def urls_to_s3(
    links, dest, workers, part_size, s3_endpoint, retries, timeout, summary, no_progress
) -> None:
    """Stream every link of LINKS (JSON: a list of {"url", "name", "sha256"?, "size"?} or a
    mapping name -> url) to DEST in parallel, through multipart uploads with bounded memory.
    Each object gets its sha256 as metadata; identical objects are skipped; expired links are
    reported by name while the others finish; exits 1 if any link failed."""
    from eolab.core.atomic import write_json
    from eolab.core.errors import InputError
    from eolab.download.fetch import RetryPolicy
    from eolab.download.url_to_s3 import load_links, raise_for_failures, summarize, transfer_links

    try:
        part = _size(part_size)
    except ValueError as exc:
        raise InputError(f"--part-size {part_size!r} is not a size") from exc
    items = load_links(links)
    results = transfer_links(
        items,
        dest,
        workers=workers,
        part_size=part,
        s3_endpoint=s3_endpoint,
        retry=RetryPolicy(attempts=retries),
        timeout=timeout,
        progress=not no_progress,
    )
    for r in results:
        detail = r.error if r.status == "failed" else f"{r.bytes} bytes sha256 {r.sha256}"
        click.echo(f"{r.status:8s} {r.name}: {detail}")
    if summary:
        write_json(summary, summarize(results, dest))
    raise_for_failures(results)
