"""The rico-hdl-style peer of the store: an LMDB of safetensors, one entry per patch.

Keys are patch ids; each value is a safetensors blob with one tensor per band at native
resolution and dtype (the npz key names: ``s2_b2`` (120, 120) uint16, ``s2_b5`` (60, 60),
``s1_vv`` (120, 120) float32, ...), the layout of rico-hdl's BigEarthNet v2 encoder. Reads
upsample and normalise with the compact store's ``Expander`` (per-patch statistics and labels
from the store's table), so both return the same arrays and differ only in how bytes are kept.
Used by ``eolab bench benv2``; needs ``lmdb`` and ``safetensors`` (the ``test`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2.compact import Expander, native_groups
from eolab.benv2.names import npz_key

#: Room for the map (LMDB reserves address space, not disk).
MAP_SIZE = 1 << 40


def build_lmdb(path: Path, npz_paths: list[Path], patch_ids: list[str], bands) -> int:
    """Write the LMDB from native-layout npz files (``--store_layout compact`` outputs);
    returns the bytes of the values written."""
    import lmdb
    from safetensors.numpy import save

    from eolab.benv2.writers import read_npz

    keys = [npz_key(b) for b in bands]
    path.mkdir(parents=True, exist_ok=True)
    total = 0
    env = lmdb.open(str(path), map_size=MAP_SIZE, subdir=True, lock=False)
    try:
        with env.begin(write=True) as txn:
            for pid, npz in zip(patch_ids, npz_paths, strict=True):
                arrays = read_npz(npz)
                blob = save({k: np.ascontiguousarray(arrays[k]) for k in keys})
                txn.put(pid.encode("ascii"), blob)
                total += len(blob)
    finally:
        env.close()
    return total


class LmdbPeer:
    """``peer[i]`` -> (x (bands, 120, 120), labels), ``i`` indexing the patches of ``store``
    (a compact or dense ``PatchStore`` of the same patches: ids, labels, statistics)."""

    def __init__(self, path: Path, store: Any):
        self.path = Path(path)
        self.bands = tuple(store.attrs["bands"])
        self.groups = native_groups(self.bands)
        self.ids = [p.encode("ascii") for p in store.patch_id]
        self.labels = store.labels
        self.stats = _table_stats(store.path)
        self.expander = Expander(
            self.bands,
            resampling=store.attrs["resampling"],
            normalisation=store.attrs["normalisation"],
            dtype=store.attrs["dtype"],
            global_stats=store.attrs.get("global_stats"),
        )
        self.env = None  # opened on first read (and again after ``close``)

    def __len__(self) -> int:
        return len(self.ids)

    def read_batch(self, indices) -> np.ndarray:
        """(len(indices), bands, 120, 120) arrays, equal to the store's."""
        from safetensors.numpy import load

        idx = [int(i) for i in indices]
        natives = {
            g.name: np.empty((len(idx), len(g.bands), g.px, g.px), dtype=g.dtype)
            for g in self.groups
        }
        if self.env is None:
            import lmdb

            self.env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False)
        with self.env.begin() as txn:
            for j, i in enumerate(idx):
                tensors = load(txn.get(self.ids[i]))
                for g in self.groups:
                    for k, key in enumerate(g.keys):
                        natives[g.name][j, k] = tensors[key]
        stats = {k: v[idx] for k, v in self.stats.items()}
        return self.expander.expand(natives, stats)

    def read(self, i: int) -> np.ndarray:
        return self.read_batch([i])[0]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.read(i), self.labels[int(i)]

    def close(self) -> None:
        """Unmap the file (a mapped page survives a page-cache drop); reads reopen it."""
        if self.env is not None:
            self.env.close()
            self.env = None

    def __enter__(self) -> LmdbPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table_stats(store_path: Path) -> dict[str, np.ndarray]:
    import zarr

    group = zarr.open_group(store_path, mode="r")
    return {k: group[f"norm_{k}"][...] for k in ("min", "max") if f"norm_{k}" in group}
