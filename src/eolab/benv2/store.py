"""The training store: one Zarr v3 group per split with sharded patch arrays, and a fast reader.

Layout of ``<out_dir>/zarr/<split>.zarr``:

- ``data``: (patch, band, y, x) float32/float16 normalised values; one chunk per patch, ``S``
  patches per shard (one file per shard), uncompressed by default (named ``x`` before store
  format 2: an array named like a dimension becomes an xarray coordinate, not a variable);
- ``labels``: (patch, label) uint8 multi-hot over the 19 classes;
- ``reference_map``: (patch, y, x) uint16 CLC codes (optional), sharded like ``data``;
- ``patch_id``, ``s1_name``: (patch, char) uint8, the ASCII name zero-padded;
  ``country``, ``split``: (patch,) uint8 codes with CF ``flag_values``/``flag_meanings``
  (tensorstore reads none of zarr-python's string types; ``read_strings`` decodes both forms);
- ``norm_min``/``norm_max``/``norm_mean``/``norm_std``: (patch, band) float64 per-patch
  statistics (``patch`` normalisation; ``global`` statistics are in the group attributes).

The root carries consolidated metadata, so xarray opens it in one read and without warnings.
Any Zarr v3 reader opens it (zarr-python, xarray, tensorstore, xarray-tensorstore).
``PatchStore`` reads a random patch with one ``pread`` using the shard index directly (the
layout is fixed by the sharding spec): zarr-python spends ~1.5 ms of Python per
``array[i]`` here, which alone would cap random reads near 700 patches/s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2.compact import Expander, native_groups, pack, segments, unpack
from eolab.benv2.names import LABELS, PATCH_PX, npz_key

COMPRESSION = ("none", "lz4", "zstd")
#: The pixel array (``x`` in format 1 stores, still read by ``PatchStore``).
PIXELS = "data"
#: The packed native rows of a compact store.
NATIVE = "native"
FORMAT_VERSION = 2
#: ``dense``: pre-upsampled, pre-normalised float32/float16 (format 2); ``compact``: native
#: dtypes and resolutions, expanded at read time (format 3, see ``eolab.benv2.compact``).
LAYOUTS = ("dense", "compact")
COMPACT_FORMAT_VERSION = 3
#: The codec of compact stores when ``--store_compression`` is not given (measured fastest).
COMPACT_DEFAULT_COMPRESSION = "lz4"
#: Table columns with few distinct values, stored as codes; other strings as char arrays.
CATEGORICAL = ("country", "split")
_EMPTY = np.uint64(2**64 - 1)


def format_version(layout: str) -> int:
    """The ``format_version`` attribute a store of this layout carries."""
    return COMPACT_FORMAT_VERSION if layout == "compact" else FORMAT_VERSION


def _compressors(name: str, layout: str = "dense"):
    if name == "none":
        return None
    from zarr.codecs import BloscCodec

    if name not in COMPRESSION:
        raise ValueError(f"unknown store compression {name!r}; expected one of {COMPRESSION}")
    if layout == "compact":  # integer DN: byte shuffle, the fastest levels (measured)
        return BloscCodec(cname=name, clevel=1, shuffle="shuffle")
    return BloscCodec(cname=name, clevel=3 if name == "zstd" else 1, shuffle="bitshuffle")


def create_store(
    path: Path,
    *,
    n: int,
    bands: tuple[str, ...],
    dtype: str,
    shard_patches: int,
    compression: str = "none",
    with_refmap: bool = False,
    attrs: dict[str, Any] | None = None,
    layout: str = "dense",
) -> None:
    """Create the empty arrays of one split's store (``n`` > 0 patches).

    ``dense``: one ``data`` array of ``dtype``; ``compact``: one ``native`` (patch, row) uint16
    array, each row a patch's native groups packed (``compact.pack``), ``dtype`` being the
    dtype reads return.
    """
    import zarr

    group = zarr.open_group(path, mode="w", zarr_format=3)
    shard = max(1, min(shard_patches, n))
    if layout == "compact":
        groups = native_groups(bands)
        row = segments(groups)[-1][1]
        group.create_array(
            NATIVE,
            shape=(n, row),
            chunks=(1, row),
            shards=(shard, row),
            dtype="uint16",
            compressors=_compressors(compression, layout),
            fill_value=0,
            dimension_names=("patch", "packed"),
            attributes={
                "packing": [
                    {"group": g.name, "bands": list(g.bands), "shape": [len(g.bands), g.px, g.px],
                     "dtype": g.dtype, "start": start, "stop": stop}
                    for g, (start, stop) in zip(groups, segments(groups), strict=True)
                ],
                "description": "per patch, the groups' little-endian bytes back to back "
                "(eolab.benv2.compact.unpack)",
            },
            config={"write_empty_chunks": True},
        )  # fmt: skip
    else:
        group.create_array(
            PIXELS,
            shape=(n, len(bands), PATCH_PX, PATCH_PX),
            chunks=(1, len(bands), PATCH_PX, PATCH_PX),
            shards=(shard, len(bands), PATCH_PX, PATCH_PX),
            dtype=dtype,
            compressors=_compressors(compression, layout),
            fill_value=0,
            dimension_names=("patch", "band", "y", "x"),
            config={"write_empty_chunks": True},
        )
    if with_refmap:
        group.create_array(
            "reference_map",
            shape=(n, PATCH_PX, PATCH_PX),
            chunks=(1, PATCH_PX, PATCH_PX),
            shards=(shard, PATCH_PX, PATCH_PX),
            dtype="uint16",
            compressors=_compressors("zstd" if compression == "none" else compression),
            fill_value=0,
            dimension_names=("patch", "y", "x"),
            config={"write_empty_chunks": True},
        )
    group.attrs.update(
        {
            "bands": list(bands),
            "npz_keys": [npz_key(b) for b in bands],
            "labels": list(LABELS),
            "shard_patches": shard,
            "format_version": format_version(layout),
            "layout": layout,
            **(attrs or {}),
        }
    )


def write_shard(
    path: Path, start: int, npz_paths: list[str], bands: tuple[str, ...], layout: str = "dense"
) -> dict[str, np.ndarray]:
    """Copy a shard's worth of npz files into ``data`` (or the native group arrays of a compact
    store) and ``reference_map`` from ``start``.

    Returns the per-patch normalisation statistics of the shard (from the json sidecars), as
    (patches, bands) arrays, for the patch table.
    """
    import zarr

    from eolab.benv2.writers import decode_npz

    keys = [npz_key(b) for b in bands]
    group = zarr.open_group(path, mode="r+")
    arrays = [decode_npz(Path(p).read_bytes()) for p in npz_paths]
    stop = start + len(arrays)
    if layout == "compact":
        group[NATIVE][start:stop] = pack(native_groups(bands), arrays)
    else:
        x = group[PIXELS]
        x[start:stop] = np.stack([np.stack([a[k] for k in keys]) for a in arrays]).astype(x.dtype)
    if "reference_map" in group:
        group["reference_map"][start:stop] = np.stack([a["reference_map"] for a in arrays])
    stats: dict[str, list[list[float]]] = {}
    for p in npz_paths:
        per_band = json.loads(Path(p).with_suffix(".json").read_text())["normalisation"]["bands"]
        for name in ("min", "max", "mean", "std"):
            if all(name in per_band[k] for k in keys):
                stats.setdefault(name, []).append([per_band[k][name] for k in keys])
    return {name: np.asarray(v, dtype=np.float64) for name, v in stats.items()}


def write_table(path: Path, table: dict[str, np.ndarray]) -> None:
    """The small per-patch arrays: labels, names, statistics (each written as one chunk), then
    the consolidated metadata (the store's last write)."""
    import zarr

    group = zarr.open_group(path, mode="r+")
    for name, values in table.items():
        values = np.asarray(values)
        attrs: dict[str, Any] = {}
        dims = ("patch", "label" if name == "labels" else "band")[: values.ndim]
        if values.dtype.kind in "OUT":
            values, attrs = encode_strings(name, values)
            dims = ("patch", f"{name}_char")[: values.ndim]
        arr = group.create_array(
            name,
            shape=values.shape,
            chunks=values.shape,
            dtype=values.dtype,
            dimension_names=dims,
            attributes=attrs,
        )
        arr[...] = values
    consolidate(path)


def consolidate(path: Path) -> None:
    """Consolidated metadata at the root (zarr warns that v3 has no spec for it yet)."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))


def encode_strings(name: str, values: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """A string column as uint8 codes + CF flags (``CATEGORICAL``) or as a zero-padded ASCII
    char array (patch, char)."""
    strings = [str(v) for v in values]
    if name in CATEGORICAL:
        vocabulary = sorted(set(strings))
        index = {v: i for i, v in enumerate(vocabulary)}
        codes = np.array([index[v] for v in strings], dtype=np.uint8)
        return codes, {
            "flag_values": list(range(len(vocabulary))),
            "flag_meanings": " ".join(vocabulary),
        }
    raw = np.array([v.encode("ascii") for v in strings])  # |S<longest>
    chars = raw.view(np.uint8).reshape(len(strings), raw.dtype.itemsize)
    return chars, {"long_name": f"{name} (ASCII, zero-padded)", "encoding": "ascii"}


def read_strings(arr) -> np.ndarray:
    """The strings of a table column in any store format: codes, char arrays or strings."""
    values = np.asarray(arr[...])
    attrs = dict(arr.attrs)
    if values.dtype.kind in "OUT":
        return np.array(values.tolist(), dtype=str)  # StringDType needs no width
    if "flag_meanings" in attrs:
        return np.array(attrs["flag_meanings"].split(), dtype=str)[values]
    width = values.shape[1]
    return np.ascontiguousarray(values).view(f"S{width}").ravel().astype(str)


def open_dataset(path: str | Path):
    """The store as an xarray Dataset with the string columns decoded."""
    import xarray as xr

    ds = xr.open_zarr(path)
    group = _open_group(Path(path))
    for name in ("patch_id", "s1_name", "country", "split"):
        if name in ds.variables:
            ds = ds.drop_vars(name).assign({name: ("patch", read_strings(group[name]))})
    return ds


def _open_group(path: Path):
    import zarr

    return zarr.open_group(path, mode="r")


class ShardedChunks:
    """One array of a store whose chunks hold one patch each, read with one ``pread``.

    Reads the shard index once per shard and a chunk with a single ``os.preadv`` (or ``pread``
    + blosc decode) straight into the caller's array; layouts it does not know (other codecs or
    key encodings) go through zarr-python. File handles are reopened lazily after pickling.
    """

    def __init__(self, group, name: str, path: Path):
        self.path = path
        self.name = name
        self._meta = json.loads((path / name / "zarr.json").read_text())
        self.shape = tuple(self._meta["shape"])
        self.dtype = np.dtype(self._meta["data_type"]).newbyteorder("<")
        self.fast = self._parse_layout()
        self._zarr = None if self.fast else group[name]
        self._fds: dict[int, int] = {}
        self._index: dict[int, np.ndarray] = {}

    def _parse_layout(self) -> bool:
        codecs = self._meta["codecs"]
        encoding = self._meta["chunk_key_encoding"]
        if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
            return False
        if encoding["name"] != "default" or encoding["configuration"].get("separator") != "/":
            return False
        conf = codecs[0]["configuration"]
        inner = conf["codecs"]
        if (
            inner[0]["name"] != "bytes"
            or inner[0]["configuration"].get("endian", "little") != "little"
        ):
            return False
        if len(inner) > 2 or (len(inner) == 2 and inner[1]["name"] != "blosc"):
            return False
        if [c["name"] for c in conf["index_codecs"]] not in (["bytes"], ["bytes", "crc32c"]):
            return False
        self._decompress = len(inner) == 2
        self._index_location = conf.get("index_location", "end")
        self._index_crc = len(conf["index_codecs"]) == 2
        self._shard = self._meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        return conf["chunk_shape"][0] == 1 and list(conf["chunk_shape"][1:]) == list(self.shape[1:])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fds"], state["_index"] = {}, {}
        return state

    def _fd(self, shard: int) -> int:
        fd = self._fds.get(shard)
        if fd is None:
            zeros = ["0"] * (len(self.shape) - 1)
            fd = os.open(self.path / self.name / "c" / str(shard) / Path(*zeros), os.O_RDONLY)
            # random patches: no readahead beyond each chunk (cold reads would fetch neighbours)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            self._fds[shard] = fd
        return fd

    def _shard_index(self, shard: int) -> np.ndarray | None:
        index = self._index.get(shard)
        if index is None:
            size = self._shard * 16 + (4 if self._index_crc else 0)
            try:
                fd = self._fd(shard)
            except FileNotFoundError:
                return None  # a shard never written: all fill values
            if self._index_location == "end":
                offset = os.fstat(fd).st_size - size
            else:
                offset = 0
            raw = os.pread(fd, size, offset)
            index = np.frombuffer(raw[: self._shard * 16], dtype="<u8").reshape(-1, 2)
            self._index[shard] = index
        return index

    def read_into(self, i: int, out: np.ndarray) -> np.ndarray:
        """Patch ``i`` (0 <= i < len) into ``out`` (C-contiguous, ``shape[1:]``, ``dtype``)."""
        if not self.fast:
            out[...] = self._zarr[i]
            return out
        shard, k = divmod(i, self._shard)
        index = self._shard_index(shard)
        if index is None or index[k, 0] == _EMPTY:
            out[...] = 0
            return out
        offset, nbytes = int(index[k, 0]), int(index[k, 1])
        if self._decompress:
            from numcodecs.blosc import decompress

            decompress(os.pread(self._fd(shard), nbytes, offset), out)
        elif os.preadv(self._fd(shard), [out.data.cast("B")], offset) != nbytes:
            raise OSError(f"{self.path}: short read of patch {i} in shard {shard}")
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._index.clear()


class PatchStore:
    """Random access to one split's store: ``store[i]`` -> (x (bands, 120, 120), labels (19,)).

    Dense stores: each patch is one chunk read with one ``pread`` straight into a new array.
    Compact stores: one chunk per native group, upsampled and normalised by
    ``compact.Expander`` (equal to the dense store's arrays). ``read_batch`` reads many
    patches at once (vectorised expansion). Every returned array is writable and owns its
    memory (``torch.from_numpy`` takes it without a warning or a copy). Safe to pickle into
    DataLoader workers. Reads stores of format 1 (pixels in ``x``), 2 (``data``) and 3 (compact).
    """

    def __init__(self, path: str | Path):
        import zarr

        self.path = Path(path)
        group = zarr.open_group(self.path, mode="r")
        self.attrs = dict(group.attrs)
        self.labels = group["labels"][...]
        self.patch_id = read_strings(group["patch_id"])
        self.layout = self.attrs.get("layout", "dense")
        if self.layout == "compact":
            bands = self.attrs["bands"]
            self._groups = native_groups(bands)
            self._chunks = [ShardedChunks(group, NATIVE, self.path)]
            self._expander = Expander(
                bands,
                resampling=self.attrs["resampling"],
                normalisation=self.attrs["normalisation"],
                dtype=self.attrs["dtype"],
                global_stats=self.attrs.get("global_stats"),
            )
            self._stats = {
                k: group[f"norm_{k}"][...] for k in ("min", "max") if f"norm_{k}" in group
            }
            n = self._chunks[0].shape[0]  # one packed row per patch
            self.shape = (n, len(bands), PATCH_PX, PATCH_PX)
            self.dtype = np.dtype(self.attrs["dtype"])
        else:
            self.pixels = PIXELS if PIXELS in group else "x"
            self._chunks = [ShardedChunks(group, self.pixels, self.path)]
            self.shape = self._chunks[0].shape
            self.dtype = self._chunks[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def _fast(self) -> bool:
        """Every array is read with ``pread`` (not through zarr-python)."""
        return all(c.fast for c in self._chunks)

    @property
    def _decompress(self) -> bool:
        return any(c.fast and c._decompress for c in self._chunks)

    def _check(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"patch {i} outside 0..{self.shape[0] - 1} of {self.path}")
        return i

    def read(self, i: int) -> np.ndarray:
        """The (bands, 120, 120) array of patch ``i``."""
        i = self._check(i)
        if self.layout == "compact":
            return self.read_batch([i])[0]
        return self._chunks[0].read_into(i, np.empty(self.shape[1:], dtype=self.dtype))

    def read_batch(self, indices) -> np.ndarray:
        """The (len(indices), bands, 120, 120) array of the patches ``indices``."""
        idx = [self._check(i) for i in indices]
        if self.layout != "compact":
            out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
            for j, i in enumerate(idx):
                self._chunks[0].read_into(i, out[j])
            return out
        chunks = self._chunks[0]
        rows = np.empty((len(idx), *chunks.shape[1:]), dtype=chunks.dtype)
        for j, i in enumerate(idx):
            chunks.read_into(i, rows[j])
        stats = {k: v[idx] for k, v in self._stats.items()}
        return self._expander.expand(unpack(self._groups, rows), stats)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.read(i), self.labels[int(i)]

    def close(self) -> None:
        for chunks in self._chunks:
            chunks.close()

    def __enter__(self) -> PatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
