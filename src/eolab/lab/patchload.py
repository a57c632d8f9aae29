"""Load the time series of one square patch, every band group, from any format on any storage.

What ML training does: pick a random square of a tile, read all dates of the year. Every loader
returns the same structure — ``{group: uint16 array (time, band, y, x)}`` with groups ``10m``,
``20m``, ``60m`` and bands in ``BAND_GROUPS`` order — so the benchmark can check that all formats
return identical pixels.

Formats: ``safe`` and ``cog`` with windowed rasterio reads (S3 through GDAL ``/vsis3/``),
``zarr`` and ``zarr-sharded`` with zarr's async API (local store, or s3fs on S3), ``zarr-zip``
through :mod:`eolab.zarrio.zipreader` (local file or ranged S3 GETs; nothing is downloaded whole).

A loader's ``open()`` does what a training data loader does once (the catalog: product list and
band files, COG listing, zip central directory, S3 clients); ``load(patch)`` does the per-sample
work and is what the benchmark times. The SAFE catalog always comes from the network copy's
metadata (as in the reference: it emulates a catalog), so SAFE on S3 costs only the JP2 reads.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import glob
import json
import math
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from zarr.storage import WrapperStore

from eolab.core.errors import ConfigError, InputError
from eolab.lab import formats
from eolab.lab.amplification import ChunkedArray, decoded_bytes
from eolab.lab.region import Region
from eolab.lab.staging import Dataset
from eolab.sentinel2.listing import cog_items
from eolab.sentinel2.safe import BAND_GROUPS, read_safe
from eolab.zarrio.shardview import ShardedAsChunks, base_store, close_s3_session

GROUPS = tuple(BAND_GROUPS)
DEFAULT_PATCH_M = 5100
DEFAULT_ALIGN_M = 60


# --- geometry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The pixel grid of one band group: upper-left corner, pixel size (m), size (px)."""

    ulx: float
    uly: float
    res: float
    width: int
    height: int

    def window(self, patch: Patch) -> tuple[int, int, int]:
        """(row, col, size) in pixels of ``patch`` on this grid; the patch must align to it."""
        col = (patch.x_min - self.ulx) / self.res
        row = (self.uly - patch.y_max) / self.res
        size = patch.size / self.res
        values = (row, col, size)
        if any(abs(v - round(v)) > 1e-6 for v in values):
            raise InputError(f"patch {patch} does not align to the {self.res} m grid")
        row, col, size = (round(v) for v in values)
        if row < 0 or col < 0 or row + size > self.height or col + size > self.width:
            raise InputError(f"patch {patch} is outside the {self.width}x{self.height} px grid")
        return row, col, size

    def same_as(self, other: Grid, tol: float = 1e-6) -> bool:
        return (
            abs(self.ulx - other.ulx) < tol
            and abs(self.uly - other.uly) < tol
            and abs(self.res - other.res) < tol
            and (self.width, self.height) == (other.width, other.height)
        )


@dataclass(frozen=True)
class Patch:
    """A square in the tile's CRS: left edge, top edge, side (m)."""

    x_min: float
    y_max: float
    size: float

    def to_json(self) -> list[float]:
        return [self.x_min, self.y_max, self.size]


def coarsest(grids: dict[str, Grid]) -> Grid:
    """The grid with the largest pixels (patches align to it)."""
    return max(grids.values(), key=lambda g: g.res)


def patch_geometry(grids: dict[str, Grid], size_m: float, align_m: float) -> tuple[float, float]:
    """The side and corner step (m) actually used.

    The side is ``size_m`` rounded down to whole pixels of the coarsest group, and at most half
    the tile (scaled-down fixtures are small tiles), but at least one pixel; corners lie on
    multiples of ``align_m`` and of that pixel. Full-size tiles keep 5100 m (510/255/85 px).
    """
    coarse = max(g.res for g in grids.values())
    grid = coarsest(grids)
    half = min(grid.width, grid.height) // 2
    pixels = max(1, min(math.floor(size_m / coarse + 1e-9), half))
    align = math.lcm(round(align_m), round(coarse)) if coarse == round(coarse) else coarse
    return float(pixels * coarse), float(align)


