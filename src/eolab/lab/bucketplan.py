"""Where a tile's staged formats go on S3, and how many objects each bucket will hold.

The S3 layout (config ``storage.s3.layout``) keeps all years of a tile together:

* ``shared`` (default): one bucket ``<bucket>``, keys ``<prefix>/<format>/<tile>_<year>…`` —
  every tile in the same bucket;
* ``tile-prefix``: one bucket, keys ``<prefix>/<tile>/<format>/…`` — a prefix per tile;
* ``tile-bucket``: one bucket per tile, ``<bucket>-<tile>`` (tile in lower case), keys
  ``<prefix>/<format>/…`` — the reference's choice for Allas, whose quota is per bucket.

`objects_per_bucket` plans the object count of every bucket from the config before any job
runs: per tile-year and format, the files each format writes (SAFE products, COGs, Zarr chunk or
shard objects from the configured chunks, one zip), for the planned dates per year.
`quota_problems` turns a bucket over ``storage.s3.max_objects_per_bucket`` into one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: ``storage.s3.layout`` values.
LAYOUTS = ("shared", "tile-prefix", "tile-bucket")
#: Full-size Sentinel-2 L1C tile edge (pixels) per resolution group.
TILE_PIXELS = {"10m": 10980, "20m": 5490, "60m": 1830}
#: Files of one SAFE product as staged (every file of the product folder): 13 band JPEG2000s,
#: TCI, preview, the QI_DATA masks and reports, metadata XMLs and manifest, as the fixture
#: generator writes a real L1C product's tree.
SAFE_FILES_PER_PRODUCT = 65
#: Files of one COG product folder: 10m/20m/60m.tif, MTD_MSIL1C.xml, MTD_TL.xml, product.json.
COG_FILES_PER_PRODUCT = 6
#: Arrays of a Zarr resolution group besides ``data`` (eolab.sentinel2.datacube): time + 3 string
#: + 2 per-band labels (time-indexed, chunks of 1024 dates); band, center_wavelength, x, y (one
#: chunk each); spatial_ref (attributes only: its one value is the fill value, never written).
_TIME_LABELS = 6
_STATIC_ARRAYS = 4
_LABEL_CHUNK = 1024
#: The store's root group and its <tile> and <tile>/<year> groups.
_ROOT_GROUPS = 3


def tile_location(s3: Mapping[str, Any], tile: str) -> tuple[str, str]:
    """(bucket, key prefix) of ``tile``'s staged formats under the configured layout."""
    bucket, prefix = s3["bucket"], (s3.get("prefix") or "").strip("/")
    layout = s3.get("layout") or "shared"
    if layout == "tile-bucket":
        return f"{bucket}-{tile.lower()}", prefix
    if layout == "tile-prefix":
        return bucket, "/".join(p for p in (prefix, tile) if p)
    return bucket, prefix


def _blocks(dates: int, size: int, block: Sequence[int]) -> int:
    """Objects of a (time, y, x) array of ``dates`` x ``size`` x ``size`` cut in ``block``s."""
    t, y, x = block
    return math.ceil(dates / t) * math.ceil(size / y) * math.ceil(size / x)


