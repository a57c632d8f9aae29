"""``eolab bench benv2``: conversion speed against its limit, training reads against TIFFs.

1. Conversion patches/s on ``workers`` processes against *only reading the same TIFFs* with the
   same pool and reader (the limit of this machine for this input); raw byte reads of the same
   files are reported too. Target: conversion >= 0.7 x the read-only rate. The streaming-
   deletion mode (read-back of every npz, fsync per file and per folder, deletions) is measured
   on a copy of the fixture and reported beside it. Ratios are per run, then the median.
2. Training reads: random patches (all bands + labels), one reader process, from the sharded
   store (fast reader and zarr-python), from npz-per-patch, from the original TIFFs per patch
   (tifffile and rasterio, resampled + normalised like the store), and from a flat ``.npy``
   memmap (the copy-only limit). Target: store >= 20 x the TIFF way.

3. Layouts (``layouts`` in the JSON): the dense store, the compact store (native dtypes and
   resolutions, ``--store_layout compact``) and a rico-hdl-style LMDB of safetensors built from
   the same patches (``eolab.benv2.lmdbpeer``), all three returning the same arrays (checked):
   bytes per patch, random single reads and batches of ``BATCH`` warm, and with ``cold`` the
   same reads in blocks of ``COLD_BLOCK`` with the page cache dropped before each block (where
   root; the JSON says whether it was dropped and why not). Compact conversion patches/s are
   measured beside the dense ones.

Warm reads are from the page cache (the fixture is small and read once before timing), so
those figures compare software paths, not disks. Every repeat is kept in the JSON.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2 import names
from eolab.benv2.convert import (
    TilesOptions,
    _pool,
    _start_workers,
    assemble,
    convert,
    npz_relpath,
    worker_config,
)
from eolab.benv2.reader import read_patch
from eolab.benv2.transform import band_stats, multi_hot, normalise

#: Patches per batch read, and random reads per page-cache drop in the cold mode.
BATCH = 32
COLD_BLOCK = 50


def _read_only(rows: list[dict[str, Any]]) -> int:
    """Worker task: read every TIFF of the patches (as the conversion does), nothing else."""
    from eolab.benv2.convert import _WORKER as cfg

    for row in rows:
        read_patch(
            patch_id=row["patch_id"],
            s1_name=row["s1_name"],
            s2_root=Path(cfg["s2_root"]),
            s1_root=Path(cfg["s1_root"]),
            refmap_root=Path(cfg["refmap_root"]) if cfg["refmap_root"] else None,
            bands=tuple(cfg["bands"]),
            reader=cfg["reader"],
        )
    return len(rows)


def _raw_bytes(files: list[str]) -> int:
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            n += len(fh.read())
    return n


def measure_read_only(opts: TilesOptions, rows: list[dict[str, Any]]) -> dict[str, float]:
    """patches/s reading all TIFFs of ``rows`` with the conversion's pool, batch and reader."""
    from eolab.benv2.convert import source_files

    batches = [rows[i : i + opts.batch] for i in range(0, len(rows), opts.batch)]
    files = [str(f) for r in rows for part in source_files(r, opts) for f in part]
    chunks = [files[i : i + 64] for i in range(0, len(files), 64)]
    with _pool(opts, worker_config(opts)) as pool:
        _start_workers(pool, opts.workers)
        t = time.perf_counter()
        n = sum(pool.map(_read_only, batches))
        tiff = n / (time.perf_counter() - t)
        t = time.perf_counter()
        nbytes = sum(pool.map(_raw_bytes, chunks))
        raw = len(rows) / (time.perf_counter() - t)
    return {"tiff_read_patches_per_s": tiff, "raw_bytes_patches_per_s": raw, "bytes": nbytes}


def _timed_reads(fn, indices: list[int]) -> float:
    t = time.perf_counter()
    for i in indices:
        x, y = fn(i)
        assert x.shape[-2:] == (names.PATCH_PX, names.PATCH_PX) and y.shape == (len(names.LABELS),)
    return len(indices) / (time.perf_counter() - t)


def _memmap_reads(flat: Path, members: list[dict[str, Any]], idx: list[int]) -> float:
    """Random reads of a flat (patch, band, y, x) ``.npy`` through a memmap: copy-only limit."""
    data = np.load(flat, mmap_mode="r")
    labels = np.stack([multi_hot(r["labels"], names.LABEL_INDEX) for r in members])
    return _timed_reads(lambda i: (np.array(data[i]), labels[i]), idx)


