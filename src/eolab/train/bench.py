"""``eolab bench train-feed``: measured training throughput, per storage × format.

For each storage × format, the same seeded random squares (over every date of the tile-year)
are read:

1. by the bare dataset in this process, one sample after another: wall and CPU seconds per
   sample (``time.process_time`` counts the loader's own threads). ``cores / CPU s per sample``
   is the CPU bound: the samples/s this machine could feed if reading were pure CPU work spread
   over every core;
2. through a torch DataLoader (:func:`eolab.train.torch.data_loader`) with 0, 1, 2 … worker
   processes and a batch size: time to the first batch (worker start and store opening
   included), then, after ``warmup`` batches, samples/s and MB/s (decoded pixels delivered) over
   the next ``samples`` samples, and their ratio to the CPU bound. Workers prefetch (two batches
   each by default) during the warm-up, so with few samples this steady-state figure is
   optimistic; ``overall_samples_per_s`` (every batch, from creating the iterator) is the
   pessimistic one: use ``samples`` well above ``2 × workers × batch size``.

The local storages read a dataset in place (``network``) or a copy on node-local temp
(``temp``); ``s3`` reads it from S3 (uploaded first when absent, a local moto server when no
endpoint is configured). Staged variants, end to end: ``s3-temp`` downloads the dataset from S3
to temp, then trains from there; ``unzip-temp`` copies the zipped Zarr to temp and unzips it,
then trains from the plain store (zarr-zip only). Their entries add the staging seconds and
``end_to_end_s`` (staging plus the whole DataLoader run). Times are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eolab.core.errors import InputError
from eolab.core.provenance import environment
from eolab.core.s3 import S3Config, s3_access
from eolab.lab.patchbench import plan
from eolab.lab.patchload import DEFAULT_ALIGN_M, DEFAULT_PATCH_M
from eolab.lab.staging import (
    Dataset,
    copy_dataset,
    download_dataset,
    ensure_uploaded,
    s3_connections,
    scratch_area,
    unzip_store,
)
from eolab.lab.storage import storage_devices
from eolab.train.dataset import FORMATS, CubeSource, PatchSeriesDataset
from eolab.train.sampling import Sample, random_samples

SCHEMA_VERSION = 1
STORAGES = ("network", "temp", "s3", "s3-temp", "unzip-temp")


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sample_nbytes(item: Mapping[str, Any]) -> int:
    """Bytes of the pixel arrays of one item (what the training step receives)."""
    return sum(v.nbytes for k, v in item.items() if isinstance(v, np.ndarray) and k != "time")


def measure_bare(dataset: PatchSeriesDataset, warmup: int) -> dict[str, Any]:
    """Read every sample in this process: wall and CPU seconds per sample after ``warmup``."""
    for i in range(min(warmup, len(dataset))):
        dataset[i]
    walls, cpus, nbytes = [], [], 0
    for i in range(warmup, len(dataset)):
        wall, cpu = time.perf_counter(), time.process_time()
        item = dataset[i]
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        nbytes += sample_nbytes(item)
    if not walls:
        raise InputError("bare loader: no samples after the warm-up")
    cpu_s = float(np.mean(cpus))
    return {
        "samples": len(walls),
        "wall_s_per_sample": float(np.mean(walls)),
        "cpu_s_per_sample": cpu_s,
        "samples_per_s": len(walls) / sum(walls),
        "mb_per_s": nbytes / 1e6 / sum(walls),
        "cpu_bound_samples_per_s": cores() / cpu_s if cpu_s > 0 else None,
    }


def measure_loader(
    dataset: PatchSeriesDataset, workers: int, batch_size: int, warmup: int, seed: int
) -> dict[str, Any]:
    """Iterate a DataLoader once over the dataset; the first ``warmup`` batches are not timed."""
    from eolab.train.torch import data_loader

    loader, _ = data_loader(
        dataset, batch_size=batch_size, num_workers=workers, seed=seed, shuffle=False
    )
    start = time.perf_counter()
    first = None
    counted = nbytes = everything = 0
    timed_from = start  # without a warm-up the time includes starting the workers
    for b, batch in enumerate(loader):
        now = time.perf_counter()
        if first is None:
            first = now - start
        everything += len(batch["key"])
        if b < warmup:
            timed_from = now  # timing starts when the last warm-up batch has arrived
            continue
        counted += len(batch["key"])
        nbytes += sum(
            v.numel() * v.element_size()
            for k, v in batch.items()
            if hasattr(v, "numel") and k not in ("time", "time_mask", "index")
        )
    end = time.perf_counter()
    elapsed = end - timed_from
    if counted == 0:
        raise InputError(f"DataLoader with {workers} workers: no samples after the warm-up")
    return {
        "workers": workers,
        "batch_size": batch_size,
        "samples": counted,
        "seconds": elapsed,
        "samples_per_s": counted / elapsed,
        "mb_per_s": nbytes / 1e6 / elapsed,
        "time_to_first_batch_s": first,
        "total_seconds": end - start,
        "overall_samples_per_s": everything / (end - start),
    }


@contextlib.contextmanager
def _sources(
    datasets: Mapping[str, Dataset],
    tile: str,
    year: int,
    temp_root: Path | None,
    s3_config: S3Config | None,
    s3_log: Path | None,
    copies: int,
    pairs: set[tuple[str, str]],
) -> Iterator[tuple[dict[tuple[str, str], CubeSource], dict[str, Any]]]:
    """A CubeSource per (storage, format) of ``pairs``: in place, a temp copy, or an S3 upload
    (timed)."""
    staging: dict[str, Any] = {}
    sources: dict[tuple[str, str], CubeSource] = {}
    storages = {s for s, _ in pairs}
    with contextlib.ExitStack() as stack:
        for fmt, ds in datasets.items():
            if ("network", fmt) in pairs:
                sources["network", fmt] = CubeSource(fmt, {(tile, year): str(ds.entry_path)})
        if {"temp", "s3-temp", "unzip-temp"} & storages:
            if temp_root is None:
                raise InputError("storage temp: no temp folder given")
            area = stack.enter_context(scratch_area(temp_root))
        for fmt, ds in datasets.items():
            if ("temp", fmt) in pairs:
                copy, timing = copy_dataset(ds, area / "temp" / fmt, copies)
                staging[f"copy_temp:{fmt}"] = timing.to_json()
                sources["temp", fmt] = CubeSource(fmt, {(tile, year): str(copy.entry_path)})
        if ("unzip-temp", "zarr-zip") in pairs:
            zipped, copied = copy_dataset(datasets["zarr-zip"], area / "unzip" / "zip", copies)
            name = zipped.entry.removesuffix(".zip")
            plain, unzipped = unzip_store(zipped, area / "unzip" / "store" / name, copies)
            staging["unzip_temp:zarr-zip"] = [copied.to_json(), unzipped.to_json()]
            sources["unzip-temp", "zarr-zip"] = CubeSource(
                "zarr", {(tile, year): str(plain.entry_path)}
            )
        if {"s3", "s3-temp"} & storages:
            if s3_config is None:
                raise InputError("storage s3: no S3 configuration given")
            access = stack.enter_context(s3_access(s3_config, s3_log))
            client = access.client(s3_connections(copies))
            for fmt, ds in datasets.items():
                if not {("s3", fmt), ("s3-temp", fmt)} & pairs:
                    continue
                prefix = s3_config.key(fmt)
                timing = ensure_uploaded(ds, client, access.bucket, prefix, copies)
                staging[f"upload_s3:{fmt}"] = timing.to_json() if timing else "already uploaded"
                key = f"{prefix}/{ds.entry}" if prefix else ds.entry
                if ("s3", fmt) in pairs:
                    sources["s3", fmt] = CubeSource(fmt, {(tile, year): key}, s3=access)
                if ("s3-temp", fmt) in pairs:
                    dest = area / "s3-temp" / fmt
                    local, fetched = download_dataset(
                        ds, client, access.bucket, prefix, dest, copies
                    )
                    staging[f"s3_temp:{fmt}"] = [fetched.to_json()]
                    sources["s3-temp", fmt] = CubeSource(fmt, {(tile, year): str(local.entry_path)})
        yield sources, staging


def run(
    datasets: Mapping[str, Dataset],
    tile: str,
    year: int,
    *,
    storages: Sequence[str] = ("network", "s3"),
    samples: int = 32,
    warmup: int = 2,
    batch_size: int = 4,
    workers: Sequence[int] = (0, 1, 2),
    seed: int = 42,
    patch_m: float = DEFAULT_PATCH_M,
    align_m: float = DEFAULT_ALIGN_M,
    temp_root: Path | None = None,
    s3_config: S3Config | None = None,
    s3_log: Path | None = None,
    copies: int = 8,
    skip: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark (module docstring) and return the result document. ``skip`` leaves out
    storage:format pairs ("s3:zarr-zip", ...); nothing is staged for a pair left out."""
    unknown = sorted(set(datasets) - set(FORMATS)) + sorted(set(storages) - set(STORAGES))
    if unknown or not datasets or not storages:
        raise InputError(f"train-feed: unknown or missing formats/storages {unknown}")
    if samples < 1 or batch_size < 1 or warmup < 0:
        raise InputError("train-feed: samples and batch size >= 1, warm-up >= 0")
    pairs = set(plan(list(datasets), storages, skip, baseline=False))
    pairs -= {("unzip-temp", f) for f in datasets if f != "zarr-zip"}  # unzip: zarr-zip only
    if not pairs:
        raise InputError("train-feed: nothing to measure (unzip-temp reads zarr-zip only)")
    total = warmup * batch_size + samples
    results: dict[str, dict[str, Any]] = {}
    with _sources(datasets, tile, year, temp_root, s3_config, s3_log, copies, pairs) as (
        sources,
        staging,
    ):
        picked = _samples(sources, tile, year, total, seed, patch_m, align_m)
        dates = len(_first_times(sources, tile, year))
        for (storage, fmt), source in sources.items():
            with PatchSeriesDataset(source, picked) as bare:
                entry = {"bare": measure_bare(bare, warmup * batch_size)}
            bound = entry["bare"]["cpu_bound_samples_per_s"]
            staged = _staging_seconds(staging, storage, fmt)
            if staged is not None:
                entry["staging_s"] = staged
            entry["dataloader"] = []
            for n in workers:
                with PatchSeriesDataset(source, picked) as fed:
                    m = measure_loader(fed, n, batch_size, warmup, seed)
                m["ratio_to_cpu_bound"] = m["samples_per_s"] / bound if bound else None
                if staged is not None:
                    m["end_to_end_s"] = staged + m["total_seconds"]
                entry["dataloader"].append(m)
                echo(
                    f"{storage:8s} {fmt:13s} workers {n}: {m['samples_per_s']:8.2f} samples/s "
                    f"{m['mb_per_s']:8.1f} MB/s, first batch {m['time_to_first_batch_s']:.3f} s"
                )
            entry["summary"] = summarise(entry)
            results.setdefault(storage, {})[fmt] = entry
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "train-feed",
        "tile": tile,
        "year": year,
        "samples": samples,
        "warmup_batches": warmup,
        "batch_size": batch_size,
        "workers": list(workers),
        "seed": seed,
        "patch_size_m": picked[0].patch.size,
        "patches": [s.patch.to_json() for s in picked],
        "dates": dates,
        "cores": cores(),
        "storages": list(storages),
        "formats": list(datasets),
        "skipped": sorted(skip),
        "results": results,
        "staging": staging,
        "storage_devices": storage_devices(
            storages, next(iter(datasets.values())).root, temp_root, s3_config
        ),
        "environment": _environment(),
    }


