"""Read amplification of a chunked array: what a reader must decode to return a selection.

A reader of a chunked, compressed array decodes every chunk the selection touches, whole (edge
chunks too: Zarr stores them at full chunk shape). So the bytes decoded follow from chunk
geometry alone — chunks touched × chunk bytes — and ``amplification = decoded / returned``.
The floor a layout sets for any reader is the time to decode exactly those chunks:
``decode_seconds`` times that alone (compressed chunks already in memory, ``threads`` threads).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

DECODE_THREADS = 2


@dataclass(frozen=True)
class ChunkedArray:
    """The geometry of one chunked array: shape, chunk shape, bytes per value."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    itemsize: int

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunks) * self.itemsize


def whole(selection: Sequence[slice], shape: Sequence[int]) -> tuple[slice, ...]:
    """``selection`` with every open end made explicit (``slice(None)`` -> ``slice(0, n)``)."""
    return tuple(slice(*s.indices(n)[:2]) for s, n in zip(selection, shape, strict=True))


def touched_chunks(array: ChunkedArray, selection: Sequence[slice]) -> list[tuple[int, ...]]:
    """Grid coordinates of every chunk that holds part of ``selection`` (step 1 slices)."""
    spans = []
    for s, c in zip(whole(selection, array.shape), array.chunks, strict=True):
        if s.stop <= s.start:
            return []
        spans.append(range(s.start // c, (s.stop - 1) // c + 1))
    return list(itertools.product(*spans))


def decoded_bytes(array: ChunkedArray, selection: Sequence[slice]) -> int:
    """Bytes a reader decodes for ``selection``: chunks touched × bytes of one whole chunk."""
    return len(touched_chunks(array, selection)) * array.chunk_nbytes


def returned_bytes(array: ChunkedArray, selection: Sequence[slice]) -> int:
    """Bytes of the selection itself."""
    sizes = [max(0, s.stop - s.start) for s in whole(selection, array.shape)]
    return math.prod(sizes) * array.itemsize


def ratio(decoded: float | None, returned: float | None) -> float | None:
    """``decoded / returned``; None when either is unknown or nothing was returned."""
    if decoded is None or not returned:
        return None
    return decoded / returned


def decode_seconds(blobs: Sequence[bytes], threads: int = DECODE_THREADS) -> float:
    """Seconds to Blosc-decode ``blobs`` (already in memory) with ``threads`` threads.

    Blosc releases the GIL while it decompresses, so the threads decode in parallel, as a
    reader's decode threads would; Blosc's own threads are left off (one per call)."""
    from numcodecs import blosc

    if not blobs:
        return 0.0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        start = time.perf_counter()
        for _ in pool.map(blosc.decompress, blobs):
            pass
        return time.perf_counter() - start
