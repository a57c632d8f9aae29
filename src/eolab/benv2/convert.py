"""The conversion pipeline: plan -> (global stats) -> convert/verify/delete in a pool -> store.

Output layout under ``out_dir``::

    patches/<split>/<S2 product>/<patch_id>.npz + .json   one pair per patch
    zarr/<split>.zarr                                     sharded training store per split
    patches.parquet                                       the patch table (all splits)
    normalisation.json                                    mode, formula, global statistics
    journal.jsonl  log.jsonl  summary.json                state, per-patch log, summary

Work happens in a process pool (``--workers``, default all cores) whose workers each open one
GDAL environment and keep it; the main process only plans, journals, deletes and logs.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2 import names
from eolab.benv2.compact import native_arrays, native_shape
from eolab.benv2.reader import GDAL_ENV, PatchError, read_patch
from eolab.benv2.store import format_version
from eolab.benv2.transform import (
    Georef,
    align_s1,
    band_stats,
    multi_hot,
    normalise,
    scale_offset,
    tolerance_for,
    upsample,
)
from eolab.benv2.writers import (
    check_npz_file,
    decode_npz,
    encode_npz,
    npz_index_crc,
    write_atomic,
    write_sidecar,
)
from eolab.core.disk import is_disk_full
from eolab.core.errors import ConfigError, DiskSpaceError, InputError, from_os_error

GB = 1e9
FLUSH_SECONDS = 2.0  # longest time between group commits


@dataclass
class TilesOptions:
    """Everything ``eolab benv2 tiles`` takes (see the CLI for the meaning of each)."""

    s2_root: Path
    s1_root: Path
    out_dir: Path
    metadata: Path
    refmap_root: Path | None = None
    bands: tuple[str, ...] = names.ALL_BANDS
    resampling: str = "nearest"
    normalise: str = "patch"
    float16: bool = False
    split: str = "official"
    train_ratio: float = 0.8
    val_ratio: float = 0.1
    split_group: str = "location"
    countries: str | None = None
    max_per_country: int | None = None
    seed: int = 42
    with_snow_cloud: bool = False
    delete_sources: bool = False
    min_free_gb: float = 0.0
    target_gb: float | None = None
    max_wait_s: float = 600.0
    poll_s: float = 10.0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch: int = 4
    commit_every: int = 32
    store: bool = True
    shard_patches: int = 256
    store_layout: str = "dense"
    store_compression: str | None = None  # None: none for dense, COMPACT_DEFAULT_COMPRESSION
    stats_patches: int = 5000
    min_s1_coverage: float = 0.9
    reader: str = "tifffile"
    read_back: bool | None = None  # None: read back exactly when sources are deleted
    progress: bool = True
    limit: int | None = None

    @classmethod
    def for_root(cls, root: Path, out_dir: Path, **kw: Any) -> TilesOptions:
        """Options for a download laid out as distributed: ``root`` holds BigEarthNet-S2,
        BigEarthNet-S1, metadata.parquet and Reference_Maps (``kw`` overrides any of them)."""
        root = Path(root)
        paths = {
            "s2_root": root / names.S2_DIR,
            "s1_root": root / names.S1_DIR,
            "metadata": root / names.METADATA,
            "refmap_root": root / names.REFMAP_DIR,
        }
        return cls(out_dir=Path(out_dir), **{**paths, **kw})

    @property
    def reads_back(self) -> bool:
        return self.delete_sources if self.read_back is None else self.read_back

    @property
    def dtype(self) -> str:
        return "float16" if self.float16 else "float32"

    @property
    def compact(self) -> bool:
        return self.store_layout == "compact"

    @property
    def compression(self) -> str:
        """The store's codec: the option, else none (dense) or the compact default."""
        from eolab.benv2.store import COMPACT_DEFAULT_COMPRESSION

        if self.store_compression is not None:
            return self.store_compression
        return COMPACT_DEFAULT_COMPRESSION if self.compact else "none"

    def fingerprint(self) -> dict[str, Any]:
        """The options that decide what the outputs contain (a rerun must use the same).

        The selection (countries, caps, snow/cloud, limit, seed) changes a patch's output only
        through a re-split or global statistics; with official splits and per-patch or no
        normalisation, one output folder can grow by widening the selection.
        """
        resplit = self.split == "resplit"
        selection_matters = resplit or self.normalise == "global"
        return {
            "bands": list(self.bands),
            "resampling": self.resampling,
            "normalise": self.normalise,
            "dtype": self.dtype,
            "reference_maps": self.refmap_root is not None,
            "split": self.split,
            "train_ratio": self.train_ratio if resplit else None,
            "val_ratio": self.val_ratio if resplit else None,
            "split_group": self.split_group if resplit else None,
            "selection": {
                "countries": self.countries,
                "max_per_country": self.max_per_country,
                "seed": self.seed,
                "with_snow_cloud": self.with_snow_cloud,
                "limit": self.limit,
            }
            if selection_matters
            else None,
            "min_s1_coverage": self.min_s1_coverage,
            # compact outputs hold native arrays (absent for dense: older journals stay valid)
            **({"layout": "compact"} if self.compact else {}),
        }


