"""``eolab download …``: dataset downloaders; ``eolab bench download``: their benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eolab.download.fetch import RetryPolicy
from eolab.download.stac_dataset import DEFAULT_WORKERS


@click.group(short_help="Download STAC datasets and their assets.")
def download() -> None:
    """Download datasets (STAC catalogs and their assets) with resume, retries and checksums."""


@download.command("stac-dataset", short_help="Download a STAC dataset and its assets.")
@click.argument("source")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Root folder of datasets."
)
@click.option("--dataset", default=None, help="Folder name [default: archive name or catalog id].")
@click.option(
    "-c",
    "--collection",
    "collections",
    multiple=True,
    metavar="ID[=KEY,...]",
    help="Only this collection, optionally only these asset keys (repeatable).",
)
@click.option(
    "--assets", default=None, metavar="KEY,...", help="Asset keys for collections without a list."
)
@click.option(
    "--datetime",
    "datetime_",
    default=None,
    metavar="DATE|A/B",
    help="A day (2020-05-01), month, year, instant or range A/B ('..' = open); items with "
    "start/end_datetime match when their range overlaps.",
)
@click.option("--bbox", default=None, metavar="MINX,MINY,MAXX,MAXY", help="WGS84 box.")
@click.option(
    "--intersects",
    default=None,
    metavar="GEOJSON|FILE",
    help="A GeoJSON geometry/Feature(Collection), inline or a file; true geometry intersection.",
)
@click.option("--catalog-only", is_flag=True, help="Fetch and index the catalog, no assets.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Download threads.",
)
@click.option(
    "--retries", type=click.IntRange(1, 50), default=6, show_default=True, help="Attempts per file."
)
@click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Read timeout, seconds."
)
@click.option(
    "--checksum-retries",
    type=click.IntRange(0, 10),
    default=1,
    show_default=True,
    help="Re-downloads of a file whose checksum is wrong before it is reported.",
)
@click.option(
    "--s3-endpoint", default=None, envvar="AWS_ENDPOINT_URL", help="Endpoint for s3:// hrefs."
)
@click.option(
    "--s3-no-sign-request", is_flag=True, help="Read s3:// hrefs of public buckets unsigned."
)
@click.option("--reindex", is_flag=True, help="Walk the catalog again even if unchanged.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def stac_dataset(
    source,
    out,
    dataset,
    collections,
    assets,
    datetime_,
    bbox,
    intersects,
    catalog_only,
    workers,
    retries,
    timeout,
    checksum_retries,
    s3_endpoint,
    s3_no_sign_request,
    reindex,
    no_progress,
) -> None:
    """Download a STAC dataset: SOURCE is a catalog archive (URL or path), a catalog URL, or a
    catalog folder/file. Files go to OUT/<dataset>/<collection>/<item>/<key><ext>; shared assets
    once to <collection>/_common/. Reruns resume and skip what is done; failures are listed in
    OUT/<dataset>/_download-errors.csv and make the command exit 1."""
    from eolab.download.filters import make_filters
    from eolab.download.stac_dataset import StacDatasetOptions, download_stac_dataset

    filters = make_filters(collections, assets, datetime_, bbox, intersects)
    options = StacDatasetOptions(
        out=out,
        filters=filters,
        dataset=dataset,
        catalog_only=catalog_only,
        workers=workers,
        retry=RetryPolicy(attempts=retries),
        timeout=timeout,
        checksum_retries=checksum_retries,
        s3_endpoint=s3_endpoint,
        s3_unsigned=s3_no_sign_request,
        reindex=reindex,
        progress=not no_progress,
    )
    summary = download_stac_dataset(source, options)
    cat = summary["catalog"]
    line = (
        f"{summary['dataset']}: {cat['items']} items, {cat['assets']} assets "
        f"({'re-indexed' if cat['reindexed'] else 'index reused'}); "
        f"selected {summary['selected']['files']} files"
    )
    if "download" in summary:
        d = summary["download"]
        line += f"; downloaded {d['downloaded']}, already here {d['present']}, failed {d['failed']}"
    click.echo(line)
    click.echo(f"summary: {Path(summary['folder']) / '_download-summary.json'}")


@click.command("download", short_help="Assets/s from a loopback server.")
@click.option("--assets", type=click.IntRange(10), default=10_000, show_default=True)
@click.option("--asset-bytes", type=click.IntRange(1), default=16_384, show_default=True)
@click.option(
    "--sizes",
    default="1000,10000,100000",
    show_default=True,
    help="Catalog sizes (items) for the memory curve.",
)
@click.option(
    "--workers", type=click.IntRange(1, 256), default=None, help="[default: the downloader's]"
)
@click.option("--repeats", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option(
    "--server",
    type=click.Choice(["auto", "nginx", "python"]),
    default="auto",
    show_default=True,
    help="Loopback server for the assets (auto = nginx when installed).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Scratch folder [default: a temporary one].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results/benchmark/download/download.json"),
    show_default=True,
)
def bench_download(assets, asset_bytes, sizes, workers, repeats, server, workdir, out) -> None:
    """Assets/s downloading small assets from a loopback server (vs. a bare GET loop), and peak
    memory of indexing + selecting as the catalog grows."""
    from eolab.download.bench import run_benchmark

    result = run_benchmark(
        assets=assets,
        asset_bytes=asset_bytes,
        sizes=[int(s) for s in sizes.split(",") if s.strip()],
        workers=workers,
        repeats=repeats,
        server=server,
        workdir=workdir,
        out=out,
    )
    click.echo(json.dumps(result["headline"], indent=2))
    click.echo(f"written to {out}")