def summarise(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The figures the lab's targets are read from, for one storage × format.

    ``best_workers`` / ``best_ratio_to_cpu_bound``: the worker count with the most samples/s and
    its share of the CPU bound; ``loader0_over_bare``: the DataLoader's seconds per sample at 0
    workers over the bare loader's (the dataset layer's overhead; None without a 0-worker run);
    ``first_batch_s``: the fastest time to the first batch over the worker counts.
    """
    runs = entry["dataloader"]
    best = max(runs, key=lambda m: m["samples_per_s"])
    serial = next((m for m in runs if m["workers"] == 0), None)
    bare_wall = entry["bare"]["wall_s_per_sample"]
    return {
        "best_workers": best["workers"],
        "best_samples_per_s": best["samples_per_s"],
        "best_ratio_to_cpu_bound": best["ratio_to_cpu_bound"],
        "loader0_over_bare": (1 / serial["samples_per_s"]) / bare_wall if serial else None,
        "first_batch_s": min(m["time_to_first_batch_s"] for m in runs),
    }


def _summary_line(summary: Mapping[str, Any]) -> str:
    ratio, over = summary["best_ratio_to_cpu_bound"], summary["loader0_over_bare"]
    return (
        f"best: {summary['best_workers']} workers "
        f"({'n/a' if ratio is None else f'{ratio:.2f}'} of CPU bound); DataLoader at 0 workers "
        f"{'n/a' if over is None else f'{over:.2f}'}x bare; first batch "
        f"{summary['first_batch_s']:.3f} s"
    )


def _environment() -> dict[str, Any]:
    """Provenance (eolab.core.provenance) plus the torch version that fed the batches."""
    import torch

    env = environment()
    env.setdefault("versions", {})["torch"] = torch.__version__
    return env


def _staging_seconds(staging: Mapping[str, Any], storage: str, fmt: str) -> float | None:
    """Seconds the staged variants spent before training (None for direct reads)."""
    key = {"s3-temp": f"s3_temp:{fmt}", "unzip-temp": f"unzip_temp:{fmt}"}.get(storage)
    if key is None or key not in staging:
        return None
    return float(sum(t["seconds"] for t in staging[key]))


def _samples(sources, tile, year, total, seed, patch_m, align_m) -> list[Sample]:
    source = next(iter(sources.values()))
    with PatchSeriesDataset(source, []) as probe:
        grids = probe.grids(tile, year)
    return random_samples(grids, total, seed, tile, [year], patch_m, align_m)


def _first_times(sources, tile, year) -> np.ndarray:
    with PatchSeriesDataset(next(iter(sources.values())), []) as probe:
        return probe.times(tile, year)


def format_report(doc: Mapping[str, Any]) -> str:
    """A text table: per storage × format and workers, samples/s, MB/s, ratio to CPU bound."""
    lines = [
        f"train-feed {doc['tile']} {doc['year']}: {doc['dates']} dates, patch "
        f"{doc['patch_size_m']:.0f} m, {doc['samples']} samples after {doc['warmup_batches']} "
        f"warm-up batches of {doc['batch_size']}, {doc['cores']} cores"
    ]
    for storage, per_format in doc["results"].items():
        for fmt, entry in per_format.items():
            bare = entry["bare"]
            lines.append(
                f"  {storage:8s} {fmt:13s} bare {bare['samples_per_s']:8.2f} samples/s, "
                f"{bare['cpu_s_per_sample'] * 1e3:.1f} ms CPU/sample, "
                f"CPU bound {bare['cpu_bound_samples_per_s'] or float('nan'):.1f} samples/s"
            )
            for m in entry["dataloader"]:
                ratio = m["ratio_to_cpu_bound"]
                lines.append(
                    f"    workers {m['workers']}: {m['samples_per_s']:8.2f} samples/s "
                    f"{m['mb_per_s']:7.1f} MB/s  first batch {m['time_to_first_batch_s']:.3f} s  "
                    f"ratio to CPU bound {ratio:.2f}"
                    if ratio is not None
                    else f"    workers {m['workers']}: {m['samples_per_s']:8.2f} samples/s"
                )
            lines.append("    " + _summary_line(entry.get("summary") or summarise(entry)))
    return "\n".join(lines)