# ----------------------------------------------------------------------------- paths


def npz_relpath(split: str, patch_id: str) -> str:
    """A patch's ``.npz``, relative to ``out_dir``: ``patches/<split>/<S2 product>/<id>.npz``."""
    return f"patches/{split}/{names.s2_product(patch_id)}/{patch_id}.npz"


def source_files(row: dict[str, Any], opts: TilesOptions) -> tuple[list[Path], list[Path]]:
    """(S2 + reference map files, S1 files) that hold this patch's converted content."""
    own = [
        names.s2_band_path(opts.s2_root, row["patch_id"], b)
        for b in opts.bands
        if b in names.S2_BANDS
    ]
    if opts.refmap_root is not None:
        own.append(names.refmap_path(opts.refmap_root, row["patch_id"]))
    s1 = [
        names.s1_band_path(opts.s1_root, row["s1_name"], b)
        for b in opts.bands
        if b in names.S1_BANDS
    ]
    return own, s1


def delete_files(files: list[Path]) -> int:
    """Unlink files (missing ones are fine), then their folder and its parent if left empty."""
    freed = 0
    folders = set()
    for path in files:
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass
        folders.add(path.parent)
    for folder in folders:
        for d in (folder, folder.parent):
            try:
                d.rmdir()
            except OSError:
                break
    return freed


# ----------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def _init_worker(cfg: dict[str, Any]) -> None:
    """Per worker, once: the options and one GDAL environment kept open for its lifetime."""
    import rasterio

    env = rasterio.Env(**GDAL_ENV)
    env.__enter__()
    _WORKER.clear()
    _WORKER.update(cfg, env=env)


def assemble(src: Any, bands: tuple[str, ...], resampling: str, min_s1_coverage: float):
    """Stack a patch's bands on the 10 m 120x120 grid (float32, source units) + georef info."""
    size = names.PATCH_PX
    target = None
    for band, (_, geo) in src.s2.items():
        a, _, c, _, e, f = geo.transform
        ref = Georef(geo.epsg, (10.0, 0.0, c, 0.0, -10.0, f), (size, size))
        if target is None:
            target = ref
        elif not target.same_grid(ref):
            raise PatchError("s2_grid_mismatch", f"{band} is not on the grid of the other S2 bands")
    s1 = None
    info: dict[str, Any] = {}
    if src.s1:
        s1_arr = np.stack([src.s1[b][0] for b in src.s1])
        s1_geo = next(iter(src.s1.values()))[1]
        if target is None:
            target = s1_geo
        try:
            s1, info = align_s1(s1_arr, s1_geo, target, min_coverage=min_s1_coverage)
        except ValueError as exc:
            raise PatchError("s1_footprint_mismatch", str(exc)) from exc
    stack = np.empty((len(bands), size, size), dtype=np.float32)
    s1_pos = 0
    for i, band in enumerate(bands):
        if band in names.S2_BANDS:
            upsample(src.s2[band][0], size, resampling, out=stack[i])
        else:
            stack[i] = s1[s1_pos]
            s1_pos += 1
    info.update(crs=f"EPSG:{target.epsg}", transform=list(target.transform))
    return stack, info