def _steps(low: float, high: float, align: float) -> tuple[int, int]:
    """The first and last multiple k of ``align`` with low <= k * align <= high."""
    eps = 1e-6
    return math.ceil(low / align - eps), math.floor(high / align + eps)


def random_patches(
    grids: dict[str, Grid],
    count: int,
    seed: int,
    size_m: float = DEFAULT_PATCH_M,
    align_m: float = DEFAULT_ALIGN_M,
    region: Region | None = None,
) -> list[Patch]:
    """``count`` seeded random squares inside the tile, or inside ``region`` of it, corners
    aligned (see patch_geometry)."""
    size, align = patch_geometry(grids, size_m, align_m)
    grid = coarsest(grids)
    width_m, height_m = grid.width * grid.res, grid.height * grid.res
    if size > min(width_m, height_m):
        raise InputError(f"patch of {size} m does not fit the {width_m} m tile")
    x1, y1, x2, y2 = (region or Region()).on(grid)
    # corner steps k (x = ulx + k * align, y = uly - k * align) that keep the square in the region
    kx = _steps(x1 - grid.ulx, x2 - size - grid.ulx, align)
    ky = _steps(grid.uly - y1, grid.uly - y2 - size, align)
    if kx[0] > kx[1] or ky[0] > ky[1]:
        raise ConfigError(
            f"region x1={x1} y1={y1} x2={x2} y2={y2}: no {size} m patch with corners on "
            f"multiples of {align} m from the tile corner ({grid.ulx}, {grid.uly}) fits in it"
        )
    rng = np.random.default_rng(seed)
    return [
        Patch(
            grid.ulx + align * int(rng.integers(kx[0], kx[1] + 1)),
            grid.uly - align * int(rng.integers(ky[0], ky[1] + 1)),
            size,
        )
        for _ in range(count)
    ]


# --- byte accounting ---------------------------------------------------------------------------