def zarr_objects(dates: int, scale: int, blocks: Mapping[str, Sequence[int]]) -> int:
    """Objects of a Zarr store of ``dates`` dates: ``blocks`` are the chunks (plain store) or the
    shards (sharded store) per group. Every block is counted as if it held data: an upper
    bound, as Zarr leaves out a block that is all fill value (a swath's empty corner, or the
    processing_baseline labels when every product has the first baseline, code 0)."""
    labels = math.ceil(dates / _LABEL_CHUNK)
    total = _ROOT_GROUPS
    for group, pixels in TILE_PIXELS.items():
        data = _blocks(dates, pixels // scale, blocks[group])
        # zarr.json of the group, of data and of each array; blocks; label and static chunks;
        # spatial_ref's zarr.json
        total += 2 + data + _TIME_LABELS * (1 + labels) + _STATIC_ARRAYS * 2 + 1
    return total


def format_objects(fmt: str, dates: int, scale: int, zarr: Mapping[str, Any]) -> int:
    """Objects one tile-year of format ``fmt`` puts on S3."""
    if fmt == "safe":
        return 1 + dates * SAFE_FILES_PER_PRODUCT
    if fmt == "cog":
        return 1 + dates * COG_FILES_PER_PRODUCT
    if fmt == "zarr":
        return zarr_objects(dates, scale, zarr["chunks"])
    if fmt == "zarr-sharded":
        return zarr_objects(dates, scale, zarr["shards"])
    if fmt == "zarr-zip":
        return 1
    raise ValueError(f"unknown format {fmt!r}")


def sentinel2_years(s2: Mapping[str, Any]) -> list[int]:
    """The configured years: ``years`` (a list, or ``{start, end}`` inclusive) when set, else
    the single ``year``."""
    years = s2.get("years")
    if years is None:
        return [int(s2["year"])]
    if isinstance(years, Mapping):
        return list(range(int(years["start"]), int(years["end"]) + 1))
    return sorted({int(y) for y in years})


def planned_dates(config: Mapping[str, Any]) -> tuple[int, int]:
    """(dates per tile-year, tile scale) the plan assumes: the fixture's, or for real products
    ``sentinel2.dates_per_year`` at full size."""
    s2 = config["sentinel2"]
    if s2.get("source", "fixtures") == "fixtures":
        fixture = config["fixtures"]["sentinel2"]
        return int(fixture["dates"]), int(fixture["scale"])
    return int(s2["dates_per_year"]), 1


def staged_tiles_formats(config: Mapping[str, Any]) -> dict[str, set[str]]:
    """The formats each tile stages to S3: the patch-load benchmark's (its tiles, null = all)
    and the train-feed benchmark's."""
    bench = config["benchmark"]
    load, feed = bench["patch_load"], bench["train_feed"]
    out: dict[str, set[str]] = {}
    for tile in load["tiles"] or config["sentinel2"]["tiles"]:
        out.setdefault(tile, set()).update(load["formats"])
    for tile in feed["tiles"]:
        out.setdefault(tile, set()).update(feed["formats"])
    return out


def objects_per_bucket(config: Mapping[str, Any]) -> dict[str, int]:
    """Planned objects of every bucket the staging will write (config with schema defaults)."""
    s3 = config["storage"]["s3"]
    dates, scale = planned_dates(config)
    zarr = config["sentinel2_convert"]["zarr"]
    years = len(sentinel2_years(config["sentinel2"]))
    counts: dict[str, int] = {}
    for tile, formats in staged_tiles_formats(config).items():
        bucket, _ = tile_location(s3, tile)
        per_year = sum(format_objects(f, dates, scale, zarr) for f in sorted(formats))
        counts[bucket] = counts.get(bucket, 0) + years * per_year
    return counts


def bucket_name_problems(config: Mapping[str, Any]) -> list[str]:
    """A per-tile bucket name over S3's 63 characters (``tile-bucket`` adds ``-<tile>``)."""
    s3 = config["storage"]["s3"]
    names = {tile_location(s3, t)[0] for t in staged_tiles_formats(config)}
    too_long = sorted(n for n in names if len(n) > 63)
    if not too_long:
        return []
    return [
        f"config storage.s3.bucket: {too_long[0]} is {len(too_long[0])} characters, S3 allows 63"
        " (layout tile-bucket appends -<tile>: shorten storage.s3.bucket)"
    ]


def quota_problems(config: Mapping[str, Any]) -> list[str]:
    """One line for the fullest bucket over ``storage.s3.max_objects_per_bucket`` (none if all
    fit)."""
    s3 = config["storage"]["s3"]
    quota = s3.get("max_objects_per_bucket")
    counts = objects_per_bucket(config)
    over = [(n, b) for b, n in counts.items() if quota is not None and n > quota]
    if not over:
        return []
    n, bucket = max(over)
    others = f" (and {len(over) - 1} more buckets)" if len(over) > 1 else ""
    hint = (
        "use storage.s3.layout: tile-bucket (one bucket per tile)"
        if s3.get("layout", "shared") != "tile-bucket"
        else "fewer years per config, larger zarr chunks/shards, or fewer formats"
    )
    return [
        f"config storage.s3: bucket {bucket} would hold {n} objects{others}, over"
        f" storage.s3.max_objects_per_bucket {quota} ({_layout(s3)}): {hint}"
    ]


def _layout(s3: Mapping[str, Any]) -> str:
    return f"layout {s3.get('layout', 'shared')}"


def years_problems(s2: Mapping[str, Any]) -> list[str]:
    """A ``{start, end}`` range that runs backwards."""
    years = s2.get("years")
    if isinstance(years, Mapping) and int(years["start"]) > int(years["end"]):
        return [
            f"config sentinel2.years: start {years['start']} is after end {years['end']}"
            " (the range is inclusive: start <= end)"
        ]
    return []
