"""``eolab benv2 …``: BigEarthNet v2 -> ML-ready tiles."""

from __future__ import annotations

import json
from pathlib import Path

import click

_PATH = click.Path(path_type=Path)


def reference_option(name: str, **kwargs):
    """An option under the reference script's name (``--s2_root``) and the dashed one
    (``--s2-root``), stored as ``name``."""
    return click.option(f"--{name}", f"--{name.replace('_', '-')}", name, **kwargs)


@click.group(short_help="BigEarthNet v2 to ML-ready tiles.")
def benv2() -> None:
    """BigEarthNet v2 (reBEN): convert S1/S2 patch pairs into ML-ready tiles."""


@benv2.command("tiles", short_help="BigEarthNet v2 to npz+json and Zarr stores.")
@click.option(
    "--root",
    type=_PATH,
    help="A BigEarthNet v2 folder holding BigEarthNet-S2/, "
    "BigEarthNet-S1/, Reference_Maps/ and metadata.parquet (sets the four paths below).",
)
@reference_option("s2_root", type=_PATH, help="The BigEarthNet-S2 folder.")
@reference_option("s1_root", type=_PATH, help="The BigEarthNet-S1 folder.")
@click.option("--metadata", type=_PATH, help="metadata.parquet (pairs S1 with S2; labels, splits).")
@reference_option(
    "reference_maps",
    type=_PATH,
    help="The Reference_Maps folder [default: beside --s2_root, when present].",
)
@click.option("--no-reference-maps", is_flag=True, help="Do not convert the reference maps.")
@reference_option("out_dir", type=_PATH, required=True)
@click.option(
    "--bands",
    default="all",
    show_default=True,
    help="all (12 S2 + VV, VH), reference (B02,B03,B04,B08,VV,VH), s2, s1, or a list "
    "like B02,B8A,VV.",
)
@click.option(
    "--resampling",
    type=click.Choice(["nearest", "bilinear", "cubic"]),
    default="nearest",
    show_default=True,
    help="20/60 m -> 10 m: nearest repeats pixels (lossless); bilinear/cubic use "
    "scipy.ndimage.zoom, pixel areas aligned.",
)
@click.option(
    "--normalise",
    "--normalize",
    "normalise",
    type=click.Choice(["patch", "global", "none"]),
    default="patch",
    show_default=True,
    help="patch: [0,1] per band and patch (min/max/mean/std recorded); global: "
    "(x-mean)/std with train-split statistics; none: raw values.",
)
@click.option("--float16", is_flag=True, help="Store float16 instead of float32.")
@click.option(
    "--split",
    "split_mode",
    type=click.Choice(["official", "resplit"]),
    default=None,
    help="official splits, or resplit with the ratios [default: official, resplit "
    "when a ratio is given].",
)
@reference_option(
    "train_ratio",
    type=float,
    default=None,
    help="Re-split share of train [0.8].",
)
@reference_option(
    "val_ratio",
    type=float,
    default=None,
    help="Re-split share of validation [0.1]; the rest is test.",
)
@reference_option(
    "split_group",
    type=click.Choice(["location", "block", "tile"]),
    default="location",
    show_default=True,
    help="What a re-split keeps together: one place on all dates, 10x10-patch blocks, "
    "or whole tiles.",
)
@click.option(
    "--countries",
    default=None,
    help="keep=Austria,Finland or drop=Serbia (names or ISO codes AT BE FI IE XK LT LU PT RS CH).",
)
@reference_option(
    "max_per_country",
    type=click.IntRange(1),
    default=None,
    help="At most N patches per country (seeded random choice).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--with-snow-cloud",
    is_flag=True,
    help="Also convert the patches of metadata_for_patches_with_snow_cloud_or_shadow.",
)
@click.option(
    "--delete-sources",
    "--delete_sources",
    "delete_sources",
    is_flag=True,
    help="Delete each source file once its output is written, read back, verified "
    "and journaled (kill-safe).",
)
@reference_option(
    "min_free_gb",
    type=float,
    default=0.0,
    show_default=True,
    help="Pause below this much free space on --out_dir's disk.",
)
@reference_option(
    "max_wait_s",
    type=float,
    default=600.0,
    show_default=True,
    help="Give up (cleanly) after waiting this long for space.",
)
@reference_option(
    "target_gb",
    type=float,
    default=None,
    help="Stop once this many GB of outputs exist.",
)
@click.option(
    "--workers", type=click.IntRange(1), default=None, help="Worker processes [default: all cores]."
)
@click.option(
    "--store/--no-store",
    default=True,
    show_default=True,
    help="Build the sharded Zarr store per split.",
)
@reference_option(
    "shard_patches",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Patches per shard file of the store.",
)
@reference_option(
    "store_layout",
    type=click.Choice(["dense", "compact"]),
    default="dense",
    show_default=True,
    help="dense: pre-upsampled, pre-normalised float32/16; compact: native dtypes and "
    "resolutions, upsampled and normalised at read time (same arrays; see docs/benv2.md).",
)
@reference_option(
    "store_compression",
    type=click.Choice(["none", "lz4", "zstd"]),
    default=None,
    help="Codec of the store's chunks [default: none for dense, lz4 for compact].",
)
@reference_option(
    "min_s1_coverage",
    type=float,
    default=0.9,
    show_default=True,
    help="When S1 must be reprojected: least share of the S2 patch it must cover.",
)
@click.option(
    "--reader", type=click.Choice(["tifffile", "rasterio"]), default="tifffile", show_default=True
)
@reference_option(
    "stats_patches",
    type=click.IntRange(1),
    default=5000,
    show_default=True,
    help="Global normalisation: train patches sampled (seeded) for the mean/std.",
)
@click.option(
    "--read-back/--no-read-back",
    "read_back",
    default=None,
    help="Read each npz back from disk and check its bytes [default: when --delete-sources].",
)
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Patches per task sent to a worker (the disk guard checks before each).",
)
@reference_option(
    "commit_every",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Patches per group commit: one syncfs + journal fsync, then their deletions.",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N patches.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def tiles(
    root,
    s2_root,
    s1_root,
    metadata,
    reference_maps,
    no_reference_maps,
    out_dir,
    bands,
    resampling,
    normalise,
    float16,
    split_mode,
    train_ratio,
    val_ratio,
    split_group,
    countries,
    max_per_country,
    seed,
    with_snow_cloud,
    delete_sources,
    min_free_gb,
    max_wait_s,
    target_gb,
    workers,
    store,
    shard_patches,
    store_layout,
    store_compression,
    min_s1_coverage,
    stats_patches,
    read_back,
    reader,
    batch,
    commit_every,
    limit,
    no_progress,
) -> None:
    """Convert BigEarthNet v2 into npz+json per patch and a sharded Zarr store per split.

    Reruns resume: patches already verified are skipped, pending deletions are finished.
    Writes OUT_DIR/summary.json and one JSON line per patch to OUT_DIR/log.jsonl.
    """
    from eolab.benv2.convert import TilesOptions, convert, raise_for_failures
    from eolab.benv2.names import METADATA, REFMAP_DIR, S1_DIR, S2_DIR, expand_bands
    from eolab.core.errors import ConfigError

    if root is not None:
        s2_root = s2_root or root / S2_DIR
        s1_root = s1_root or root / S1_DIR
        metadata = metadata or root / METADATA
        reference_maps = reference_maps or root / REFMAP_DIR
    missing = [
        n
        for n, v in (("--s2_root", s2_root), ("--s1_root", s1_root), ("--metadata", metadata))
        if v is None
    ]
    if missing:
        raise ConfigError(f"benv2 tiles: give --root or {', '.join(missing)}")
    if reference_maps is None and (Path(s2_root).parent / REFMAP_DIR).is_dir():
        reference_maps = Path(s2_root).parent / REFMAP_DIR
    if split_mode is None:
        split_mode = "resplit" if (train_ratio is not None or val_ratio is not None) else "official"
    opts = TilesOptions(
        s2_root=Path(s2_root),
        s1_root=Path(s1_root),
        out_dir=Path(out_dir),
        metadata=Path(metadata),
        refmap_root=None if no_reference_maps else reference_maps,
        bands=expand_bands(bands),
        resampling=resampling,
        normalise=normalise,
        float16=float16,
        split=split_mode,
        train_ratio=0.8 if train_ratio is None else train_ratio,
        val_ratio=0.1 if val_ratio is None else val_ratio,
        split_group=split_group,
        countries=countries,
        max_per_country=max_per_country,
        seed=seed,
        with_snow_cloud=with_snow_cloud,
        delete_sources=delete_sources,
        min_free_gb=min_free_gb,
        max_wait_s=max_wait_s,
        target_gb=target_gb,
        store=store,
        shard_patches=shard_patches,
        store_layout=store_layout,
        store_compression=store_compression,
        min_s1_coverage=min_s1_coverage,
        reader=reader,
        read_back=read_back,
        stats_patches=stats_patches,
        limit=limit,
        batch=batch,
        commit_every=commit_every,
        progress=not no_progress,
    )
    if workers:
        opts.workers = workers
    summary = convert(opts)
    brief = {
        k: summary[k]
        for k in (
            "status",
            "selected",
            "done",
            "converted_this_run",
            "skipped",
            "failed",
            "failures_by_reason",
            "done_by_split",
            "mb_deleted",
            "throughput_patches_per_s",
        )
    }
    click.echo(json.dumps(brief))
    click.echo(f"summary: {Path(out_dir) / 'summary.json'}")
    raise_for_failures(summary, out_dir)