def process_rchar() -> int | None:
    """Bytes this process has passed through read()/pread() (local files; not sockets)."""
    try:
        with open("/proc/self/io", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@functools.cache
def _gdal_lib() -> Any:
    """The libgdal that rasterio loaded (for its network statistics), or None."""
    import rasterio

    pattern = os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*.so*")
    candidates = glob.glob(pattern)
    try:
        lib = ctypes.CDLL(candidates[0]) if candidates else ctypes.CDLL("libgdal.so")
        lib.VSINetworkStatsGetAsSerializedJSON.restype = ctypes.c_void_p
        lib.VSINetworkStatsGetAsSerializedJSON.argtypes = [ctypes.c_void_p]
        lib.VSIFree.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib  # the statistics are switched on by eolab.core.s3.gdal_s3_env


def gdal_network_bytes() -> int | None:
    """Bytes GDAL's ``/vsis3/`` has downloaded in this process so far, or None where GDAL's
    network statistics are unavailable."""
    lib = _gdal_lib()
    if lib is None:
        return None
    ptr = lib.VSINetworkStatsGetAsSerializedJSON(None)
    if not ptr:
        return None
    try:
        stats = json.loads(ctypes.string_at(ptr).decode())
    finally:
        lib.VSIFree(ptr)
    methods = stats.get("methods", {})
    return int(sum(m.get("downloaded_bytes", 0) for m in methods.values()))


# --- loaders -----------------------------------------------------------------------------------


class Loader:
    """Base: ``open()`` once, ``load(patch)`` per sample, ``close()``; reports bytes read."""

    format = ""
    bytes_method = "rchar"

    def __init__(self, storage: str, workers: int = 8) -> None:
        self.storage = storage
        self.workers = workers
        self.grids: dict[str, Grid] = {}

    def open(self) -> Loader:
        return self

    def load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        """The patch's pixels, all dates or the dates in ``times`` (a slice of the time axis)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def bytes_decoded(self, patch: Patch, times: slice | None = None) -> int | None:
        """Bytes of the chunks a load of ``patch`` decodes (None where the format's block
        geometry is not known: SAFE, COG)."""
        return None

    def needed_chunks(self, patch: Patch, times: slice | None = None) -> list[bytes] | None:
        """The compressed chunks a load of ``patch`` decodes, read into memory (None where not
        known)."""
        return None

    # byte accounting: local reads through rchar; S3 loaders override
    def bytes_mark(self) -> Any:
        return process_rchar()

    def bytes_since(self, mark: Any) -> int | None:
        now = process_rchar()
        return None if now is None or mark is None else now - mark

    def __enter__(self) -> Loader:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EnvPool:
    """A thread pool whose threads each hold a rasterio.Env (GDAL options and S3 session).

    The options are thread-local, so GDAL must not start threads of its own that read files
    (JP2OpenJPEG decodes multi-tile windows in worker threads that would miss the S3
    credentials): the Envs set ``GDAL_NUM_THREADS=1`` and this pool is the parallelism.
    """

    def __init__(self, workers: int, env_factory: Callable[[], Any]) -> None:
        self._envs: list[Any] = []
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, workers), initializer=self._enter, initargs=(env_factory,)
        )

    def _enter(self, env_factory: Callable[[], Any]) -> None:
        env = env_factory()
        env.__enter__()
        with self._lock:
            self._envs.append(env)

    def map(self, func: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(func, items))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _local_env() -> Any:
    import rasterio

    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_NUM_THREADS="1")


class _RasterioLoader(Loader):
    """Shared by SAFE and COG: files opened per load, windowed reads in a thread pool."""

    def __init__(
        self, ds: Dataset, storage: str, s3: Any = None, s3_prefix: str = "", workers: int = 8
    ) -> None:
        super().__init__(storage, workers)
        self.ds = ds
        self.s3 = s3
        self.s3_prefix = s3_prefix.strip("/")
        self._pool: _EnvPool | None = None
        self.bytes_method = "gdal-network-stats" if s3 is not None else "rchar"

    def _open_pool(self) -> None:
        if self.s3 is not None:
            _gdal_lib()  # enables GDAL's network statistics before the first request
            # No /vsicurl/ region cache across loads: what a file cached is dropped when it
            # closes, so every load reads S3 (GDAL's VSICurlClearCache is not thread-safe).
            factory = functools.partial(
                self.s3.gdal_env,
                CPL_VSIL_NETWORK_STATS_ENABLED="YES",
                CPL_VSIL_CURL_NON_CACHED=self.s3.vsi_path(self.s3_prefix),
                GDAL_NUM_THREADS="1",
            )
        else:
            factory = _local_env
        self._pool = _EnvPool(self.workers, factory)

    def path(self, rel: str) -> str:
        """Where GDAL opens a file of the dataset on this loader's storage."""
        if self.s3 is not None:
            key = f"{self.s3_prefix}/{rel}" if self.s3_prefix else rel
            return self.s3.vsi_path(key)
        return str(self.ds.root / rel)

    def _read(self, job: tuple[str, Grid | None, Patch]) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        rel, grid, patch = job
        with rasterio.open(self.path(rel)) as src:
            t = src.transform
            own = Grid(t.c, t.f, t.a, src.width, src.height)
            if grid is not None and not own.same_as(grid):
                raise InputError(f"{self.path(rel)}: grid {own} differs from the catalog's {grid}")
            row, col, size = own.window(patch)
            return src.read(window=Window(col, row, size, size))

    def bytes_mark(self) -> Any:
        # GDAL's counters are process-wide and loads run one at a time: use differences (a
        # reset would also reset GDAL's "enabled" flag, which worker threads then miss).
        if self.s3 is not None:
            return gdal_network_bytes()
        return super().bytes_mark()

    def bytes_since(self, mark: Any) -> int | None:
        if self.s3 is not None:
            now = gdal_network_bytes()
            return None if now is None or mark is None else now - mark
        return super().bytes_since(mark)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class SafeLoader(_RasterioLoader):
    """SAFE: one JP2 per band and date; the catalog (band files, grids) from the network copy."""

    format = "safe"

    def __init__(
        self,
        ds: Dataset,
        storage: str,
        catalog_root: Path | None = None,
        s3: Any = None,
        s3_prefix: str = "",
        workers: int = 8,
    ) -> None:
        super().__init__(ds, storage, s3, s3_prefix, workers)
        self.catalog_root = Path(catalog_root or ds.root)
        self.bands: list[dict[str, str]] = []  # per date: band -> relative JP2 path

    def open(self) -> SafeLoader:
        from eolab.sentinel2.products import usable_products

        manifest = self.catalog_root / self.ds.entry
        for i, item in enumerate(usable_products(manifest)):
            product = read_safe(manifest.parent / item["path"])
            if i == 0:
                for group in GROUPS:
                    geo = product.geoposition(group)
                    self.grids[group] = Grid(geo.ulx, geo.uly, geo.xdim, geo.ncols, geo.nrows)
            self.bands.append(
                {
                    band: product.band_path(band).relative_to(manifest.parent).as_posix()
                    for bands in BAND_GROUPS.values()
                    for band in bands
                }
            )
        if not self.bands:
            raise InputError(f"{manifest}: no products")
        self._open_pool()
        return self

    def load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        dates = self.bands[times or slice(None)]
        jobs = [
            (paths[band], self.grids[group], patch)
            for paths in dates
            for group, bands in BAND_GROUPS.items()
            for band in bands
        ]
        blocks = iter(self._pool.map(self._read, jobs))
        out: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
        for _ in dates:
            for group, bands in BAND_GROUPS.items():
                out[group].append(np.concatenate([next(blocks) for _ in bands]))
        return {g: np.stack(v) for g, v in out.items()}


class CogLoader(_RasterioLoader):
    """COG: one multi-band file per group and date; windowed reads of all bands at once."""

    format = "cog"

    def __init__(
        self,
        ds: Dataset,
        storage: str,
        s3: Any = None,
        s3_prefix: str = "",
        workers: int = 8,
        s3_client: Any = None,
    ) -> None:
        super().__init__(ds, storage, s3, s3_prefix, workers)
        self.s3_client = s3_client
        self.items: list[dict[str, Any]] = []

    def open(self) -> CogLoader:
        if self.s3 is not None:
            key = f"{self.s3_prefix}/{self.ds.entry}" if self.s3_prefix else self.ds.entry
            client = self.s3_client or self.s3.client()
            body = client.get_object(Bucket=self.s3.bucket, Key=key)["Body"].read()
            self.items = cog_items(f"s3://{self.s3.bucket}/{key}", body.decode())
        else:
            self.items = cog_items(self.ds.entry_path)
        if not self.items:
            raise InputError(f"{self.ds.entry_path}: no COGs listed")
        self._open_pool()
        first = self.items[0]
        grids = self._pool.map(self._grid, [first[g] for g in GROUPS])
        self.grids = dict(zip(GROUPS, grids, strict=True))
        return self

    def _grid(self, rel: str) -> Grid:
        import rasterio

        with rasterio.open(self.path(rel)) as src:
            t = src.transform
            return Grid(t.c, t.f, t.a, src.width, src.height)

    def load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        items = self.items[times or slice(None)]
        jobs = [(item[g], self.grids[g], patch) for item in items for g in GROUPS]
        blocks = iter(self._pool.map(self._read, jobs))
        out: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
        for _ in items:
            for group in GROUPS:
                out[group].append(next(blocks))
        return {g: np.stack(v) for g, v in out.items()}


class CountingStore(WrapperStore):
    """Wraps a zarr store and counts the bytes and requests it serves (any storage)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.nbytes = 0
        self.requests = 0
        self._count_lock = threading.Lock()

    def _count(self, buffers: Iterable[Any]) -> None:
        with self._count_lock:
            for buf in buffers:
                self.requests += 1
                if buf is not None:
                    self.nbytes += len(buf)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        self._count([buf])
        return buf

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
        bufs = await self._store.get_partial_values(prototype, key_ranges)
        self._count(bufs)
        return bufs


class ZarrLoader(Loader):
    """Zarr v3 cube (plain, sharded or zipped): all groups read concurrently with zarr's async
    API; group and array metadata are opened per load, like a stateless data loader. Sharded
    arrays are read through :class:`eolab.zarrio.shardview.ShardedAsChunks` (each inner chunk one
    concurrent ranged read, shard indexes kept for the loader's lifetime)."""

    bytes_method = "store"

    def __init__(
        self, fmt: str, store: Any, tile: str, year: int, storage: str, describe: str = ""
    ) -> None:
        super().__init__(storage)
        self.format = fmt
        self.counter = CountingStore(store)  # what storage served (cache hits excluded)
        self.store = ShardedAsChunks(self.counter)
        self.concurrency = 64
        self.path = f"{tile}/{year}"
        self.describe = describe or str(store)
        #: per group: geometry of ``data`` (inner chunks when sharded) and its chunk keys
        self.arrays: dict[str, ChunkedArray] = {}
        self._chunk_key: dict[str, Callable[[tuple[int, ...]], str]] = {}

    def open(self) -> ZarrLoader:
        import zarr

        root = zarr.open_group(self.store, mode="r", path=self.path)
        for group in GROUPS:
            try:
                sub = root[group]
            except KeyError as exc:
                raise InputError(f"{self.describe}: no group {self.path}/{group}") from exc
            x, y = sub["x"][:], sub["y"][:]
            res = float(x[1] - x[0]) if len(x) > 1 else float(abs(y[0] - y[1]))
            self.grids[group] = Grid(
                float(x[0]) - res / 2, float(y[0]) + res / 2, res, len(x), len(y)
            )
            data = sub["data"]  # seen through ShardedAsChunks: inner chunks, inner codecs
            self.arrays[group] = ChunkedArray(data.shape, data.chunks, data.dtype.itemsize)
            self._chunk_key[group] = data.metadata.encode_chunk_key
        return self

    def _selection(self, group: str, patch: Patch, times: slice | None) -> tuple[slice, ...]:
        row, col, size = self.grids[group].window(patch)
        return (times or slice(None), slice(None), slice(row, row + size), slice(col, col + size))

    def bytes_decoded(self, patch: Patch, times: slice | None = None) -> int | None:
        return sum(decoded_bytes(self.arrays[g], self._selection(g, patch, times)) for g in GROUPS)

    def needed_chunks(self, patch: Patch, times: slice | None = None) -> list[bytes] | None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        from eolab.lab.amplification import touched_chunks

        keys = [
            f"{self.path}/{g}/data/{self._chunk_key[g](coords)}"
            for g in GROUPS
            for coords in touched_chunks(self.arrays[g], self._selection(g, patch, times))
        ]

        async def fetch() -> list[Any]:
            proto = default_buffer_prototype()
            return await asyncio.gather(*(self.store.get(k, proto) for k in keys))

        # chunks never written (all fill value) are not decoded by any reader either
        return [buf.to_bytes() for buf in sync(fetch()) if buf is not None]

    async def _load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        from zarr.api.asynchronous import open_array

        async def one(group: str) -> np.ndarray:
            arr = await open_array(store=self.store, path=f"{self.path}/{group}/data", mode="r")
            return await arr.getitem(self._selection(group, patch, times))

        arrays = await asyncio.gather(*(one(g) for g in GROUPS))
        return dict(zip(GROUPS, arrays, strict=True))

    def load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        import zarr
        from zarr.core.sync import sync

        # Every chunk of every group in flight at once (zarr's default is 10 requests): on S3
        # a patch is latency-bound, locally the decode threads are the limit anyway.
        with zarr.config.set({"async.concurrency": self.concurrency}):
            return {g: np.asarray(a) for g, a in sync(self._load(patch, times)).items()}

    def bytes_mark(self) -> Any:
        return self.counter.nbytes

    def bytes_since(self, mark: Any) -> int | None:
        return self.counter.nbytes - mark

    def close(self) -> None:
        self.store.close()
        close_s3_session(self.store)


class XarrayZarrLoader(ZarrLoader):
    """The reference's way, as a baseline: ``xarray.open_zarr(..).isel(..).load()`` with dask,
    one group after another, opened per load."""

    def _load_sync(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        import xarray as xr

        out = {}
        for group in GROUPS:
            row, col, size = self.grids[group].window(patch)
            ds = xr.open_zarr(
                self.store,
                group=f"{self.path}/{group}",
                chunks={},
                consolidated=False,
                zarr_format=3,
                mask_and_scale=False,
            )
            sel = ds["data"].isel(
                time=times or slice(None), y=slice(row, row + size), x=slice(col, col + size)
            )
            out[group] = sel.load().values
        return out

    def load(self, patch: Patch, times: slice | None = None) -> dict[str, np.ndarray]:
        return self._load_sync(patch, times)


@dataclass(frozen=True)
class _Source:
    """Where a loader reads: the local dataset, or its upload under ``prefix`` on S3."""

    fmt: str
    storage: str
    ds: Dataset
    s3: Any
    prefix: str
    workers: int

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @property
    def where(self) -> str:
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{self.key(self.ds.entry)}"
        return str(self.ds.entry_path)


def _safe_loader(src: _Source, tile, year, catalog_root, baseline) -> Loader:
    return SafeLoader(src.ds, src.storage, catalog_root, src.s3, src.prefix, src.workers)


def _cog_loader(src: _Source, tile, year, catalog_root, baseline) -> Loader:
    return CogLoader(src.ds, src.storage, src.s3, src.prefix, src.workers)


def _zarr_loader(src: _Source, tile, year, catalog_root, baseline, store: Any = None) -> Loader:
    cls = XarrayZarrLoader if baseline else ZarrLoader
    store = base_store(src.where, src.s3) if store is None else store
    return cls(src.fmt, store, tile, year, src.storage, describe=src.where)


def _zip_loader(src: _Source, tile, year, catalog_root, baseline) -> Loader:
    from eolab.zarrio.zipreader import S3Source, ZipRangeStore, ZipReader

    if src.s3 is not None:
        client = src.s3.client(max(32, src.workers))
        reader = ZipReader(S3Source(client, src.s3.bucket, src.key(src.ds.entry)))
    else:
        reader = ZipReader.open(src.ds.entry_path)
    store = ZipRangeStore(reader, workers=max(16, src.workers))
    return _zarr_loader(src, tile, year, catalog_root, baseline, store)


#: The loader of each `eolab.lab.formats.Format.loader` kind.
_LOADERS: dict[str, Callable[..., Loader]] = {
    "safe": _safe_loader,
    "cog": _cog_loader,
    "zarr": _zarr_loader,
    "zip": _zip_loader,
}


def open_loader(
    fmt: str,
    storage: str,
    ds: Dataset,
    tile: str,
    year: int,
    *,
    s3: Any = None,
    s3_prefix: str = "",
    catalog_root: Path | None = None,
    workers: int = 8,
    baseline: bool = False,
) -> Loader:
    """An opened loader for ``fmt`` on ``storage``.

    ``ds`` is the dataset on local storage (network or temp copy). For ``storage == "s3"``
    pass ``s3`` (an :class:`eolab.core.s3.S3Access`) and the key prefix the dataset was
    uploaded under; ``ds`` then only supplies relative paths. ``baseline`` gives the
    xarray/dask reader instead of eolab's (Zarr formats only).
    """
    on_s3 = storage == "s3"
    if on_s3 and s3 is None:
        raise InputError(f"{fmt} on S3: no S3 access given")
    kind = formats.get(fmt).loader
    src = _Source(fmt, storage, ds, s3 if on_s3 else None, s3_prefix.strip("/"), workers)
    return _LOADERS[kind](src, tile, year, catalog_root, baseline).open()
