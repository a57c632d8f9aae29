"""``eolab intake …``: fetch raw products from data providers, resumably and verified."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from eolab.intake import s3, search


@click.group(short_help="Fetch raw products (resumable).")
def intake() -> None:
    """Fetch raw products (resumable: a rerun fetches only what is missing or wrong)."""


def _date_range(year, start, end) -> tuple[str, str]:
    if year is not None:
        if start or end:
            raise click.UsageError("give either --year or --start/--end, not both")
        return f"{year}-01-01", f"{year + 1}-01-01"
    if not (start and end):
        raise click.UsageError("give --year, or both --start and --end")
    return start, end


@intake.command("cdse", short_help="Sentinel-2 L1C of one tile from CDSE.")
@click.option("--tile", required=True, help="MGRS tile id, e.g. 35VLH.")
@click.option("--year", type=int, default=None, help="Whole UTC year (instead of --start/--end).")
@click.option("--start", default=None, help="First day (UTC, inclusive), YYYY-MM-DD.")
@click.option("--end", default=None, help="Last day (UTC, exclusive), YYYY-MM-DD.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Root folder.")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=None,
    help="Products manifest JSON [default: OUT/<tile>_<year>.json].",
)
@click.option("--max-cloud-cover", type=click.FloatRange(0, 100), default=None, help="Percent.")
@click.option("--stac-url", default=search.STAC_URL, show_default=True)
@click.option("--collection", default=search.COLLECTION, show_default=True)
@click.option("--endpoint-url", default=s3.ENDPOINT_URL, show_default=True, help="S3 endpoint.")
@click.option("--bucket", default=s3.BUCKET, show_default=True)
@click.option("--region", default=s3.REGION, show_default=True)
@click.option(
    "--profile",
    default=None,
    help="Named AWS profile holding the CDSE S3 keys [default: the AWS environment].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=s3.WORKERS,
    show_default=True,
    help="Parallel S3 connections (CDSE allows 4).",
)
@click.option("--retries", type=click.IntRange(0, 20), default=s3.RETRIES, show_default=True)
@click.option(
    "--requests-per-minute",
    type=click.FloatRange(0),
    default=s3.REQUESTS_PER_MINUTE,
    show_default=True,
    help="Pace S3 requests under this quota (0: no pacing).",
)
@click.option(
    "--window-hours",
    type=click.FloatRange(0.01),
    default=24.0,
    show_default=True,
    help="Time span of one STAC query (a UTC day keeps each far below the 10 000 cap).",
)
@click.option(
    "--strategy",
    type=click.Choice(search.STRATEGIES),
    default="auto",
    show_default=True,
    help="Tile selection: CQL2 filter on grid:code, or intersects + client-side check.",
)
@click.option("--search-only", is_flag=True, help="List the products found; download nothing.")
@click.option(
    "--allow-unverified", is_flag=True, help="Exit 0 even if some products are not verified."
)
@click.option("--progress/--no-progress", default=None, help="[default: on a terminal]")
def cdse(tile, year, start, end, out, manifest, search_only, allow_unverified, progress, **opts):
    """Sentinel-2 L1C products of one tile from the CDSE STAC API and S3 (layout
    Sentinel-2/MSI/L1C/YYYY/MM/DD/<name>.SAFE), verified by manifest.safe SHA3-256."""
    from eolab.intake.intake import IntakeSettings, find_items, run_intake

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    start, end = _date_range(year, start, end)
    opts["requests_per_minute"] = opts["requests_per_minute"] or None
    settings = IntakeSettings(**opts)
    if search_only:
        from eolab.sentinel2.mgrs import tile_grid

        result = find_items(
            tile_grid(tile).tile, search.parse_date(start), search.parse_date(end), settings
        )
        for item in result.items:
            props = item["properties"]
            click.echo(f"{item['id']}\t{props.get('datetime')}\t{props.get('eo:cloud_cover')}")
        return
    doc = run_intake(
        tile,
        start,
        end,
        out,
        manifest=manifest,
        settings=settings,
        allow_unverified=allow_unverified,
        progress=progress,
    )
    products = doc["products"]
    verified = sum(p["verified"] for p in products)
    fetched = sum(p["fetched_bytes"] for p in products)
    click.echo(
        f"{verified}/{len(products)} products of {doc['tile']} verified under {out}; "
        f"{fetched / 2**20:.1f} MiB fetched this run"
    )