@click.command("benv2", short_help="BigEarthNet v2: conversion vs TIFF reads.")
@click.option("--patches", type=click.IntRange(10), default=300, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=2, show_default=True)
@click.option(
    "--reads",
    type=click.IntRange(10),
    default=1000,
    show_default=True,
    help="Random training reads from the store (the slow formats get a fifth).",
)
@click.option("--workers", type=click.IntRange(1), default=None, help="[default: all cores]")
@click.option(
    "--workdir",
    type=_PATH,
    default=Path("results/benchmark/benv2-work"),
    show_default=True,
    help="Fixture and outputs (reused between runs).",
)
@click.option(
    "--out", "out_json", type=_PATH, default=Path("results/benchmark/benv2.json"), show_default=True
)
@click.option(
    "--cold",
    is_flag=True,
    help="Also random reads with the page cache dropped before each block (needs root; "
    "the JSON says whether it was dropped).",
)
def bench_benv2(patches, seed, repeats, reads, workers, workdir, out_json, cold) -> None:
    """BigEarthNet v2: conversion vs reading the TIFFs; store vs npz vs TIFF training reads."""
    import os

    from eolab.benv2.bench import format_report, run_benchmark

    result = run_benchmark(
        workdir=workdir,
        patches=patches,
        seed=seed,
        repeats=repeats,
        reads=reads,
        workers=workers or os.cpu_count() or 1,
        out_json=out_json,
        cold=cold,
    )
    click.echo(format_report(result))
    click.echo(f"written: {out_json}")
