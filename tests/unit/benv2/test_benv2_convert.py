"""``eolab benv2 tiles`` end to end on the generated fixture: outputs, store, resume, faults,
source deletion, disk guard, target size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import zarr

from eolab.benv2.convert import TilesOptions, convert
from eolab.benv2.names import (
    ALL_BANDS,
    LABELS,
    S2_BANDS,
    npz_key,
    refmap_path,
    s1_band_path,
    s1_patch_dir,
    s2_band_path,
    s2_patch_dir,
)
from eolab.benv2.store import PatchStore, read_strings
from eolab.benv2.transform import denormalise
from eolab.benv2.writers import read_npz
from eolab.core.errors import ConfigError, DiskSpaceError


def _opts(root: Path, out: Path, **kw) -> TilesOptions:
    return TilesOptions.for_root(
        root, out, **{"workers": 2, "progress": False, "shard_patches": 4, **kw}
    )


@pytest.fixture()
def fixture_copy(benv2_root, tmp_path) -> Path:
    """A private copy of the fixture (tests that delete or damage sources)."""
    return Path(shutil.copytree(benv2_root, tmp_path / "src"))


@pytest.fixture(scope="module")
def converted(benv2_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiles")
    summary = convert(_opts(benv2_root, out))
    return out, summary


def _meta(root: Path):
    return pq.read_table(root / "metadata.parquet").to_pandas()


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_outputs_restore_the_source_pixels(converted, benv2_root):
    out, summary = converted
    meta = _meta(benv2_root)
    assert summary["status"] == "complete" and summary["done"] == len(meta) == 16
    assert summary["done_by_split"] == meta.split.value_counts().to_dict()
    assert summary["done_by_country"] == meta.country.value_counts().sort_index().to_dict()
    for row in meta.head(3).itertuples():
        npz = out / "patches" / row.split / row.patch_id.rsplit("_", 2)[0] / f"{row.patch_id}.npz"
        side = json.loads(npz.with_suffix(".json").read_text())
        arrays = read_npz(npz)
        keys = [npz_key(b) for b in ALL_BANDS]
        assert set(arrays) == {*keys, "labels", "reference_map"}
        assert {"id", "country", "split", "height", "width", "dates", "labels"} <= set(side)
        assert (side["id"], side["country"], side["split"]) == (
            row.patch_id,
            row.country,
            row.split,
        )
        assert side["labels"] == list(row.labels)
        stack = np.stack([arrays[k] for k in keys])
        assert stack.dtype == np.float32 and stack.min() >= 0 and stack.max() <= 1
        stats = {
            k: np.array([side["normalisation"]["bands"][key][k] for key in keys])
            for k in ("min", "max")
        }
        restored = denormalise(stack, "patch", stats)
        for i, band in enumerate(ALL_BANDS):
            if band in S2_BANDS:
                path = s2_band_path(benv2_root / "BigEarthNet-S2", row.patch_id, band)
            else:
                path = s1_band_path(benv2_root / "BigEarthNet-S1", row.s1_name, band)
            with rasterio.open(path) as ds:
                source = ds.read(1)
            f = 120 // source.shape[0]
            if band in S2_BANDS:  # nearest: every f-th pixel is the source pixel, exactly
                assert np.array_equal(np.rint(restored[i, ::f, ::f]), source), band
            else:
                assert np.allclose(restored[i], source, atol=1e-4), band
        with rasterio.open(refmap_path(benv2_root / "Reference_Maps", row.patch_id)) as ds:
            assert np.array_equal(arrays["reference_map"], ds.read(1))
        hot = [LABELS[i] for i in np.flatnonzero(arrays["labels"])]
        assert sorted(hot) == sorted(row.labels)


def test_store_per_split_matches_the_npz_files(converted, benv2_root):
    out, summary = converted
    table = pq.read_table(out / "patches.parquet").to_pandas()
    assert len(table) == 16 and table.patch_id.is_unique
    for split, group in table.groupby("split"):
        path = out / "zarr" / f"{split}.zarr"
        z = zarr.open_group(path, mode="r")
        assert z["data"].shape == (len(group), 14, 120, 120)
        assert z["data"].shards == (min(4, len(group)), 14, 120, 120)
        assert list(read_strings(z["patch_id"])) == sorted(group.patch_id)
        with PatchStore(path) as store:
            assert store._fast and len(store) == len(group)
            for row in group.itertuples():
                arrays = read_npz(out / row.npz)
                x, labels = store[row.index]
                expected = np.stack([arrays[npz_key(b)] for b in ALL_BANDS])
                assert np.array_equal(x, expected)
                assert np.array_equal(z["data"][row.index], expected)  # zarr-python agrees
                assert np.array_equal(labels, arrays["labels"])
                assert np.array_equal(z["reference_map"][row.index], arrays["reference_map"])
                assert read_strings(z["country"])[row.index] == row.country
                assert x.flags.writeable and x.flags.owndata  # torch.from_numpy takes it as is
        assert np.allclose(z["norm_min"][:].shape, (len(group), 14))


def test_log_has_one_line_per_patch(converted):
    out, _ = converted
    lines = _log(out)
    assert len(lines) == 16 and {line["status"] for line in lines} == {"converted"}
    fields = {"id", "split", "country", "ok", "bytes_written", "mb_deleted", "free_gb", "status"}
    assert all(fields <= set(line) and "reason" in line and "timestamp" in line for line in lines)
    assert all(line["bytes_written"] > 800_000 for line in lines)


def test_rerun_skips_done_patches(converted, benv2_root):
    out, _ = converted
    again = convert(_opts(benv2_root, out))
    assert again["converted_this_run"] == 0 and again["already_done"] == 16
    assert not any(s["rebuilt"] for s in again["stores"].values())
    with pytest.raises(ConfigError, match="dtype"):
        convert(_opts(benv2_root, out, float16=True))


def test_corrupt_tiff_and_missing_s1_are_skipped_with_a_reason(fixture_copy, tmp_path):
    meta = _meta(fixture_copy)
    bad, lost = meta.iloc[0], meta.iloc[1]
    band = s2_band_path(fixture_copy / "BigEarthNet-S2", bad.patch_id, "B05")
    band.write_bytes(band.read_bytes()[:300] + b"\x00garbage" * 50)
    shutil.rmtree(s1_patch_dir(fixture_copy / "BigEarthNet-S1", lost.s1_name))
    out = tmp_path / "out"
    summary = convert(_opts(fixture_copy, out, delete_sources=True, store=False))
    assert summary["failures_by_reason"] == {"corrupt_tiff": 1, "missing_s1": 1}
    assert summary["done"] == 14
    reasons = {line["id"]: line for line in _log(out) if not line["ok"]}
    assert (
        reasons[bad.patch_id]["reason"] == "corrupt_tiff"
        and "B05" in reasons[bad.patch_id]["detail"]
    )
    assert reasons[lost.patch_id]["reason"] == "missing_s1"
    # the failed patches keep their sources; the others are gone
    assert band.exists() and s2_patch_dir(fixture_copy / "BigEarthNet-S2", lost.patch_id).is_dir()
    assert not s2_patch_dir(fixture_copy / "BigEarthNet-S2", meta.iloc[2].patch_id).exists()


def test_delete_sources_removes_only_converted_files(fixture_copy, tmp_path):
    out = tmp_path / "out"
    summary = convert(
        _opts(
            fixture_copy, out, bands=("B02", "B03", "B04", "B08", "VV", "VH"), delete_sources=True
        )
    )
    assert summary["done"] == 16 and summary["mb_deleted"] > 0
    for row in _meta(fixture_copy).itertuples():
        folder = s2_patch_dir(fixture_copy / "BigEarthNet-S2", row.patch_id)
        left = sorted(p.name.rsplit("_", 1)[1] for p in folder.iterdir())
        assert left == [
            "B01.tif",
            "B05.tif",
            "B06.tif",
            "B07.tif",
            "B09.tif",
            "B11.tif",
            "B12.tif",
            "B8A.tif",
        ]
        assert not s1_patch_dir(fixture_copy / "BigEarthNet-S1", row.s1_name).exists()
        assert not refmap_path(fixture_copy / "Reference_Maps", row.patch_id).exists()
    logged = _log(out)
    assert sum(line["mb_deleted"] for line in logged) == pytest.approx(
        summary["mb_deleted"], rel=1e-3
    )


def test_disk_guard_pauses_then_resumes(benv2_root, tmp_path):
    readings = iter([5.0, 0.5, 0.5, 0.7] + [9.0] * 1000)  # GB free, one reading per check
    sleeps, messages = [], []
    summary = convert(
        _opts(benv2_root, tmp_path / "out", min_free_gb=1.0, poll_s=30, store=False),
        free_gb=lambda path: next(readings),
        sleep=sleeps.append,
        notify=messages.append,
    )
    assert summary["status"] == "complete" and summary["done"] == 16
    assert summary["disk_guard"]["pauses"] == 1 and sleeps == [30, 30]
    assert "pausing" in messages[0] and "resuming" in messages[-1]


def test_disk_guard_gives_up_cleanly_and_a_rerun_resumes(benv2_root, tmp_path):
    out = tmp_path / "out"
    readings = iter([9.0] * 2 + [0.1] * 1000)
    sleeps = []
    with pytest.raises(DiskSpaceError, match="stayed below --min_free_gb 1"):
        convert(
            _opts(benv2_root, out, min_free_gb=1.0, max_wait_s=100, poll_s=30, batch=1),
            free_gb=lambda path: next(readings),
            sleep=sleeps.append,
            notify=lambda m: None,
        )
    assert sum(sleeps) == 100
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "disk_full" and 1 <= summary["done"] < 16
    resumed = convert(_opts(benv2_root, out, batch=1))
    assert resumed["done"] == 16 and resumed["already_done"] == summary["done"]


def test_target_gb_stops_and_a_rerun_continues(benv2_root, tmp_path):
    out = tmp_path / "out"
    summary = convert(_opts(benv2_root, out, target_gb=0.003, batch=1, workers=1))
    assert summary["status"] == "target_reached"
    assert 3 <= summary["done"] < 16 and summary["bytes_written"] >= 3e6
    rest = convert(_opts(benv2_root, out, batch=1, workers=1))
    assert rest["status"] == "complete" and rest["done"] == 16


def test_global_normalisation_float16_bilinear(benv2_root, tmp_path):
    out = tmp_path / "out"
    summary = convert(
        _opts(
            benv2_root,
            out,
            normalise="global",
            float16=True,
            resampling="bilinear",
            refmap_root=None,
            store_compression="zstd",
        )
    )
    assert summary["done"] == 16
    norm = json.loads((out / "normalisation.json").read_text())
    meta = _meta(benv2_root)
    assert norm["patches"] == (meta.split == "train").sum() and len(norm["mean"]) == 14
    z = zarr.open_group(out / "zarr" / "train.zarr", mode="r")
    x = z["data"][:].astype(np.float64)
    assert z["data"].dtype == np.float16 and "reference_map" not in z
    # over the train split the global mode has mean ~0 and std ~1 per band
    assert np.allclose(x.mean(axis=(0, 2, 3)), 0, atol=0.02)
    assert np.allclose(x.std(axis=(0, 2, 3)), 1, atol=0.02)
    assert z.attrs["global_stats"]["mean"] == norm["mean"]
    with PatchStore(out / "zarr" / "train.zarr") as store:  # compressed chunks, fast path
        assert store._fast and store._decompress
        for i in range(len(store)):
            assert np.array_equal(store.read(i), z["data"][i])


def test_pending_deletions_recheck_outputs_before_deleting(fixture_copy, tmp_path):
    out = tmp_path / "out"
    first = convert(_opts(fixture_copy, out, store=False))  # verified, nothing deleted
    meta = _meta(fixture_copy)
    victim = meta.iloc[4]
    npz = (
        out
        / "patches"
        / victim.split
        / victim.patch_id.rsplit("_", 2)[0]
        / f"{victim.patch_id}.npz"
    )
    good = npz.read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF  # one flipped bit in a band: a member CRC no longer matches
    npz.write_bytes(bytes(damaged))
    second = convert(_opts(fixture_copy, out, store=False, delete_sources=True))
    assert first["done"] == second["done"] == 16
    assert second["deleted_pending_from_earlier_runs"] == 15 and second["converted_this_run"] == 1
    assert npz.read_bytes() == good  # converted again from the sources, then they were deleted
    assert not list((fixture_copy / "BigEarthNet-S2").rglob(f"{victim.patch_id}_*.tif"))
    assert '"kind":"invalid"' in (out / "journal.jsonl").read_text()


def test_a_bad_write_is_caught_by_the_read_back(benv2_root, tmp_path, monkeypatch):
    from eolab.benv2 import convert as conv

    opts = _opts(benv2_root, tmp_path / "out")
    row = conv.plan(opts)[0]
    cfg = {
        "out_dir": str(opts.out_dir),
        "s2_root": str(opts.s2_root),
        "s1_root": str(opts.s1_root),
        "refmap_root": str(opts.refmap_root),
        "bands": list(opts.bands),
        "resampling": "nearest",
        "normalise": "patch",
        "dtype": "float32",
        "reader": "tifffile",
        "min_s1_coverage": 0.9,
    }
    assert conv.convert_patch(row, cfg)["ok"]
    # a disk that silently drops the end of a write
    monkeypatch.setattr(
        conv, "write_atomic", lambda path, data, durable=False: path.write_bytes(data[:-64])
    )
    res = conv.convert_patch(row, cfg)
    assert not res["ok"] and res["reason"] == "verify_failed" and "differ" in res["detail"]
    assert not (opts.out_dir / conv.npz_relpath(row["split"], row["patch_id"])).exists()


def test_a_value_error_is_caught_before_writing_is_trusted(benv2_root, tmp_path, monkeypatch):
    from eolab.benv2 import convert as conv

    opts = _opts(benv2_root, tmp_path / "out")
    row = conv.plan(opts)[0]
    cfg = {
        "out_dir": str(opts.out_dir),
        "s2_root": str(opts.s2_root),
        "s1_root": str(opts.s1_root),
        "refmap_root": None,
        "bands": list(opts.bands),
        "resampling": "nearest",
        "normalise": "patch",
        "dtype": "float16",
        "reader": "tifffile",
        "min_s1_coverage": 0.9,
        "read_back": False,
    }
    real = conv.normalise

    def broken(stack, mode, stats, dtype):
        out = real(stack, mode, stats, dtype)
        out[13, 7, 7] = np.nan  # one NaN in VH
        return out

    monkeypatch.setattr(conv, "normalise", broken)
    res = conv.convert_patch(row, cfg)
    assert not res["ok"] and res["reason"] == "verify_failed" and "s1_vh" in res["detail"]
