"""The CDSE intake of one tile and time range: search, download, verify, write the manifest.

The products manifest (`eolab.sentinel2.products`) lists every product found, with ``verified``
telling whether all of its files are present and checked. A run that leaves a product unverified
still writes the manifest, then fails (unless ``allow_unverified``), so a rerun picks up the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eolab.core.errors import InputError, RemoteError
from eolab.intake import s3, search
from eolab.intake.download import ProductFetch, fetch_products

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeSettings:
    """Where to search and download, and how hard to try (config section ``cdse``)."""

    stac_url: str = search.STAC_URL
    collection: str = search.COLLECTION
    endpoint_url: str = s3.ENDPOINT_URL
    bucket: str = s3.BUCKET
    region: str = s3.REGION
    profile: str | None = None
    max_cloud_cover: float | None = None
    workers: int = s3.WORKERS
    retries: int = s3.RETRIES
    window_hours: float = 24.0
    strategy: str = "auto"
    requests_per_minute: float | None = s3.REQUESTS_PER_MINUTE


def find_items(
    tile: str, start: dt.datetime, end: dt.datetime, settings: IntakeSettings
) -> search.SearchResult:
    """Search the STAC API; an empty result is an InputError naming the query."""
    stac = search.open_client(settings.stac_url, retries=settings.retries)
    result = search.search_tile(
        stac,
        tile,
        start,
        end,
        collection=settings.collection,
        max_cloud_cover=settings.max_cloud_cover,
        window=dt.timedelta(hours=settings.window_hours),
        strategy=settings.strategy,
    )
    log.info(
        "%d products of %s in %d windows (%s search); %d older processings left out",
        len(result.items),
        tile,
        len(result.windows),
        result.strategy,
        len(result.superseded),
    )
    if not result.items:
        cloud = (
            f", cloud cover <= {settings.max_cloud_cover}%"
            if settings.max_cloud_cover is not None
            else ""
        )
        raise InputError(
            f"no {settings.collection} products of tile {tile} from {start:%Y-%m-%d %H:%M} to "
            f"{end:%Y-%m-%d %H:%M} UTC{cloud} at {settings.stac_url}"
        )
    return result


def product_entry(prod: ProductFetch, manifest_dir: Path) -> dict[str, Any]:
    """The products-manifest entry of a fetched product (path relative to the manifest)."""
    from eolab.sentinel2.safe import format_time, parse_time

    props = prod.item.get("properties", {})
    entry = {
        "id": prod.id,
        "path": Path(os.path.relpath(prod.local, manifest_dir)).as_posix(),
        "datetime": format_time(parse_time(props["datetime"], f"STAC item {prod.id}")),
        "files": len(prod.files),
        "bytes": sum(f.size for f in prod.files),
        "verified": prod.verified,
        "cloud_cover": props.get("eo:cloud_cover"),
        "fetched_files": prod.count("fetched"),
        "fetched_bytes": prod.fetched_bytes,
        "checked_by": prod.checks(),
    }
    if prod.problems:
        entry["problems"] = prod.problems
    return entry


def run_intake(
    tile: str,
    start: dt.datetime | str,
    end: dt.datetime | str,
    out: str | Path,
    *,
    manifest: str | Path | None = None,
    settings: IntakeSettings | None = None,
    client=None,
    allow_unverified: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Search, download and verify every product of ``tile`` in [start, end); write and return
    the products manifest (default ``<out>/<tile>_<start year>.json``)."""
    from eolab.sentinel2.mgrs import tile_grid
    from eolab.sentinel2.products import write_manifest

    settings = settings or IntakeSettings()
    tile = tile_grid(tile).tile
    start, end = search.parse_date(start), search.parse_date(end)
    out = Path(out)
    manifest = Path(manifest) if manifest else out / f"{tile}_{start.year}.json"
    if client is None:
        client = s3.make_client(
            settings.endpoint_url,
            region=settings.region,
            profile=settings.profile,
            workers=settings.workers,
            retries=settings.retries,
            requests_per_minute=settings.requests_per_minute,
        )
    s3.check_access(client, settings.bucket)  # bad keys fail now, not after a long search
    items = find_items(tile, start, end, settings).items
    prods = fetch_products(
        items,
        out,
        client,
        bucket=settings.bucket,
        workers=settings.workers,
        retries=settings.retries,
        progress=progress,
    )
    doc = write_manifest(
        manifest,
        tile,
        start.year,
        "cdse",
        [product_entry(p, manifest.parent.resolve()) for p in prods],
    )
    bad = [p for p in prods if not p.verified]
    if bad and not allow_unverified:
        first = bad[0]
        raise RemoteError(
            f"{len(bad)} of {len(prods)} products not verified (listed in {manifest}); "
            f"rerun to fetch the rest. First: {first.id}: "
            f"{first.problems[0] if first.problems else 'incomplete'}"
        )
    return doc