def convert_patch(row: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Read, transform, write, read back and verify one patch; never raises for patch faults."""
    pid = row["patch_id"]
    base = {"id": pid, "split": row["split"], "country": row["country"]}
    out_dir = Path(cfg["out_dir"])
    rel = npz_relpath(row["split"], pid)
    npz_path = out_dir / rel
    json_path = npz_path.with_suffix(".json")
    bands = tuple(cfg["bands"])
    try:
        src = read_patch(
            patch_id=pid,
            s1_name=row["s1_name"],
            s2_root=Path(cfg["s2_root"]),
            s1_root=Path(cfg["s1_root"]),
            refmap_root=Path(cfg["refmap_root"]) if cfg["refmap_root"] else None,
            bands=bands,
            reader=cfg["reader"],
        )
        raw, info = assemble(src, bands, cfg["resampling"], cfg["min_s1_coverage"])
        mode = cfg["normalise"]
        stats = band_stats(raw) if mode == "patch" else cfg.get("global_stats") or {}
        native = cfg.get("layout") == "compact"
        if native:  # the source arrays themselves: the store normalises at read time
            arrays = native_arrays(src, raw, bands)
        else:
            norm = normalise(raw, mode, stats, cfg["dtype"])
            arrays = {names.npz_key(b): norm[i] for i, b in enumerate(bands)}
        labels = multi_hot(row["labels"], names.LABEL_INDEX)
        arrays["labels"] = labels
        if src.refmap is not None:
            arrays["reference_map"] = src.refmap[0]
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        data = encode_npz(arrays)
        nbytes, crc = len(data), npz_index_crc(data)
        durable = cfg.get("durable", False)
        write_atomic(npz_path, data, durable)
        sidecar = _sidecar(row, bands, cfg, info, mode, stats, nbytes, crc)
        jbytes = write_sidecar(json_path, sidecar, durable)
        try:
            if not native:
                check_values(npz_path, norm, raw, mode, stats, cfg["dtype"], bands)
            if cfg.get("read_back", True):
                verify_npz(npz_path, data, arrays, cfg["dtype"], bands, native=native)
        except PatchError:
            npz_path.unlink(missing_ok=True)
            json_path.unlink(missing_ok=True)
            raise
    except PatchError as exc:
        return {
            **base,
            "ok": False,
            "status": "skipped",
            "reason": exc.reason,
            "detail": exc.detail,
        }
    except OSError as exc:  # a full or read-only output disk: name the file and the fault
        full = is_disk_full(exc)
        return {
            **base,
            "ok": False,
            "status": "failed",
            "reason": "disk_full" if full else "os_error",
            "detail": str(from_os_error(exc, npz_path)),
        }
    except Exception as exc:  # an unexpected fault of one patch must not stop the others
        return {
            **base,
            "ok": False,
            "status": "failed",
            "reason": "unexpected_error",
            "detail": repr(exc),
        }
    return {
        **base,
        "ok": True,
        "status": "converted",
        "npz": rel,
        "bytes": nbytes + jbytes,
        "crc32": crc,
        "npz_bytes": nbytes,
    }


def _sidecar(row, bands, cfg, info, mode, stats, nbytes, crc) -> dict[str, Any]:
    per_band = {
        names.npz_key(b): {
            k: float(stats[k][i]) for k in ("min", "max", "mean", "std") if k in stats
        }
        for i, b in enumerate(bands)
    }
    return {
        "id": row["patch_id"],
        "s1_name": row["s1_name"],
        "s2v1_name": row["s2v1_name"],
        "country": row["country"],
        "split": row["split"],
        "official_split": row["official_split"],
        "height": names.PATCH_PX,
        "width": names.PATCH_PX,
        "tile": names.tile_of(row["patch_id"]),
        "dates": {
            "s2": names.s2_datetime(row["patch_id"]),
            "s1": names.s1_datetime(row["s1_name"]),
        },
        "bands": list(bands),
        "keys": [names.npz_key(b) for b in bands],
        "dtype": cfg["dtype"],
        "layout": "native" if cfg.get("layout") == "compact" else "normalised",
        "resampling": cfg["resampling"],
        "normalisation": {
            "mode": mode,
            "formula": {
                "patch": "x = v * (max - min) + min",
                "global": "x = v * std + mean",
                "none": "x = v",
            }[mode],
            "bands": per_band,
        },
        "labels": list(row["labels"]),
        "contains_seasonal_snow": bool(row["contains_seasonal_snow"]),
        "contains_cloud_or_shadow": bool(row["contains_cloud_or_shadow"]),
        "npz_bytes": nbytes,
        "npz_crc32": crc,
        **info,
    }


def check_values(
    path: Path,
    norm: np.ndarray,
    raw: np.ndarray,
    mode: str,
    stats: dict[str, Any],
    dtype: str,
    bands: tuple[str, ...],
) -> None:
    """The stored bands are finite and denormalise to the (resampled, aligned) source within
    the dtype's rounding; PatchError("verify_failed") otherwise.

    One product and two subtractions, then a max and a min per band: a NaN or inf anywhere
    makes the error NaN or inf, which fails the comparison too.
    """
    n = len(bands)
    scale, offset = scale_offset(mode, stats, n)
    diff = np.multiply(norm, scale.astype(np.float32)[:, None, None], dtype=np.float32)
    diff -= raw
    diff += offset.astype(np.float32)[:, None, None]
    flat = diff.reshape(n, -1)
    err = np.maximum(flat.max(axis=1), -flat.min(axis=1))
    lo, hi = raw.reshape(n, -1).min(axis=1), raw.reshape(n, -1).max(axis=1)
    absmax = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    tol = tolerance_for(absmax, mode, stats, dtype, n)
    bad = np.flatnonzero(~(err <= tol))
    if len(bad):
        i = int(bad[0])
        raise PatchError(
            "verify_failed",
            f"{path}: {names.npz_key(bands[i])} differs from the source by {err[i]:.6g} "
            f"> {tol[i]:.3g} (or is not finite)",
        )


def verify_npz(
    path: Path,
    written: bytes,
    arrays: dict[str, np.ndarray],
    dtype: str,
    bands: tuple[str, ...],
    native: bool = False,
) -> None:
    """Read the npz back from disk: its bytes must be exactly those written and decode to the
    expected keys, shapes and dtypes (so the decoded bands are the arrays ``check_values``
    checked; ``native`` bands, the compact layout's source arrays, must equal them exactly);
    PatchError("verify_failed") otherwise."""
    try:
        on_disk = path.read_bytes()
    except OSError as exc:
        raise PatchError("verify_failed", f"{path}: cannot read back ({exc})") from exc
    if on_disk != written:
        raise PatchError("verify_failed", f"{path}: bytes on disk differ from those written")
    try:
        loaded = decode_npz(on_disk)
    except Exception as exc:
        raise PatchError("verify_failed", f"{path}: not a readable npz ({exc})") from exc
    if list(loaded) != list(arrays):
        raise PatchError("verify_failed", f"{path}: keys {sorted(loaded)} != {sorted(arrays)}")
    for band in bands:
        a = loaded[names.npz_key(band)]
        shape, want = native_shape(band) if native else ((names.PATCH_PX,) * 2, dtype)
        if a.shape != shape or a.dtype != np.dtype(want):
            raise PatchError(
                "verify_failed", f"{path}: {names.npz_key(band)} is {a.dtype} {a.shape}"
            )
    checked = [names.npz_key(b) for b in bands] if native else []
    for key in (*checked, "labels", "reference_map"):
        if key in arrays and not np.array_equal(loaded[key], arrays[key]):
            raise PatchError("verify_failed", f"{path}: {key} differs from the source")


def _worker_pid(_: int) -> int:
    time.sleep(0.05)  # long enough that every worker gets one
    return os.getpid()


def _start_workers(pool: ProcessPoolExecutor, n: int) -> set[int]:
    """Start every worker now (fork server, imports, GDAL env) so timings exclude start-up."""
    return set(pool.map(_worker_pid, range(max(1, n))))


def _run_batch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [convert_patch(row, _WORKER) for row in rows]


def _stats_batch(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per-band count, sum, sum of squares, min, max over the patches that read cleanly."""
    cfg = _WORKER
    bands = tuple(cfg["bands"])
    acc = None
    for row in rows:
        try:
            src = read_patch(
                patch_id=row["patch_id"],
                s1_name=row["s1_name"],
                s2_root=Path(cfg["s2_root"]),
                s1_root=Path(cfg["s1_root"]),
                refmap_root=None,
                bands=bands,
                reader=cfg["reader"],
            )
            raw, _ = assemble(src, bands, cfg["resampling"], cfg["min_s1_coverage"])
        except PatchError:
            continue
        flat = raw.reshape(len(bands), -1).astype(np.float64)
        part = {
            "n": np.full(len(bands), flat.shape[1], dtype=np.float64),
            "sum": flat.sum(axis=1),
            "sumsq": (flat**2).sum(axis=1),
            "min": flat.min(axis=1),
            "max": flat.max(axis=1),
            "patches": 1,
        }
        acc = part if acc is None else _merge_stats(acc, part)
    return acc


def _merge_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": a["n"] + b["n"],
        "sum": a["sum"] + b["sum"],
        "sumsq": a["sumsq"] + b["sumsq"],
        "min": np.minimum(a["min"], b["min"]),
        "max": np.maximum(a["max"], b["max"]),
        "patches": a["patches"] + b["patches"],
    }


def _shard_batch(
    path: str, start: int, npz_paths: list[str], bands: list[str], layout: str = "dense"
) -> dict:
    from eolab.benv2.store import write_shard

    return write_shard(Path(path), start, npz_paths, tuple(bands), layout)


# ----------------------------------------------------------------------------- main side


def _pool(opts: TilesOptions, cfg: dict[str, Any]) -> ProcessPoolExecutor:
    """Workers started by a fork server (clean state even when the caller runs threads)."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(
            ["eolab.benv2.convert", "eolab.benv2.store", "tifffile", "rasterio"]
        )
    return ProcessPoolExecutor(
        max_workers=max(1, opts.workers), mp_context=ctx, initializer=_init_worker, initargs=(cfg,)
    )


def plan(opts: TilesOptions) -> list[dict[str, Any]]:
    """The selected patches (with split) as plain dicts, sorted by patch id."""
    from eolab.benv2.metadata import load_metadata, select

    df = load_metadata(opts.metadata, with_snow_cloud=opts.with_snow_cloud)
    df = select(
        df,
        countries=opts.countries,
        max_per_country=opts.max_per_country,
        split_mode=opts.split,
        train_ratio=opts.train_ratio,
        val_ratio=opts.val_ratio,
        seed=opts.seed,
        split_group_by=opts.split_group,
    )
    if opts.limit:
        df = df.head(opts.limit)
    return df.to_dict("records")


def _check_options(opts: TilesOptions) -> None:
    from eolab.benv2.store import COMPRESSION, LAYOUTS
    from eolab.benv2.transform import NORMALISATION, RESAMPLING

    checks = [
        (opts.resampling in RESAMPLING, f"--resampling {opts.resampling!r}: expected {RESAMPLING}"),
        (
            opts.normalise in NORMALISATION,
            f"--normalise {opts.normalise!r}: expected {NORMALISATION}",
        ),
        (opts.compression in COMPRESSION, f"--store_compression: expected {COMPRESSION}"),
        (opts.store_layout in LAYOUTS, f"--store_layout {opts.store_layout!r}: expected {LAYOUTS}"),
        (0 <= opts.min_s1_coverage <= 1, "--min_s1_coverage must be in [0, 1]"),
        (opts.shard_patches >= 1, "--shard_patches must be >= 1"),
        (opts.min_free_gb >= 0, "--min_free_gb must be >= 0"),
        (opts.target_gb is None or opts.target_gb > 0, "--target_gb must be > 0"),
        (
            not (opts.delete_sources and opts.read_back is False),
            "--delete-sources needs the read-back verification (drop --no-read-back)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for name, root in (("--s2_root", opts.s2_root), ("--s1_root", opts.s1_root)):
        if not Path(root).is_dir():
            raise InputError(f"{name} {root}: not a folder")
    if opts.refmap_root is not None and not Path(opts.refmap_root).is_dir():
        raise InputError(f"--reference_maps {opts.refmap_root}: not a folder")


class _Run:
    """Mutable bookkeeping of one invocation (counters, pending group commit, log)."""

    def __init__(self, opts: TilesOptions, rows: list[dict[str, Any]], journal, log_fh, guard, bar):
        self.opts = opts
        self.rows = {r["patch_id"]: r for r in rows}
        self.journal = journal
        self.log_fh = log_fh
        self.guard = guard
        self.bar = bar
        self.pending: list[dict[str, Any]] = []
        self.verified: dict[str, dict[str, Any]] = {}
        self.last_flush = time.monotonic()
        self.counts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.bytes_written = 0
        self.bytes_deleted = 0
        self.free_gb = float("nan")
        # an S1 patch is deleted when every selected patch that uses it is done
        self.s1_users = Counter(r["s1_name"] for r in rows)

    def log(self, rec: dict[str, Any], mb_deleted: float = 0.0) -> None:
        line = {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "id": rec["id"],
            "split": rec.get("split"),
            "country": rec.get("country"),
            "ok": rec["ok"],
            "status": rec["status"],
            "reason": rec.get("reason"),
            "detail": rec.get("detail"),
            "bytes_written": rec.get("bytes", 0),
            "mb_deleted": round(mb_deleted, 6),
            "free_gb": round(self.free_gb, 3),
        }
        self.log_fh.write(json.dumps(line) + "\n")

    def handle(self, rec: dict[str, Any]) -> None:
        self.counts[rec["status"]] += 1
        if self.bar is not None:
            self.bar.update(1)
        if rec["ok"]:
            self.bytes_written += rec["bytes"]
            self.pending.append(rec)
        else:
            self.reasons[rec["reason"]] += 1
            self.log(rec)
        due = time.monotonic() - self.last_flush > FLUSH_SECONDS
        if len(self.pending) >= self.opts.commit_every or due:
            self.flush()

    def flush(self) -> None:
        """Group commit: make outputs durable, journal them, then delete their sources."""
        self.last_flush = time.monotonic()
        if not self.pending:
            self.log_fh.flush()
            return
        if self.opts.delete_sources:  # the files were fsynced by the workers; now their folders
            from eolab.core.atomic import fsync_dir

            for folder in {(self.opts.out_dir / r["npz"]).parent for r in self.pending}:
                fsync_dir(folder)
        records = [
            {
                "kind": "verified",
                "id": r["id"],
                "split": r["split"],
                "npz": r["npz"],
                "bytes": r["bytes"],
                "npz_bytes": r["npz_bytes"],
                "crc32": r["crc32"],
            }
            for r in self.pending
        ]
        self.journal.append(records)
        if self.opts.delete_sources:  # durable before anything is deleted
            self.journal.sync()
        else:  # a lost line only means a patch is converted again
            self.journal.flush()
        self.verified.update((r["id"], r) for r in records)
        deleted = []
        for rec in self.pending:
            freed = self.delete_sources(rec["id"]) if self.opts.delete_sources else 0
            if self.opts.delete_sources:
                deleted.append({"kind": "deleted", "id": rec["id"], "bytes": freed})
            self.log(rec, freed / 1e6)
        if deleted:
            self.journal.append(deleted)
            self.journal.flush()  # a lost "deleted" line only repeats a harmless deletion
        self.log_fh.flush()
        self.pending.clear()

    def delete_sources(self, patch_id: str) -> int:
        row = self.rows[patch_id]
        own, s1 = source_files(row, self.opts)
        self.s1_users[row["s1_name"]] -= 1
        if self.s1_users[row["s1_name"]] <= 0:
            own = own + s1
        freed = delete_files(own)
        self.bytes_deleted += freed
        return freed


def _global_stats(opts: TilesOptions, rows, pool, state) -> dict[str, Any] | None:
    """Global per-band mean/std over (a seeded sample of) the train split, computed once."""
    from eolab.core.atomic import write_json

    if opts.normalise != "global":
        return None
    path = opts.out_dir / "normalisation.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("bands") != list(opts.bands) or "mean" not in saved:
            raise ConfigError(f"{path}: statistics for other bands; choose another --out_dir")
        return {k: np.asarray(saved[k]) for k in ("mean", "std", "min", "max")}
    if state.verified:
        raise InputError(f"{path} is missing but {opts.out_dir} already holds converted patches")
    train = [r for r in rows if r["split"] == "train"]
    if not train:
        raise InputError("--normalise global needs patches in the train split; none selected")
    rng = np.random.default_rng(opts.seed)
    if len(train) > opts.stats_patches:
        train = [
            train[i] for i in sorted(rng.choice(len(train), opts.stats_patches, replace=False))
        ]
    chunks = [train[i : i + 16] for i in range(0, len(train), 16)]
    acc = None
    for part in pool.map(_stats_batch, chunks):
        if part is not None:
            acc = part if acc is None else _merge_stats(acc, part)
    if acc is None:
        raise InputError("--normalise global: no train patch could be read for the statistics")
    mean = acc["sum"] / acc["n"]
    std = np.sqrt(np.maximum(acc["sumsq"] / acc["n"] - mean**2, 0.0))
    stats = {"mean": mean, "std": std, "min": acc["min"], "max": acc["max"]}
    write_json(
        path,
        {
            "mode": "global",
            "formula": "v = (x - mean) / std; x = v * std + mean",
            "bands": list(opts.bands),
            "keys": [names.npz_key(b) for b in opts.bands],
            "patches": int(acc["patches"]),
            "split": "train",
            **{k: [float(x) for x in v] for k, v in stats.items()},
        },
    )
    return stats


def convert(opts: TilesOptions, **kwargs: Any) -> dict[str, Any]:
    """`convert_unlocked` holding the output folder's lock: one run per ``out_dir`` at a time (a
    second gets a LockedError naming the first; a killed run's lock is taken over)."""
    from eolab.core.lock import exclusive

    with exclusive(Path(opts.out_dir)):
        return convert_unlocked(opts, **kwargs)


def convert_unlocked(
    opts: TilesOptions,
    *,
    free_gb=None,
    sleep=None,
    notify=None,
) -> dict[str, Any]:
    """Run the whole conversion; returns (and writes) the summary.

    ``free_gb(path) -> float`` and ``sleep(seconds)`` replace the real free-space check and wait
    (tests). Raises DiskSpaceError after writing the summary when the disk guard gives up.
    """
    from eolab.benv2.guard import DiskGuard, free_gb_on
    from eolab.benv2.journal import Journal
    from eolab.benv2.writers import remove_stale_tmp
    from eolab.core.progress import bar as progress_bar
    from eolab.core.progress import write as progress_write

    t0 = time.perf_counter()
    opts.out_dir = Path(opts.out_dir)
    _check_options(opts)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    rows = plan(opts)
    journal = Journal(opts.out_dir / "journal.jsonl", opts.fingerprint())
    state = journal.load()
    remove_stale_tmp(opts.out_dir / "patches")
    _remove_stale_store_tmp(opts.out_dir / "zarr")
    say = notify or progress_write
    guard = DiskGuard(
        opts.out_dir,
        min_free_gb=opts.min_free_gb,
        max_wait_s=opts.max_wait_s,
        poll_s=opts.poll_s,
        free_gb=free_gb or free_gb_on,
        sleep=sleep or time.sleep,
        notify=say,
    )
    selected = {r["patch_id"] for r in rows}
    done = {pid: rec for pid, rec in state.verified.items() if pid in selected}
    # outputs of earlier runs must still be there (cheap size check; CRC before deleting)
    for pid, rec in list(done.items()):
        path = opts.out_dir / rec["npz"]
        if not path.is_file() or path.stat().st_size != rec["npz_bytes"]:
            journal.append([{"kind": "invalid", "id": pid, "reason": "output missing or resized"}])
            del done[pid]
    todo = [r for r in rows if r["patch_id"] not in done]
    cfg = worker_config(opts)
    status = "complete"
    error: DiskSpaceError | None = None
    log_fh = open(opts.out_dir / "log.jsonl", "a", encoding="utf-8")
    bar = None
    timings = {"plan_s": time.perf_counter() - t0}
    try:
        if opts.normalise == "global":
            t = time.perf_counter()
            with _pool(opts, cfg) as stats_pool:
                cfg["global_stats"] = _global_stats(opts, rows, stats_pool, state)
            timings["stats_s"] = time.perf_counter() - t
        with _pool(opts, cfg) as pool:
            t = time.perf_counter()
            _start_workers(pool, opts.workers)
            timings["pool_start_s"] = time.perf_counter() - t
            bar = progress_bar(
                total=len(todo), unit="patch", disable=not opts.progress, mininterval=0.5
            )
            run = _Run(opts, rows, journal, log_fh, guard, bar)
            for pid in done:
                run.s1_users[run.rows[pid]["s1_name"]] -= 1
            t = time.perf_counter()
            for pid in _finish_pending_deletions(run, done, state):
                del done[pid]
                run.s1_users[run.rows[pid]["s1_name"]] += 1
                todo.append(run.rows[pid])
            bar.total = len(todo)
            status, error = _convert_loop(run, pool, todo, done)
            run.flush()
            timings["convert_s"] = time.perf_counter() - t
            bar.close()
            done.update(run.verified)
            store_info = {}
            if opts.store and status != "disk_full":
                t = time.perf_counter()
                store_info = _build_stores(opts, rows, done, pool)
                timings["store_s"] = time.perf_counter() - t
    finally:
        journal.close()
        log_fh.close()
    timings["total_s"] = time.perf_counter() - t0
    summary = _summary(opts, rows, done, run, status, store_info, timings, len(todo))
    from eolab.core.atomic import write_json

    write_json(opts.out_dir / "summary.json", summary)
    if error is not None:
        raise error
    return summary


def raise_for_failures(summary: dict[str, Any], out_dir: Path) -> None:
    """`InputError` when any selected patch was skipped or failed (a rerun retries them)."""
    bad = summary["skipped"] + summary["failed"]
    if not bad:
        return
    reasons = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items())
    raise InputError(
        f"{Path(out_dir) / 'log.jsonl'}: {bad} of {summary['selected']} patches not converted "
        f"({reasons}; the log names each; a rerun retries them)"
    )


