"""The compact layout: bands kept at native dtype and resolution, expanded at read time.

A patch holds one array per native group (``s2_10m`` (4, 120, 120) uint16, ``s2_20m``
(6, 60, 60) uint16, ``s2_60m`` (2, 20, 20) uint16, ``s1`` (2, 120, 120) float32 on the S2 grid),
about a third of the pre-upsampled float32 bytes before compression. The store packs them into
one uint16 row per patch (``pack``; the float32 S1 bytes as uint16 pairs, last, 4-byte aligned)
so that a random patch is one read and one decode (four arrays in four shard files cost four
disk reads per patch with the page cache cold).
``Expander`` turns a batch of such patches into exactly the arrays the dense store holds: the
same float32 operations as ``transform.upsample`` + ``transform.normalise`` in the same order,
so the results are equal bit for bit. With ``nearest`` resampling the normalisation runs on
the native pixels and the result is then replicated into 2x2 / 6x6 blocks (an elementwise
operation commutes with the replication), vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eolab.benv2.names import PATCH_PX, S1_BANDS, S2_BANDS, npz_key
from eolab.benv2.transform import scale_offset, upsample

#: Native groups in store order: name, S2 pixel size (None: S1), pixels per side, dtype.
GROUPS: tuple[tuple[str, int | None, int, str], ...] = (
    ("s2_10m", 10, PATCH_PX, "uint16"),
    ("s2_20m", 20, PATCH_PX // 2, "uint16"),
    ("s2_60m", 60, PATCH_PX // 6, "uint16"),
    ("s1", None, PATCH_PX, "float32"),
)


@dataclass(frozen=True)
class NativeGroup:
    """The bands of one native group: their positions in the output band order."""

    name: str
    bands: tuple[str, ...]
    positions: tuple[int, ...]
    px: int
    dtype: str

    @property
    def keys(self) -> list[str]:
        return [npz_key(b) for b in self.bands]


def native_groups(bands: tuple[str, ...] | list[str]) -> list[NativeGroup]:
    """The non-empty native groups of ``bands`` (each band keeps its place in the output)."""
    out = []
    for name, metres, px, dtype in GROUPS:
        members = [
            (i, b)
            for i, b in enumerate(bands)
            if (b in S1_BANDS if metres is None else S2_BANDS.get(b) == metres)
        ]
        if members:
            positions, names_ = zip(*members, strict=True)
            out.append(NativeGroup(name, tuple(names_), tuple(positions), px, dtype))
    return out


def native_shape(band: str) -> tuple[tuple[int, int], str]:
    """((h, w), dtype) of a band in the compact layout."""
    for g in native_groups((band,)):
        return (g.px, g.px), g.dtype
    raise ValueError(f"unknown band {band!r}")


def segments(groups: list[NativeGroup]) -> list[tuple[int, int]]:
    """(start, stop) of each group in a packed row, in uint16 units (float32 groups last)."""
    out, start = [], 0
    for g in groups:
        n = len(g.bands) * g.px * g.px * np.dtype(g.dtype).itemsize // 2
        out.append((start, start + n))
        start += n
    return out


def pack(groups: list[NativeGroup], arrays: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(patches, row) uint16: each patch's native groups (npz key -> array) back to back."""
    return np.stack(
        [
            np.concatenate(
                [np.stack([a[k] for k in g.keys]).astype(g.dtype).reshape(-1).view("<u2")
                 for g in groups]
            )
            for a in arrays
        ]
    )  # fmt: skip


def unpack(groups: list[NativeGroup], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Group name -> (patches, k, h, w) views of packed ``rows`` (patches, row)."""
    out = {}
    for g, (start, stop) in zip(groups, segments(groups), strict=True):
        part = rows[:, start:stop].view(np.dtype(g.dtype).newbyteorder("<"))
        out[g.name] = part.reshape(len(rows), len(g.bands), g.px, g.px)
    return out


def native_arrays(src: Any, stack: np.ndarray, bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """npz key -> native array of a patch: S2 as read (uint16), S1 as aligned to the S2 grid
    (the float32 rows of the assembled ``stack``)."""
    out = {}
    for i, band in enumerate(bands):
        out[npz_key(band)] = src.s2[band][0] if band in S2_BANDS else stack[i]
    return out


class Expander:
    """Native groups of a batch -> (patches, bands, 120, 120) normalised arrays of ``dtype``."""

    def __init__(
        self,
        bands: tuple[str, ...] | list[str],
        *,
        resampling: str,
        normalisation: str,
        dtype: str,
        global_stats: dict[str, Any] | None = None,
    ):
        self.bands = tuple(bands)
        self.groups = native_groups(self.bands)
        self.resampling = resampling
        self.mode = normalisation
        self.dtype = np.dtype(dtype)
        # normalisation.json as stored in the attributes: mean/std (and min/max) per band
        self.global_stats = {
            k: np.asarray(v, dtype=np.float64)
            for k, v in (global_stats or {}).items()
            if k in ("mean", "std", "min", "max")
        }
        self._fixed: tuple[np.ndarray, np.ndarray] | None = None

    def coefficients(self, stats: dict[str, np.ndarray] | None):
        """float32 (offset, 1/scale), (n, bands) in ``patch`` mode else (1, bands), rounded as
        ``transform.normalise`` rounds them.

        ``stats``: (n, bands) per-patch ``min``/``max`` for ``patch`` normalisation.
        """
        if self.mode != "patch":
            if self._fixed is None:
                scale, offset = scale_offset(self.mode, self.global_stats, len(self.bands))
                self._fixed = (
                    offset.astype(np.float32)[None],
                    (1.0 / scale).astype(np.float32)[None],
                )
            return self._fixed
        scale, offset = scale_offset("patch", stats, len(self.bands))
        return offset.astype(np.float32), (1.0 / scale).astype(np.float32)

    def expand(
        self,
        natives: dict[str, np.ndarray],
        stats: dict[str, np.ndarray] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``natives``: group name -> (n, k, h, w); returns (n, bands, 120, 120)."""
        n = len(next(iter(natives.values())))
        if out is None:
            out = np.empty((n, len(self.bands), PATCH_PX, PATCH_PX), dtype=self.dtype)
        offset, inv = self.coefficients(stats)
        for g in self.groups:
            a = natives[g.name]
            pos = list(g.positions)
            f = PATCH_PX // g.px
            if f > 1 and self.resampling != "nearest":
                self._expand_zoom(a, g, offset, inv, out)
                continue
            norm = np.subtract(a, offset[:, pos, None, None], dtype=np.float32)
            norm *= inv[:, pos, None, None]
            if f > 1:  # columns first (np.repeat), then whole rows: long inner copy loops
                norm = norm.repeat(f, axis=-1)
            for j, b in enumerate(pos):
                if f == 1:
                    out[:, b] = norm[:, j]
                else:
                    view = out[:, b]
                    view.shape = (n, g.px, f, PATCH_PX)  # a view: raises rather than copy
                    view[...] = norm[:, j, :, None, :]
        return out

    def _expand_zoom(self, a, g: NativeGroup, offset, inv, out) -> None:
        """bilinear/cubic: upsample first (as the conversion does), then normalise."""
        up = np.empty((PATCH_PX, PATCH_PX), dtype=np.float32)
        for i in range(len(a)):
            for j, b in enumerate(g.positions):
                upsample(a[i, j], PATCH_PX, self.resampling, out=up)
                k = i if len(offset) > 1 else 0
                norm = np.subtract(up, offset[k, b], dtype=np.float32)
                norm *= inv[k, b]
                out[i, b] = norm