def measure_training_reads(
    opts: TilesOptions, rows: list[dict[str, Any]], split: str, n_reads: int, seed: int
) -> dict[str, float]:
    """Random patches/s (with labels) from each format, one reader, page cache warm."""
    import zarr

    from eolab.benv2.store import PatchStore
    from eolab.benv2.writers import read_npz

    members = [r for r in rows if r["split"] == split]
    store_path = opts.out_dir / "zarr" / f"{split}.zarr"
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(members), n_reads).tolist()
    few = idx[: max(20, n_reads // 5)]  # the slow ways get fewer reads
    keys = [names.npz_key(b) for b in opts.bands]
    out: dict[str, float] = {}

    with PatchStore(store_path) as store:
        for i in range(len(store)):  # warm the page cache and the shard indexes
            store.read(i)
        out["store_fast_reader"] = _timed_reads(store.__getitem__, idx)
        flat = opts.out_dir / "bench_flat.npy"
        np.save(flat, np.stack([store.read(i) for i in range(len(store))]))
    out["npy_memmap_limit"] = _memmap_reads(flat, members, idx)
    flat.unlink()

    z = zarr.open_group(store_path, mode="r")
    zx, zl = z["data"], z["labels"][...]
    out["store_zarr_python"] = _timed_reads(lambda i: (zx[i], zl[i]), few)

    def npz(i: int):
        a = read_npz(opts.out_dir / npz_relpath(split, members[i]["patch_id"]))
        return np.stack([a[k] for k in keys]), a["labels"]

    out["npz_per_patch"] = _timed_reads(npz, few)

    def tiffs(reader: str):
        def read(i: int):
            row = members[i]
            src = read_patch(
                patch_id=row["patch_id"],
                s1_name=row["s1_name"],
                s2_root=opts.s2_root,
                s1_root=opts.s1_root,
                refmap_root=None,
                bands=opts.bands,
                reader=reader,
            )
            raw, _ = assemble(src, opts.bands, opts.resampling, opts.min_s1_coverage)
            x = normalise(raw, "patch", band_stats(raw), opts.dtype)
            return x, multi_hot(row["labels"], names.LABEL_INDEX)

        return read

    import rasterio

    from eolab.benv2.reader import GDAL_ENV

    with rasterio.Env(**GDAL_ENV):
        out["tiff_per_patch_tifffile"] = _timed_reads(tiffs("tifffile"), few)
        out["tiff_per_patch_rasterio"] = _timed_reads(tiffs("rasterio"), few)
    return out


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _batched(idx: list[int]) -> list[list[int]]:
    return [idx[i : i + BATCH] for i in range(0, len(idx), BATCH)]


def _timed(fn, calls: list) -> float:
    """Seconds for ``fn(c)`` over ``calls``, each result checked to be a full patch array."""
    t = time.perf_counter()
    for c in calls:
        x = fn(c)
        assert x.shape[-2:] == (names.PATCH_PX, names.PATCH_PX)
    return time.perf_counter() - t


def measure_layouts(
    dense_out: Path, compact_out: Path, split: str, n_reads: int, seed: int, cold: bool
) -> dict[str, Any]:
    """Bytes per patch and warm (and cold) random reads: dense store, compact store, LMDB peer."""
    import shutil

    from eolab.benv2.lmdbpeer import LmdbPeer, build_lmdb
    from eolab.benv2.store import PatchStore
    from eolab.lab.patchbench import drop_page_cache

    dense_path = Path(dense_out) / "zarr" / f"{split}.zarr"
    compact_path = Path(compact_out) / "zarr" / f"{split}.zarr"
    lmdb_path = Path(compact_out) / f"bench-{split}.lmdb"
    dense, compact = PatchStore(dense_path), PatchStore(compact_path)
    npz = {p.stem: p for p in (Path(compact_out) / "patches" / split).rglob("*.npz")}
    ids = list(compact.patch_id)
    t = time.perf_counter()
    shutil.rmtree(lmdb_path, ignore_errors=True)
    lmdb_values = build_lmdb(lmdb_path, [npz[p] for p in ids], ids, compact.attrs["bands"])
    lmdb_build_s = time.perf_counter() - t
    peer = LmdbPeer(lmdb_path, compact)
    readers = {"dense_store": dense, "compact_store": compact, "lmdb_safetensors": peer}
    n = len(ids)
    bytes_per_patch = {
        "dense_store": _dir_bytes(dense_path / "data") / n,
        "compact_store": _dir_bytes(compact_path / "native") / n,
        "lmdb_safetensors": _dir_bytes(lmdb_path) / n,
        "lmdb_safetensors_values": lmdb_values / n,
    }
    # every contender returns the same arrays (all patches, one batch read each)
    everything = list(range(n))
    want = dense.read_batch(everything)
    for name, reader in readers.items():
        if not np.array_equal(reader.read_batch(everything), want):
            raise AssertionError(f"{name} returns other arrays than the dense store")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, n_reads).tolist()
    single = [[i] for i in idx]
    warm: dict[str, dict[str, float]] = {}
    for name, reader in readers.items():
        reader.read_batch(everything)  # page cache and shard indexes warm
        warm[name] = {
            "single_patches_per_s": len(idx) / _timed(reader.read_batch, single),
            "batch_patches_per_s": len(idx) / _timed(reader.read_batch, _batched(idx)),
        }
    out: dict[str, Any] = {
        "split": split,
        "patches": n,
        "bytes_per_patch": bytes_per_patch,
        "lmdb_build_s": lmdb_build_s,
        "warm": warm,
        "arrays_equal": True,
    }
    if cold:
        out["cold"] = _cold_reads(readers, idx, drop_page_cache)
    for reader in readers.values():
        reader.close()
    return out


def _cold_reads(readers: dict[str, Any], idx: list[int], drop) -> dict[str, Any]:
    """Random single reads in blocks of ``COLD_BLOCK``, the page cache dropped before each
    block and each reader (interleaved so that no contender profits from another's reads).

    Each reader is closed first: pages mapped by a process (the LMDB's mmap) survive a drop,
    so an open LMDB would read warm; a store re-reads its shard index (one small read).
    """
    seconds = {name: 0.0 for name in readers}
    dropped, reason = True, "dropped before every block of reads"
    blocks = [idx[i : i + COLD_BLOCK] for i in range(0, len(idx), COLD_BLOCK)]
    for block in blocks:
        for name, reader in readers.items():
            reader.close()
            ok, why = drop()
            if not ok:
                dropped, reason = False, why
            seconds[name] += _timed(reader.read_batch, [[i] for i in block])
    return {
        "page_cache_dropped": dropped,
        "reason": reason,
        "block_reads": COLD_BLOCK,
        "blocks": len(blocks),
        "single_patches_per_s": {k: len(idx) / v for k, v in seconds.items()},
    }


def run_benchmark(
    *,
    workdir: Path,
    patches: int,
    seed: int,
    repeats: int,
    reads: int,
    workers: int,
    out_json: Path | None,
    cold: bool = False,
) -> dict[str, Any]:
    """Generate a fixture, convert it ``repeats`` times (dense and compact), measure; write and
    return the JSON. ``cold``: also random reads with the page cache dropped (see the module)."""
    import shutil

    from eolab.benv2.convert import plan
    from eolab.core.atomic import write_json
    from eolab.core.provenance import environment
    from eolab.fixtures.benv2 import generate

    workdir = Path(workdir)
    fixture = workdir / "fixture"
    marker = fixture / "bench-fixture.json"
    wanted = {"patches": patches, "seed": seed}
    if not marker.is_file() or json.loads(marker.read_text()) != wanted:
        shutil.rmtree(fixture, ignore_errors=True)
        generate(fixture, patches=patches, seed=seed)
        write_json(marker, wanted)

    def options(out: Path, root: Path = fixture, **kw: Any) -> TilesOptions:
        return TilesOptions.for_root(root, out, workers=workers, progress=False, **kw)

    rows = plan(options(workdir / "out"))
    runs = []
    for r in range(repeats):
        out = workdir / f"out-{r}"
        shutil.rmtree(out, ignore_errors=True)
        opts = options(out)
        read = measure_read_only(opts, rows)  # also warms the page cache for the conversion
        summary = convert(opts)
        compact_out = workdir / f"out-compact-{r}"
        shutil.rmtree(compact_out, ignore_errors=True)
        compact = convert(options(compact_out, store_layout="compact"))
        # the streaming-deletion mode on a copy: fsync, read-back, group commits, deletions
        copy = workdir / "fixture-copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(fixture, copy)
        deleting = convert(
            options(workdir / f"out-del-{r}", copy, delete_sources=True, store=False)
        )
        shutil.rmtree(workdir / f"out-del-{r}", ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)
        convert_rate = summary["throughput_patches_per_s"]
        delete_rate = deleting["throughput_patches_per_s"]
        runs.append(
            {
                **read,
                "convert_patches_per_s": convert_rate,
                "convert_delete_sources_patches_per_s": delete_rate,
                "ratio_convert_vs_tiff_read": convert_rate / read["tiff_read_patches_per_s"],
                "ratio_delete_vs_tiff_read": delete_rate / read["tiff_read_patches_per_s"],
                "store_build_patches_per_s": summary["done"] / summary["timings_s"]["store_s"],
                "convert_compact_patches_per_s": compact["throughput_patches_per_s"],
                "store_build_compact_patches_per_s": compact["done"]
                / compact["timings_s"]["store_s"],
                "timings_s": summary["timings_s"],
                "output_bytes": summary["bytes_written"],
                "deleted_mb": deleting["mb_deleted"],
            }
        )
    opts = options(workdir / f"out-{repeats - 1}")
    train = measure_training_reads(opts, rows, "train", reads, seed)
    layouts = measure_layouts(
        opts.out_dir, workdir / f"out-compact-{repeats - 1}", "train", reads, seed, cold
    )

    med = {k: statistics.median(run[k] for run in runs) for k in runs[0] if k != "timings_s"}
    best_tiff = max(train["tiff_per_patch_tifffile"], train["tiff_per_patch_rasterio"])
    ratios = {
        # per-run ratios (each pair measured back to back), then the median
        "convert_vs_tiff_read": med["ratio_convert_vs_tiff_read"],
        "convert_delete_sources_vs_tiff_read": med["ratio_delete_vs_tiff_read"],
        "store_vs_tiff_tifffile": train["store_fast_reader"] / train["tiff_per_patch_tifffile"],
        "store_vs_tiff_rasterio": train["store_fast_reader"] / train["tiff_per_patch_rasterio"],
        "store_vs_best_tiff": train["store_fast_reader"] / best_tiff,
        "store_vs_npz": train["store_fast_reader"] / train["npz_per_patch"],
        "store_vs_npy_memmap_limit": train["store_fast_reader"] / train["npy_memmap_limit"],
        "zarr_python_vs_best_tiff": train["store_zarr_python"] / best_tiff,
    }
    result = {
        "benchmark": "benv2",
        "what": "BigEarthNet v2 fixture -> npz + sharded Zarr; conversion vs TIFF read limit; "
        "random training reads per format (page cache warm, one reader)",
        "params": {
            "patches": patches,
            "seed": seed,
            "repeats": repeats,
            "reads": reads,
            "workers": workers,
            "bands": list(names.ALL_BANDS),
            "dtype": "float32",
            "train_patches": sum(r["split"] == "train" for r in rows),
            "cold": cold,
        },
        "conversion_runs": runs,
        "conversion_median": med,
        "training_reads_patches_per_s": train,
        "layouts": layouts,
        "ratios": ratios,
        "targets": {"convert_vs_tiff_read": 0.7, "store_vs_best_tiff": 20.0},
        "meets_targets": {
            "convert_vs_tiff_read": ratios["convert_vs_tiff_read"] >= 0.7,
            "store_vs_best_tiff": ratios["store_vs_best_tiff"] >= 20.0,
        },
        "environment": environment(),
    }
    if out_json is not None:
        write_json(out_json, result)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A short human-readable table of the figures."""
    med, train, ratios = (
        result["conversion_median"],
        result["training_reads_patches_per_s"],
        result["ratios"],
    )
    lines = [
        f"BigEarthNet v2 benchmark: {result['params']['patches']} patches, "
        f"{result['params']['workers']} workers, median of {result['params']['repeats']}",
        f"  read TIFFs only (limit)   {med['tiff_read_patches_per_s']:9.1f} patches/s",
        f"  raw bytes of the same     {med['raw_bytes_patches_per_s']:9.1f} patches/s",
        f"  convert (npz+json+checks) {med['convert_patches_per_s']:9.1f} patches/s"
        f"   ratio {ratios['convert_vs_tiff_read']:.2f} (target >= 0.7)",
        f"  convert --delete-sources  {med['convert_delete_sources_patches_per_s']:9.1f} patches/s"
        f"   ratio {ratios['convert_delete_sources_vs_tiff_read']:.2f} (fsync, read-back, delete)",
        f"  build sharded stores      {med['store_build_patches_per_s']:9.1f} patches/s",
        "training reads (random patch + labels, one reader):",
    ]
    for name, value in train.items():
        lines.append(f"  {name:26s}{value:9.1f} patches/s")
    lay = result["layouts"]
    lines.append(
        f"  convert compact           {med['convert_compact_patches_per_s']:9.1f} patches/s"
    )
    lines.append("layouts (same arrays): bytes/patch, warm single | batch patches/s, cold single")
    cold = lay.get("cold")
    for name, warm in lay["warm"].items():
        cold_rate = f"{cold['single_patches_per_s'][name]:9.1f}" if cold else "        -"
        lines.append(
            f"  {name:18s}{lay['bytes_per_patch'][name] / 1e3:8.1f} KB"
            f"{warm['single_patches_per_s']:10.1f} |{warm['batch_patches_per_s']:9.1f}{cold_rate}"
        )
    if cold and not cold["page_cache_dropped"]:
        lines.append(f"  (page cache NOT dropped: {cold['reason']})")
    lines.append(
        f"  store / best TIFF way = {ratios['store_vs_best_tiff']:.1f}x (target >= 20); "
        f"store / npz = {ratios['store_vs_npz']:.1f}x; "
        f"store / npy memmap = {ratios['store_vs_npy_memmap_limit']:.2f}"
    )
    return "\n".join(lines)
