"""The patch-load benchmark: every storage × format loads the same random patches; timed.

Seeded: the patches and the per-repeat shuffled storage × format order depend only on the seed.
Repeat 0 is a warm-up and is not counted. Before every timed load the page cache is dropped
where the kernel allows (root), so each load reads from its storage, not from memory; the JSON
says whether it was. For each patch every loader must return identical arrays, or the run fails.

The result keeps the reference's shape (``tile``, ``year``, ``results[storage][format]`` with
``durations``, ``band_group_shapes``, ``total_duration``, ``mean_durations``, ``std_durations``,
``stderr_durations``) and adds bytes read, MB/s, the patches, staging timings, ratios to the
xarray/dask baseline measured in the same run, and the environment.

Read amplification, per storage × format (Zarr formats; None for SAFE and COG): the mean bytes
decoded per patch (chunks touched × chunk bytes, from the chunk geometry), bytes returned,
``amplification`` = decoded / returned, and ``decode_bound_s``: the median over the patches of a
two-thread Blosc decode of exactly the chunks the patch needs, read into memory first (the floor
the layout sets for any reader; see :mod:`eolab.lab.amplification`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eolab.core.errors import EolabError, InputError
from eolab.core.provenance import environment
from eolab.core.s3 import S3Config, s3_access
from eolab.lab import amplification, formats
from eolab.lab.formats import BASELINE, SHARDED, ZARR, ZIP
from eolab.lab.patchload import (
    GROUPS,
    Loader,
    Patch,
    Region,
    coarsest,
    open_loader,
    random_patches,
)
from eolab.lab.staging import Dataset, copy_dataset, ensure_uploaded, s3_connections, scratch_area
from eolab.lab.storage import storage_devices

STD_DDOF = 1
SCHEMA_VERSION = 1
TARGETS = {
    "zarr_vs_xarray_speedup": (">=", 2.0),
    "zip_vs_zarr_time_ratio": ("<=", 1.1),
    "sharded_vs_zarr_time_ratio": ("<=", 1.1),
    "zarr_vs_sharded_object_ratio": (">=", 50.0),
}


class MismatchError(EolabError):
    """Two loaders returned different pixels for the same patch."""


def summarize(durations: Sequence[float]) -> dict[str, float]:
    """total, mean, std (sample, ddof=1; 0 for one value) and stderr = std / sqrt(n)."""
    values = np.asarray(durations, dtype=float)
    n = values.size
    if n == 0:
        return {
            "total_duration": 0.0,
            "mean_durations": math.nan,
            "std_durations": math.nan,
            "stderr_durations": math.nan,
        }
    std = float(values.std(ddof=STD_DDOF)) if n > STD_DDOF else 0.0
    return {
        "total_duration": float(values.sum()),
        "mean_durations": float(values.mean()),
        "std_durations": std,
        "stderr_durations": std / math.sqrt(n),
    }


def drop_page_cache() -> tuple[bool, str]:
    """Flush and drop the page cache (``echo 3 > /proc/sys/vm/drop_caches``); (done, reason)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("3\n")
    except OSError as exc:
        return False, f"cannot write /proc/sys/vm/drop_caches ({exc.strerror or exc})"
    return True, "dropped before every timed load"


def compare(
    reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray], what: str, against: str
) -> None:
    """Raise MismatchError unless every group is identical in shape, dtype and pixels."""
    for group in GROUPS:
        a, b = reference[group], other[group]
        if a.shape != b.shape:
            raise MismatchError(f"{what}: group {group} shape {b.shape} != {a.shape} of {against}")
        if a.dtype != b.dtype:
            raise MismatchError(f"{what}: group {group} dtype {b.dtype} != {a.dtype} of {against}")
        if not np.array_equal(a, b):
            diff = int(np.count_nonzero(a != b))
            raise MismatchError(f"{what}: group {group} differs from {against} in {diff} pixels")


@dataclass
class Measurement:
    """One timed load: seconds, bytes read (None where the loader cannot count them), array shape
    per group."""

    seconds: float
    nbytes: int | None
    shapes: dict[str, list[int]]
    returned: int = 0
    decoded: int | None = None
    decode_bound: float | None = None


