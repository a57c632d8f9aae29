"""The BigEarthNet v2 training store as a map-style dataset, items shaped like the cube's.

Reads ``<out_dir>/zarr/<split>.zarr`` through :class:`eolab.benv2.store.PatchStore` (one
``pread`` per patch); the small per-patch tables (country, reference maps) through zarr. One
item: ``image`` (band, 120, 120) normalised values as stored (float32/float16, bands as
``dataset.bands``), ``labels`` (19,) uint8 multi-hot, optional ``reference_map`` (120, 120)
uint16 CLC codes, ``patch_id``, ``country``, ``key`` and ``index``.

Opened lazily per process, like :class:`eolab.train.dataset.PatchSeriesDataset`, so the same
DataLoader recipe (sampler, workers, ranks) covers both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eolab.benv2.store import read_strings
from eolab.core.errors import InputError


def store_path(out_dir: str | Path, split: str) -> Path:
    """The store of ``split`` under a converter's ``--out_dir`` (or ``out_dir`` if it is one)."""
    out_dir = Path(out_dir)
    if out_dir.suffix == ".zarr":
        return out_dir
    return out_dir / "zarr" / f"{split}.zarr"


class Benv2Dataset:
    """``dataset[i]`` -> one patch of a split's store, optionally only some countries."""

    def __init__(
        self,
        out_dir: str | Path,
        split: str = "train",
        countries: Sequence[str] | None = None,
        reference_maps: bool = False,
    ) -> None:
        import zarr

        self.path = store_path(out_dir, split)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no BigEarthNet v2 store for split {split!r}")
        self.split = split
        self.reference_maps = reference_maps
        group = zarr.open_group(self.path, mode="r")
        self.country = read_strings(group["country"])
        self.patch_id = read_strings(group["patch_id"])
        self.bands = tuple(dict(group.attrs).get("bands", ()))
        if reference_maps and "reference_map" not in group:
            raise InputError(f"{self.path}: no reference_map array (converted without one)")
        rows = np.arange(len(self.patch_id))
        if countries:
            unknown = sorted(set(countries) - set(self.country))
            if unknown:
                raise InputError(
                    f"{self.path}: no patches from {unknown} (has {sorted(set(self.country))})"
                )
            rows = rows[np.isin(self.country, list(countries))]
        self.rows = rows
        self._pid = os.getpid()
        self._store: Any = None
        self._refmap: Any = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"], state["_refmap"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def _open(self) -> Any:
        if self._pid != os.getpid():  # forked: the parent's file descriptors are not ours
            self._store, self._refmap, self._pid = None, None, os.getpid()
        if self._store is None:
            from eolab.benv2.store import PatchStore

            self._store = PatchStore(self.path)
            if self.reference_maps:
                import zarr

                self._refmap = zarr.open_group(self.path, mode="r")["reference_map"]
        return self._store

    @property
    def labels(self) -> np.ndarray:
        """Multi-hot labels (patch, 19) of the selected patches."""
        return np.asarray(self._open().labels)[self.rows]

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        store = self._open()
        image, labels = store[row]
        item: dict[str, Any] = {
            "image": np.array(image),  # a writable copy whatever the store hands out
            "labels": np.array(labels),
            "patch_id": str(self.patch_id[row]),
            "country": str(self.country[row]),
            "key": f"{self.split}/{self.patch_id[row]}",
            "index": int(i),
        }
        if self._refmap is not None:
            item["reference_map"] = np.asarray(self._refmap[row])
        return item

    def close(self) -> None:
        if self._store is not None and self._pid == os.getpid():
            self._store.close()
        self._store, self._refmap = None, None

    def __enter__(self) -> Benv2Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
