"""Read amplification from chunk geometry equals a hand count, and equals the chunks zarr reads."""

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec
from zarr.storage import LocalStore

from eolab.lab.amplification import (
    ChunkedArray,
    decode_seconds,
    decoded_bytes,
    ratio,
    returned_bytes,
    touched_chunks,
)
from eolab.lab.patchload import CountingStore

ARRAY = ChunkedArray(shape=(5, 2, 10, 10), chunks=(3, 2, 4, 4), itemsize=2)
# all 5 dates, both bands, rows 3..8, columns 0..3
SELECTION = (slice(None), slice(None), slice(3, 9), slice(0, 4))


def test_touched_chunks_and_bytes_equal_a_hand_count():
    # time chunks 0 (dates 0-2) and 1 (3-5); rows 3..8 -> y chunks 0, 1, 2; columns -> x chunk 0
    hand = [(t, 0, y, 0) for t in (0, 1) for y in (0, 1, 2)]
    assert touched_chunks(ARRAY, SELECTION) == hand
    chunk_bytes = 3 * 2 * 4 * 4 * 2  # edge chunks are stored whole
    assert decoded_bytes(ARRAY, SELECTION) == 6 * chunk_bytes == 1152
    assert returned_bytes(ARRAY, SELECTION) == 5 * 2 * 6 * 4 * 2 == 480
    assert ratio(1152, 480) == pytest.approx(2.4)
    assert ratio(None, 480) is None and ratio(10, 0) is None


def test_an_empty_selection_touches_nothing():
    assert touched_chunks(ARRAY, (slice(None), slice(None), slice(4, 4), slice(0, 4))) == []
    assert decoded_bytes(ARRAY, (slice(None), slice(None), slice(4, 4), slice(0, 4))) == 0


def test_geometry_equals_the_chunks_zarr_reads(tmp_path):
    arr = zarr.create_array(
        LocalStore(tmp_path / "a.zarr"),
        name="data",
        shape=ARRAY.shape,
        chunks=ARRAY.chunks,
        dtype="uint16",
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=2),
        fill_value=0,
    )
    arr[:] = np.random.default_rng(0).integers(1, 1000, ARRAY.shape, dtype="uint16")
    from zarr.api.asynchronous import open_array
    from zarr.core.sync import sync

    # read-only, as the loader opens it (zarr copies a writable store opened with mode "r")
    counter = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
    reader = sync(open_array(store=counter, path="data", mode="r"))  # metadata not counted
    before = counter.requests
    sync(reader.getitem(SELECTION))
    assert counter.requests - before == len(touched_chunks(ARRAY, SELECTION)) == 6


def test_decode_seconds_decodes_the_blobs():
    from numcodecs import blosc

    raw = np.arange(200_000, dtype="uint16").tobytes()
    blobs = [blosc.compress(raw, b"zstd", 3, blosc.SHUFFLE)] * 4
    assert blosc.decompress(blobs[0]) == raw
    assert decode_seconds(blobs) > 0
    assert decode_seconds([]) == 0.0