def measure(loader: Loader, patch: Patch) -> tuple[Measurement, dict[str, np.ndarray]]:
    """Time one load; count the bytes the loader read, decoded and returned."""
    mark = loader.bytes_mark()
    start = time.perf_counter()
    arrays = loader.load(patch)
    seconds = time.perf_counter() - start
    shapes = {g: list(a.shape) for g, a in arrays.items()}
    returned = sum(a.nbytes for a in arrays.values())
    m = Measurement(
        seconds, loader.bytes_since(mark), shapes, returned, loader.bytes_decoded(patch)
    )
    return m, arrays


def decode_bound(loader: Loader, patch: Patch) -> float | None:
    """Seconds of a two-thread decode of exactly the chunks ``patch`` needs (read first, not
    timed); None where the loader cannot name its chunks."""
    blobs = loader.needed_chunks(patch)
    return None if blobs is None else amplification.decode_seconds(blobs)


def amplification_entry(ms: Sequence[Measurement]) -> dict[str, float | None]:
    """Mean bytes decoded and returned per patch, their ratio, the median decode bound."""
    decoded = [m.decoded for m in ms]
    bounds = [m.decode_bound for m in ms if m.decode_bound is not None]
    mean_decoded = None if None in decoded or not ms else float(np.mean(decoded))
    mean_returned = float(np.mean([m.returned for m in ms])) if ms else None
    return {
        "bytes_decoded": mean_decoded,
        "bytes_returned": mean_returned,
        "amplification": amplification.ratio(mean_decoded, mean_returned),
        "decode_bound_s": float(np.median(bounds)) if bounds else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or NaN or ``b`` is zero."""
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def data_object_count(ds: Dataset) -> int:
    """Files holding pixel data: Zarr chunks or shards of ``data`` arrays, COGs, band JP2s, or
    the zip; the rest are metadata and coordinate arrays (about 70 per Zarr store)."""
    holds_data = formats.get(ds.format).holds_data
    return sum(1 for f in ds.files if holds_data(f))


def compute_ratios(
    results: Mapping[str, Any],
    objects: Mapping[str, int],
    data_objects: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Per storage: eolab Zarr vs xarray baseline, zipped vs plain, sharded vs plain; and the
    object-count ratios (all files, and data files only)."""
    out: dict[str, Any] = {}
    for storage, per_format in results.items():
        mean = {f: v["mean_durations"] for f, v in per_format.items()}
        out[storage] = {
            "zarr_vs_xarray_speedup": ratio(mean.get(BASELINE), mean.get(ZARR)),
            "zip_vs_zarr_time_ratio": ratio(mean.get(ZIP), mean.get(ZARR)),
            "sharded_vs_zarr_time_ratio": ratio(mean.get(SHARDED), mean.get(ZARR)),
        }
    out["zarr_vs_sharded_object_ratio"] = ratio(objects.get(ZARR), objects.get(SHARDED))
    out["zarr_vs_zip_object_ratio"] = ratio(objects.get(ZARR), objects.get(ZIP))
    if data_objects:
        out["zarr_vs_sharded_data_object_ratio"] = ratio(
            data_objects.get(ZARR), data_objects.get(SHARDED)
        )
    return out


def check_targets(ratios: Mapping[str, Any]) -> dict[str, Any]:
    """Which targets each storage meets (reported, never asserted)."""
    report: dict[str, Any] = {}
    for name, (op, goal) in TARGETS.items():
        values = (
            {"all": ratios.get(name)}
            if name in ratios
            else {s: r.get(name) for s, r in ratios.items() if isinstance(r, dict)}
        )
        report[name] = {
            "target": f"{op} {goal}",
            "values": values,
            "met": {
                s: (None if v is None else (v >= goal if op == ">=" else v <= goal))
                for s, v in values.items()
            },
        }
    return report


def plan(
    formats: Sequence[str],
    storages: Sequence[str],
    skip: Sequence[str] = (),
    baseline: bool = True,
) -> list[tuple[str, str]]:
    """The (storage, format) pairs to measure: every pair but ``skip`` ("s3:safe", ...), plus
    the xarray baseline wherever plain Zarr is measured."""
    skipped = set(skip)
    unknown = skipped - {f"{s}:{f}" for s in storages for f in formats}
    if unknown:
        raise InputError(f"skip: {sorted(unknown)} name no measured storage:format pair")
    pairs = [(s, f) for s in storages for f in formats if f"{s}:{f}" not in skipped]
    if baseline:
        pairs += [(s, BASELINE) for s, f in list(pairs) if f == ZARR]
    if not pairs:
        raise InputError("nothing to measure: every storage:format pair is skipped")
    return pairs


@contextlib.contextmanager
def _staged(
    datasets: Mapping[str, Dataset],
    needs: Mapping[str, set[str]],
    temp_root: Path | None,
    s3_config: S3Config | None,
    s3_log: Path | None,
    workers: int,
    keep_temp: bool,
) -> Iterator[tuple[dict[str, Dataset], Any, dict[str, Any]]]:
    """Temp copies and S3 uploads of the formats each storage needs; yields (temp datasets,
    S3 access, staging timings). Temp copies are removed on exit; a local S3 server stopped."""
    staging: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        temp: dict[str, Dataset] = {}
        if needs.get("temp"):
            if temp_root is None:
                raise InputError("storage temp: no temp folder given")
            area = stack.enter_context(scratch_area(temp_root, keep=keep_temp))
            for fmt in sorted(needs["temp"]):
                temp[fmt], timing = copy_dataset(datasets[fmt], area / fmt, workers)
                staging[f"copy_temp:{fmt}"] = timing.to_json()
        access = None
        if needs.get("s3"):
            if s3_config is None:
                raise InputError("storage s3: no S3 configuration given")
            access = stack.enter_context(s3_access(s3_config, s3_log))
            client = access.client(s3_connections(workers))
            for fmt in sorted(needs["s3"]):
                timing = ensure_uploaded(
                    datasets[fmt], client, access.bucket, s3_config.key(fmt), workers
                )
                staging[f"upload_s3:{fmt}"] = timing.to_json() if timing else "already uploaded"
        yield temp, access, staging


def run(
    datasets: Mapping[str, Dataset],
    tile: str,
    year: int,
    storages: Sequence[str] = ("network", "temp", "s3"),
    repeats: int = 10,
    seed: int = 42,
    patch_m: float = 5100,
    align_m: float = 60,
    temp_root: Path | None = None,
    s3_config: S3Config | None = None,
    s3_log: Path | None = None,
    workers: int = 8,
    drop_caches: bool = True,
    baseline: bool = True,
    keep_temp: bool = False,
    skip: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    region: Region | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return the result document (see the module docstring)."""
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, not {repeats}")
    pairs = plan(list(datasets), storages, skip, baseline)
    needs: dict[str, set[str]] = {}
    for storage, fmt in pairs:
        needs.setdefault(storage, set()).add(ZARR if fmt == BASELINE else fmt)
    # the SAFE catalog (band files, grids) comes from the network copy
    catalog_root = datasets["safe"].root if "safe" in datasets else None
    staged = _staged(datasets, needs, temp_root, s3_config, s3_log, workers, keep_temp)
    with staged as (temp, access, staging):
        loaders: dict[tuple[str, str], Loader] = {}
        opened: dict[str, dict[str, float]] = {}
        try:
            for storage, fmt in pairs:
                src_fmt = ZARR if fmt == BASELINE else fmt
                ds = temp[src_fmt] if storage == "temp" else datasets[src_fmt]
                start = time.perf_counter()
                loaders[storage, fmt] = open_loader(
                    src_fmt,
                    storage,
                    ds,
                    tile,
                    year,
                    s3=access,
                    s3_prefix=s3_config.key(src_fmt) if s3_config else "",
                    catalog_root=catalog_root,
                    workers=workers,
                    baseline=fmt == BASELINE,
                )
                opened.setdefault(storage, {})[fmt] = time.perf_counter() - start
            doc = _measure_all(
                loaders,
                datasets,
                tile,
                year,
                storages,
                repeats,
                seed,
                patch_m,
                align_m,
                drop_caches,
                staging,
                opened,
                workers,
                echo,
                region,
            )
            doc["skipped"] = sorted(skip)
            network = next(iter(datasets.values())).root if datasets else None
            doc["storage_devices"] = storage_devices(storages, network, temp_root, s3_config)
            return doc
        finally:
            for loader in loaders.values():
                loader.close()


def _measure_all(
    loaders: Mapping[tuple[str, str], Loader],
    datasets: Mapping[str, Dataset],
    tile: str,
    year: int,
    storages: Sequence[str],
    repeats: int,
    seed: int,
    patch_m: float,
    align_m: float,
    drop_caches: bool,
    staging: dict[str, Any],
    opened: dict[str, dict[str, float]],
    workers: int,
    echo: Callable[[str], None],
    region: Region | None = None,
) -> dict[str, Any]:
    pairs = list(loaders)
    first = loaders[pairs[0]]
    for pair in pairs[1:]:
        for group in GROUPS:
            if not loaders[pair].grids[group].same_as(first.grids[group]):
                raise MismatchError(
                    f"{pair[1]} on {pair[0]}: {group} grid differs from "
                    f"{pairs[0][1]} on {pairs[0][0]}"
                )
    patches = random_patches(first.grids, repeats + 1, seed, patch_m, align_m, region)
    dropped, drop_reason = (False, "disabled by configuration")
    if drop_caches:
        dropped, drop_reason = drop_page_cache()
    order_rng = random.Random(seed)
    raw: dict[tuple[str, str], list[Measurement]] = {pair: [] for pair in pairs}
    for rep, patch in enumerate(patches):
        order = pairs[:]
        order_rng.shuffle(order)
        reference: tuple[str, dict[str, np.ndarray]] | None = None
        label = "warm-up" if rep == 0 else f"repeat {rep}/{repeats}"
        for storage, fmt in order:
            if dropped:
                drop_page_cache()
            m, arrays = measure(loaders[storage, fmt], patch)
            what = f"patch {rep} {patch.to_json()}: {fmt} on {storage}"
            if reference is None:
                reference = (f"{fmt} on {storage}", arrays)
            else:
                compare(reference[1], arrays, what, reference[0])
            if rep > 0:
                raw[storage, fmt].append(m)
            echo(f"{label}: {storage:8s} {fmt:13s} {m.seconds:8.3f} s")
        if rep > 0:  # after the timed loads: reading the chunks warms the cache
            for pair in order:
                raw[pair][-1].decode_bound = decode_bound(loaders[pair], patch)
    results: dict[str, dict[str, Any]] = {}
    for (storage, fmt), ms in raw.items():
        durations = [m.seconds for m in ms]
        nbytes = [m.nbytes for m in ms]
        known = [b for b in nbytes if b is not None]
        entry = {
            "durations": durations,
            "band_group_shapes": ms[-1].shapes,
            **summarize(durations),
            "bytes_read": nbytes,
            "bytes_method": loaders[storage, fmt].bytes_method,
            "mean_bytes_read": float(np.mean(known)) if known else None,
            "mb_per_s": (sum(known) / 1e6 / sum(durations)) if known and sum(durations) else None,
            "open_seconds": opened[storage][fmt],
            **amplification_entry(ms),
        }
        results.setdefault(storage, {})[fmt] = entry
    objects = {fmt: len(ds.files) for fmt, ds in datasets.items()}
    data_objects = {fmt: data_object_count(ds) for fmt, ds in datasets.items()}
    sizes = {fmt: ds.nbytes() for fmt, ds in datasets.items()}
    ratios = compute_ratios(results, objects, data_objects)
    dates = next(iter(results.values()))
    return {
        "schema_version": SCHEMA_VERSION,
        "tile": tile,
        "year": year,
        "results": results,
        "dates": next(iter(dates.values()))["band_group_shapes"][GROUPS[0]][0],
        "repeats": repeats,
        "warmup": 1,
        "seed": seed,
        "patch_size_m": patches[0].size,
        "patches": [p.to_json() for p in patches],
        # where the patches were drawn: [x1, y1, x2, y2] in the tile's CRS (m)
        "region": list((region or Region()).on(coarsest(first.grids))),
        "storages": list(storages),
        "formats": list(datasets),
        "objects": objects,
        "data_objects": data_objects,
        "dataset_bytes": sizes,
        "staging": staging,
        "page_cache": {
            "dropped": dropped,
            "reason": drop_reason,
            "gdal_s3_cache": "dropped when each file closes (CPL_VSIL_CURL_NON_CACHED)",
        },
        "std_ddof": STD_DDOF,
        "workers": workers,
        "ratios": ratios,
        "targets": check_targets(ratios),
        "same_device": _same_device(datasets, staging),
        "environment": environment(),
    }


def _same_device(datasets: Mapping[str, Dataset], staging: Mapping[str, Any]) -> bool | None:
    """Whether the network and temp copies share one disk (then their times say little)."""
    for key, timing in staging.items():
        if key.startswith("copy_temp:") and isinstance(timing, dict):
            fmt = key.split(":", 1)[1]
            try:
                a = os.stat(datasets[fmt].root).st_dev
                b = os.stat(timing["destination"]).st_dev
            except OSError:
                return None
            return a == b
    return None


def format_report(doc: Mapping[str, Any]) -> str:
    """A short text table of means and ratios for the terminal and the log."""
    lines = [
        f"patch-load {doc['tile']} {doc['year']}: {doc['dates']} dates, "
        f"{doc['repeats']} repeats, patch {doc['patch_size_m']:.0f} m, "
        f"page cache dropped: {doc['page_cache']['dropped']}"
    ]
    for storage, per_format in doc["results"].items():
        for fmt, r in per_format.items():
            mbps = f"{r['mb_per_s']:.1f} MB/s" if r.get("mb_per_s") else "n/a"
            lines.append(
                f"  {storage:8s} {fmt:13s} mean {r['mean_durations']:.4f} s "
                f"± {r['stderr_durations']:.4f}  {mbps}{_amplification_text(r)}"
            )
    for name, target in doc["targets"].items():
        vals = ", ".join(
            f"{s}={v:.2f}" if isinstance(v, float) else f"{s}=n/a"
            for s, v in target["values"].items()
        )
        lines.append(f"  {name} (target {target['target']}): {vals}")
    return "\n".join(lines)


def _amplification_text(r: Mapping[str, Any]) -> str:
    """``  decoded 309.0 MB / returned 17.4 MB = 17.8x, decode bound 0.064 s`` (or "")."""
    if r.get("amplification") is None:
        return ""
    text = (
        f"  decoded {r['bytes_decoded'] / 1e6:.1f} MB / returned "
        f"{r['bytes_returned'] / 1e6:.1f} MB = {r['amplification']:.1f}x"
    )
    if r.get("decode_bound_s") is not None:
        text += f", decode bound {r['decode_bound_s']:.4f} s"
    return text


_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_ENTRY = {
    "type": "object",
    "required": [
        "durations",
        "band_group_shapes",
        "total_duration",
        "mean_durations",
        "std_durations",
        "stderr_durations",
        "bytes_read",
        "bytes_method",
        "mb_per_s",
        "open_seconds",
    ],
    "properties": {
        "durations": {"type": "array", "items": _NUM, "minItems": 1},
        "band_group_shapes": {
            "type": "object",
            "required": list(GROUPS),
            "additionalProperties": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 4,
                "maxItems": 4,
            },
        },
        "total_duration": _NUM,
        "mean_durations": _NUM,
        "std_durations": _NUM,
        "stderr_durations": _NUM,
        "bytes_read": {"type": "array", "items": {"type": ["integer", "null"]}},
        "bytes_method": {"enum": ["rchar", "gdal-network-stats", "store"]},
        "mb_per_s": {"type": ["number", "null"]},
        "open_seconds": _NUM,
        "bytes_decoded": _NUM_OR_NULL,
        "bytes_returned": _NUM_OR_NULL,
        "amplification": _NUM_OR_NULL,
        "decode_bound_s": _NUM_OR_NULL,
    },
}
#: JSON schema of the result document (the reference's keys plus eolab's additions).
RESULT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "tile",
        "year",
        "results",
        "repeats",
        "seed",
        "patches",
        "objects",
        "staging",
        "page_cache",
        "ratios",
        "targets",
        "environment",
        "dates",
        "patch_size_m",
    ],
    "properties": {
        "tile": {"type": "string"},
        "year": {"type": "integer"},
        "results": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": ["network", "temp", "s3"]},
            "additionalProperties": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"enum": [*formats.NAMES, BASELINE]},
                "additionalProperties": _ENTRY,
            },
        },
        "repeats": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "patches": {
            "type": "array",
            "items": {"type": "array", "items": _NUM, "minItems": 3, "maxItems": 3},
        },
        "region": {"type": "array", "items": _NUM, "minItems": 4, "maxItems": 4},
        "page_cache": {
            "type": "object",
            "required": ["dropped", "reason"],
            "properties": {"dropped": {"type": "boolean"}, "reason": {"type": "string"}},
        },
        "environment": {"type": "object", "required": ["versions", "cpu"]},
        # what is behind each storage (mount or S3 endpoint), for the charts
        "storage_devices": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