def _remove_stale_store_tmp(zroot: Path) -> None:
    """Half-built stores a killed run left (``atomic_path`` temporaries)."""
    import shutil

    if zroot.is_dir():
        for tmp in zroot.glob(".*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()


def _finish_pending_deletions(run: _Run, done, state) -> list[str]:
    """Delete sources whose outputs an earlier run verified but did not get to delete.

    Returns the ids whose output changed since (they are converted again; sources kept)."""
    if not run.opts.delete_sources:
        return []
    invalid = []
    pending = [pid for pid in done if pid not in state.deleted]
    records = []
    for pid in pending:
        rec = done[pid]
        problem = check_npz_file(run.opts.out_dir / rec["npz"], rec["npz_bytes"], rec["crc32"])
        if problem:  # the output changed since it was verified: keep the sources, redo it
            run.journal.append([{"kind": "invalid", "id": pid, "reason": problem}])
            invalid.append(pid)
            continue
        freed = run.delete_sources(pid)
        records.append({"kind": "deleted", "id": pid, "bytes": freed})
    if records:
        run.journal.append(records)
    run.journal.sync()
    run.counts["deleted_pending"] += len(records)
    return invalid


def _convert_loop(run: _Run, pool, todo, done) -> tuple[str, DiskSpaceError | None]:
    """Submit patches in small batches (disk guard before each), collect, group-commit."""
    opts = run.opts
    previous = sum(rec["bytes"] for rec in done.values())
    target = opts.target_gb * GB if opts.target_gb else None
    batches = iter([todo[i : i + opts.batch] for i in range(0, len(todo), max(1, opts.batch))])
    inflight: set = set()
    status, error = "complete", None
    exhausted = False
    while True:
        while not exhausted and status == "complete" and len(inflight) < 4 * max(1, opts.workers):
            if target is not None and previous + run.bytes_written >= target:
                status = "target_reached"
                break
            try:
                run.free_gb = run.guard.ensure_space(on_low=run.flush)
            except DiskSpaceError as exc:
                status, error = "disk_full", exc
                break
            batch = next(batches, None)
            if batch is None:
                exhausted = True
                break
            inflight.add(pool.submit(_run_batch, batch))
        if not inflight:
            break
        finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
        for fut in finished:
            for rec in fut.result():
                run.handle(rec)
        if run.bar is not None:
            run.bar.set_postfix(free_gb=f"{run.free_gb:.1f}", refresh=False)
    return status, error


def _build_stores(opts: TilesOptions, rows, done, pool) -> dict[str, Any]:
    """One sharded Zarr store per split from the verified npz files, and the patch table.

    Every split's shards are written concurrently (one task per shard), each store under a
    temporary name that is renamed into place once complete. A store whose content (patch ids
    and output checksums) is unchanged is kept.
    """
    import contextlib
    import shutil

    from eolab.benv2.store import create_store, write_table
    from eolab.core.atomic import atomic_path

    info = {}
    zroot = opts.out_dir / "zarr"
    zroot.mkdir(exist_ok=True)
    table_rows = []
    builds = []
    with contextlib.ExitStack() as stack:
        for split in names.SPLITS:
            members = [r for r in rows if r["split"] == split and r["patch_id"] in done]
            dest = zroot / f"{split}.zarr"
            if not members:
                if dest.exists():
                    shutil.rmtree(dest)
                continue
            content = _content_id(members, done)
            for i, r in enumerate(members):
                table_rows.append({**r, "index": i, "npz": done[r["patch_id"]]["npz"]})
            rebuilt = not (dest.is_dir() and _store_content_id(dest, opts.store_layout) == content)
            info[split] = {"path": str(dest), "patches": len(members), "rebuilt": rebuilt}
            if not rebuilt:
                continue
            tmp = stack.enter_context(atomic_path(dest))
            create_store(
                tmp,
                n=len(members),
                bands=opts.bands,
                dtype=opts.dtype,
                shard_patches=opts.shard_patches,
                compression=opts.compression,
                with_refmap=opts.refmap_root is not None,
                attrs=_store_attrs(opts, split, content),
                layout=opts.store_layout,
            )
            shard = max(1, min(opts.shard_patches, len(members)))
            jobs = [
                pool.submit(
                    _shard_batch,
                    str(tmp),
                    i,
                    [
                        str(opts.out_dir / done[r["patch_id"]]["npz"])
                        for r in members[i : i + shard]
                    ],
                    list(opts.bands),
                    opts.store_layout,
                )
                for i in range(0, len(members), shard)
            ]
            builds.append((tmp, members, jobs))
        for tmp, members, jobs in builds:
            write_table(tmp, _table_arrays(opts, members, [job.result() for job in jobs]))
    _write_patch_table(opts.out_dir / "patches.parquet", table_rows)
    return info


def _content_id(members, done) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in members:
        rec = done[r["patch_id"]]
        h.update(f"{r['patch_id']}:{rec['crc32']}\n".encode())
    return h.hexdigest()


def _store_content_id(path: Path, layout: str = "dense") -> str | None:
    try:
        attrs = json.loads((path / "zarr.json").read_text())["attributes"]
        if attrs.get("format_version") != format_version(layout):
            return None  # an older store layout is rebuilt
        return attrs.get("content_id")
    except (OSError, KeyError, ValueError):
        return None


def _store_attrs(opts: TilesOptions, split: str, content: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "split": split,
        "normalisation": opts.normalise,
        "resampling": opts.resampling,
        "dtype": opts.dtype,
        "content_id": content,
        "source": "BigEarthNet v2 (reBEN), CDLA-Permissive-1.0",
        "created_by": "eolab benv2 tiles",
    }
    norm = opts.out_dir / "normalisation.json"
    if opts.normalise == "global" and norm.is_file():
        attrs["global_stats"] = json.loads(norm.read_text())
    return attrs


def _table_arrays(opts: TilesOptions, members, shard_stats) -> dict[str, np.ndarray]:
    table = {
        "labels": np.stack([multi_hot(r["labels"], names.LABEL_INDEX) for r in members]),
        "patch_id": np.array([r["patch_id"] for r in members]),
        "s1_name": np.array([r["s1_name"] for r in members]),
        "country": np.array([r["country"] for r in members]),
        "split": np.array([r["split"] for r in members]),
    }
    if opts.normalise == "patch":
        for k in ("min", "max", "mean", "std"):
            table[f"norm_{k}"] = np.concatenate([s[k] for s in shard_stats])
    return table


def _write_patch_table(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eolab.core.atomic import atomic_path

    columns = [
        "patch_id",
        "s1_name",
        "s2v1_name",
        "split",
        "official_split",
        "country",
        "labels",
        "contains_seasonal_snow",
        "contains_cloud_or_shadow",
        "index",
        "npz",
    ]
    table = pa.table({c: [r[c] for r in rows] for c in columns})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _summary(opts, rows, done, run, status, store_info, timings, n_todo) -> dict[str, Any]:
    from eolab.core.provenance import environment

    by_split = Counter(r["split"] for r in rows if r["patch_id"] in done)
    by_country = Counter(r["country"] for r in rows if r["patch_id"] in done)
    converted = run.counts["converted"]
    return {
        "status": status,
        "selected": len(rows),
        "done": len(done),
        "converted_this_run": converted,
        "already_done": len(rows) - n_todo,
        "skipped": run.counts["skipped"],
        "failed": run.counts["failed"],
        "deleted_pending_from_earlier_runs": run.counts["deleted_pending"],
        "failures_by_reason": dict(sorted(run.reasons.items())),
        "done_by_split": {s: by_split.get(s, 0) for s in names.SPLITS},
        "done_by_country": dict(sorted(by_country.items())),
        "bytes_written": run.bytes_written,
        "mb_deleted": round(run.bytes_deleted / 1e6, 3),
        "disk_guard": {"pauses": run.guard.pauses, "waited_s": run.guard.waited_s},
        "elapsed_s": round(timings["total_s"], 3),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        # conversion alone (read, transform, write, verify, journal, delete): no start-up, no store
        "throughput_patches_per_s": round(converted / timings["convert_s"], 3)
        if timings.get("convert_s")
        else None,
        "stores": store_info,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "environment": environment(),
    }


def worker_config(opts: TilesOptions) -> dict[str, Any]:
    """What every conversion worker needs from the options (picklable)."""
    return {
        "out_dir": str(opts.out_dir),
        "s2_root": str(opts.s2_root),
        "s1_root": str(opts.s1_root),
        "refmap_root": str(opts.refmap_root) if opts.refmap_root else None,
        "bands": list(opts.bands),
        "resampling": opts.resampling,
        "normalise": opts.normalise,
        "dtype": opts.dtype,
        "reader": opts.reader,
        "min_s1_coverage": opts.min_s1_coverage,
        "layout": opts.store_layout,
        "read_back": opts.reads_back,
        "durable": opts.delete_sources,
    }
