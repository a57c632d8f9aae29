"""Workflow config sections as command-line arguments of the rules' ``eolab`` commands.

The rules (rules/*.smk) pass these strings through ``params`` into their shell commands, so each
function here is the one place a config key becomes a flag. Every value is shell-quoted; an
optional key that is unset (None, false, empty) gives no flag at all, so the command's own
default applies.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

#: Resolution groups in the order the CLI's ``10m:TxYxX,...`` block strings list them.
GROUPS = ("10m", "20m", "60m")


def option(flag: str, value: Any) -> str:
    """``flag value`` with the value shell-quoted."""
    return f"{flag} {shlex.quote(str(value))}"


def optional(flag: str, value: Any) -> list[str]:
    """``[flag value]``, or nothing when ``value`` is None or empty."""
    return [] if value is None or value == "" else [option(flag, value)]


def switches(section: Mapping[str, Any], flags: Mapping[str, str]) -> list[str]:
    """The boolean flags (``{config key: flag}``) whose config value is true."""
    return [flag for key, flag in flags.items() if section[key]]


def join(parts: Iterable[str]) -> str:
    """The flags joined by spaces into one command-line string."""
    return " ".join(parts)


def cdse_options(cdse: Mapping[str, Any]) -> str:
    """``eolab intake cdse`` optional flags: a named AWS profile, a cloud cover limit."""
    return join(
        optional("--profile", cdse["profile"] or None)
        + optional("--max-cloud-cover", cdse["max_cloud_cover"])
    )


def zarr_blocks(shapes: Mapping[str, Iterable[int]]) -> str:
    """Chunk or shard shapes per group as the CLI's ``10m:TxYxX,20m:…,60m:…`` string."""
    return ",".join(f"{group}:{'x'.join(str(v) for v in shapes[group])}" for group in GROUPS)


def zarr_options(zarr: Mapping[str, Any]) -> str:
    """``eolab sentinel2 to-zarr`` options from ``sentinel2_convert.zarr``."""
    compressor = "{cname}:{clevel}:{shuffle}".format(**zarr["compressor"])
    return join(
        [
            option("--chunks", zarr_blocks(zarr["chunks"])),
            option("--shards", zarr_blocks(zarr["shards"])),
            option("--compressor", compressor),
        ]
        + optional("--scratch", zarr["scratch"] or None)
    )


def storage_options(storage: Mapping[str, Any], tile: str | None = None) -> str:
    """Storage options of every ``eolab stage …`` / ``eolab bench patch-load`` call, from the
    ``storage`` section (no secrets: credentials come from the AWS environment). With ``tile``
    the bucket and prefix are that tile's under ``storage.s3.layout``
    (eolab.lab.bucketplan.tile_location)."""
    from eolab.lab.bucketplan import tile_location

    s3 = storage["s3"]
    bucket, prefix = tile_location(s3, tile) if tile else (s3["bucket"], s3["prefix"])
    return join(
        [option("--s3-bucket", bucket), option("--workers", storage["workers"])]
        + optional("--s3-prefix", prefix or None)
        + optional("--temp-dir", storage["temp"] or None)
        + optional("--s3-endpoint-url", s3["endpoint_url"] or None)
        + optional("--s3-profile", s3["profile"] or None)
        + optional("--s3-region", s3["region"] or None)
        + (["--s3-public-read"] if s3.get("public_read") else [])
    )


def patch_region_options(region: Mapping[str, Any] | None) -> str:
    """``eolab bench patch-load`` region flags (``--x1 --y1 --x2 --y2``) from
    ``benchmark.patch_load.region``; a side that is unset is the tile's edge (the order of the
    sides is checked with the config, eolab.core.config_checks; the tile bounds by the command)."""
    sides = dict(region or {})
    return join(part for key in REGION_SIDES for part in optional(f"--{key}", sides.get(key)))


#: ``benchmark.patch_load.region`` keys, also the flag names.
REGION_SIDES = ("x1", "y1", "x2", "y2")


BENV2_SWITCHES = {
    "float16": "--float16",
    "with_snow_cloud": "--with-snow-cloud",
    "delete_sources": "--delete-sources",
}


def benv2_options(benv2: Mapping[str, Any]) -> str:
    """``eolab benv2 tiles`` options from the ``benv2`` section (the split ratios only for
    ``split: resplit``)."""
    always = (
        "bands",
        "resampling",
        "normalise",
        "split",
        "split_group",
        "seed",
        "min_free_gb",
        "shard_patches",
    )
    ratios = ("train_ratio", "val_ratio") if benv2["split"] == "resplit" else ()
    return join(
        [option(f"--{key}", benv2[key]) for key in (*always, *ratios)]
        + [
            part
            for key in ("countries", "max_per_country", "target_gb", "store_compression")
            for part in optional(f"--{key}", benv2[key])
        ]
        + switches(benv2, BENV2_SWITCHES)
        + ([] if benv2["reference_maps"] else ["--no-reference-maps"])
        # the dense layout is the CLI's default: only the compact one is spelled out
        + optional("--store_layout", None if benv2["store_layout"] == "dense" else "compact")
    )


def stac_dataset_flags(entry: Mapping[str, Any]) -> str:
    """``eolab download stac-dataset`` filter flags of one ``download.stac_datasets.<name>``
    entry."""
    flags = [option("--collection", c) for c in entry.get("collections", [])]
    if entry.get("assets"):
        flags.append(option("--assets", ",".join(entry["assets"])))
    flags += optional("--datetime", entry.get("datetime") or None)
    if entry.get("bbox"):
        flags.append(option("--bbox", ",".join(str(float(v)) for v in entry["bbox"])))
    if entry.get("intersects"):
        value = entry["intersects"]
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        flags.append(option("--intersects", text))
    if entry.get("catalog_only"):
        flags.append("--catalog-only")
    return join(flags)
