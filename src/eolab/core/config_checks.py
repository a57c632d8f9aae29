"""Workflow config checks the JSON schema cannot express, run by the Snakefile before any job.

Two kinds, each reported as one line naming the key:

* `schema_problems`: a misspelt key (``sentinal2:``) with the closest valid key, and any other
  schema violation, instead of jsonschema's dump of the whole schema and config;
* `value_problems`: values that pass ``snakemake -n`` but would fail inside a job, after
  Snakemake has already deleted the previous output (shards that are not multiples of the
  chunks, a compressor Blosc refuses, ``train_ratio + val_ratio > 1``, unknown BigEarthNet
  countries). They reuse the parsers the jobs use, so the verdict is the same. The plan's
  S3 buckets are checked here too: a range of years that runs backwards, and a bucket that
  would hold more objects than ``storage.s3.max_objects_per_bucket`` (eolab.lab.bucketplan).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eolab.core.errors import ConfigError


def unknown_keys(
    config: Mapping[str, Any], schema: Mapping[str, Any], where: str = ""
) -> list[str]:
    """One message per key the schema does not allow (``additionalProperties: false``), with the
    closest valid key when one is close; nested sections are checked too."""
    props: Mapping[str, Any] = schema.get("properties") or {}
    problems = []
    for key, value in config.items():
        path = f"{where}{key}"
        if key not in props:
            if schema.get("additionalProperties") is False:
                problems.append(_unknown(path, str(key), props))
            continue
        if isinstance(value, Mapping) and isinstance(props[key], Mapping):
            problems += unknown_keys(value, props[key], f"{path}.")
    return problems


def _unknown(path: str, key: str, valid: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, [str(k) for k in valid], n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(map(str, valid))}"
    return f"config key '{path}' is unknown ({hint})"


def value_problems(config: Mapping[str, Any]) -> list[str]:
    """One message per value a job would refuse (``config`` already has the schema defaults)."""
    problems = []
    zarr = config.get("sentinel2_convert", {}).get("zarr")
    if zarr:
        problems += _zarr_problems(zarr)
    benv2 = config.get("benv2")
    if benv2:
        problems += _benv2_problems(benv2)
    region = config.get("benchmark", {}).get("patch_load", {}).get("region")
    if region:
        problems += _region_problems(region)
    return problems + _item_list_problems(config) + _plan_problems(config)


def _item_list_problems(config: Mapping[str, Any]) -> list[str]:
    """Item lists that are not files: their batch count is read when the plan is made."""
    lists = config.get("chips", {}).get("item_lists") or {}
    return [
        f"config chips.item_lists.{name}: {path}: no such file (a text file naming one STAC item"
        " JSON per line)"
        for name, path in lists.items()
        if not Path(path).is_file()
    ]


def _plan_problems(config: Mapping[str, Any]) -> list[str]:
    """A backwards range of years; else a bucket planned over the object quota."""
    from eolab.lab import bucketplan

    if "sentinel2" not in config:
        return []
    problems = bucketplan.years_problems(config["sentinel2"])
    if problems or not {"storage", "benchmark", "fixtures", "sentinel2_convert"} <= set(config):
        return problems
    return bucketplan.bucket_name_problems(config) or bucketplan.quota_problems(config)


def _region_problems(region: Mapping[str, Any]) -> list[str]:
    """The sides' order; the tile bounds are checked by ``eolab bench patch-load``."""
    from eolab.lab.region import Region

    try:
        Region(**{k: region.get(k) for k in ("x1", "y1", "x2", "y2")}).check_order()
    except ConfigError as exc:
        return [f"config benchmark.patch_load.{exc}"]
    return []


def _zarr_problems(zarr: Mapping[str, Any]) -> list[str]:
    from eolab.sentinel2.datacube import CubeSpec

    where = "sentinel2_convert.zarr"
    try:
        CubeSpec(
            chunks={g: tuple(v) for g, v in zarr["chunks"].items()},
            shards={g: tuple(v) for g, v in zarr["shards"].items()},
            compressor=dict(zarr["compressor"]),
        )
    except ConfigError as exc:
        return [f"config {where}: {exc}"]
    return []


def _benv2_problems(benv2: Mapping[str, Any]) -> list[str]:
    from eolab.benv2.metadata import check_ratios, parse_countries

    problems = []
    if benv2.get("split") == "resplit":
        train, val = benv2["train_ratio"], benv2["val_ratio"]
        try:
            check_ratios(train, val)
        except ConfigError:
            problems.append(
                f"config benv2.train_ratio {train} + benv2.val_ratio {val} must be at most 1 "
                "(the rest is the test split)"
            )
    try:
        parse_countries(benv2.get("countries"))
    except ConfigError as exc:
        reason = str(exc).split(": ", 1)[-1]
        problems.append(f"config benv2.countries {benv2.get('countries')!r}: {reason}")
    return problems


def load_schema(schema: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    """The schema as given, or read from a YAML (or JSON) file."""
    if isinstance(schema, Mapping):
        return schema
    import yaml

    return yaml.safe_load(Path(schema).read_text(encoding="utf-8"))


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any] | str | Path) -> list[str]:
    """Unknown keys (with the closest valid key), else every schema violation, one line each."""
    import jsonschema

    schema = load_schema(schema)
    problems = unknown_keys(config, schema)
    if problems:
        return problems
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = ".".join(map(str, err.absolute_path)) or "(top level)"
        problems.append(f"config {key}: {err.message}")
    return problems


def error_lines(problems: list[str]) -> str:
    """``eolab: error: <problem>``, one line per problem (what the Snakefile exits with)."""
    return "\n".join(f"eolab: error: {p}" for p in problems)
