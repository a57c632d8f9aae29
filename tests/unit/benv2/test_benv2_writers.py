"""npz encoding/decoding, the journal's torn-line handling, the disk guard, the store reader."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from eolab.benv2.guard import DiskGuard
from eolab.benv2.journal import Journal
from eolab.benv2.writers import decode_npz, encode_npz, remove_stale_tmp, write_atomic
from eolab.core.errors import ConfigError, DiskSpaceError


def _arrays():
    rng = np.random.default_rng(5)
    out = {f"s2_b{i}": rng.random((120, 120), dtype=np.float32) for i in (1, 2, 8)}
    out["s2_b8a"] = rng.random((120, 120)).astype(np.float16)
    out["labels"] = np.array([0, 1, 0, 1], dtype=np.uint8)
    out["reference_map"] = rng.integers(100, 600, (120, 120)).astype(np.uint16)
    out["scalar"] = np.float64(2.5)
    return out


def test_encoded_npz_is_a_valid_npz_equal_to_np_savez_content():
    arrays = _arrays()
    data = encode_npz(arrays)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every member's CRC-32 is right
        assert zf.namelist() == [f"{k}.npy" for k in arrays]
    with np.load(io.BytesIO(data)) as z:
        for key, value in arrays.items():
            assert z[key].dtype == value.dtype and np.array_equal(z[key], value)
    ours = decode_npz(data)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    theirs = decode_npz(buf.getvalue())  # decoding np.savez's own output (zip64 extras)
    for key, value in arrays.items():
        assert ours[key].shape == np.shape(value) and np.array_equal(ours[key], value)
        assert np.array_equal(theirs[key], value)


def test_decode_rejects_a_truncated_file():
    data = encode_npz(_arrays())
    with pytest.raises(zipfile.BadZipFile):
        decode_npz(data[: len(data) // 2])


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a.npz"
    write_atomic(target, b"x" * 10)
    assert target.read_bytes() == b"x" * 10
    stale = tmp_path / ".b.npz.123.tmp"
    stale.write_bytes(b"half")
    assert remove_stale_tmp(tmp_path) == 1 and not stale.exists() and target.exists()


def test_journal_drops_a_torn_last_line_and_checks_options(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, {"bands": ["B02"]})
    assert journal.load().verified == {}
    journal.append([{"kind": "verified", "id": "a", "npz": "a.npz"}])
    journal.append(
        [{"kind": "verified", "id": "b", "npz": "b.npz"}, {"kind": "deleted", "id": "a"}]
    )
    journal.close()
    with open(path, "a") as fh:  # a kill in the middle of an append
        fh.write('{"kind": "verified", "id": "c", "np')
    state = Journal(path, {"bands": ["B02"]}).load()
    assert set(state.verified) == {"a", "b"} and state.deleted == {"a"}
    assert path.read_text().endswith("\n")
    assert all(json.loads(line) for line in path.read_text().splitlines())
    with pytest.raises(ConfigError, match="bands"):
        Journal(path, {"bands": ["B03"]}).load()


def test_disk_guard_waits_boundedly():
    free = iter([0.5, 0.8, 2.0])
    sleeps: list[float] = []
    guard = DiskGuard(
        "/", min_free_gb=1, poll_s=5, max_wait_s=60, free_gb=lambda p: next(free),
        sleep=sleeps.append, notify=lambda m: None,
    )  # fmt: skip
    assert guard.ensure_space() == 2.0 and sleeps == [5, 5] and guard.pauses == 1
    freed = []
    guard = DiskGuard(
        "/", min_free_gb=1, poll_s=7, max_wait_s=20, free_gb=lambda p: 0.2,
        sleep=sleeps.append, notify=lambda m: None,
    )  # fmt: skip
    with pytest.raises(DiskSpaceError, match="for 20 s"):
        guard.ensure_space(on_low=lambda: freed.append(1))
    assert freed == [1] and sleeps[2:] == [7, 7, 6]
