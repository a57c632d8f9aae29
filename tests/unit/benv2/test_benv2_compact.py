"""The compact store (native dtypes and resolutions, expanded at read time) returns exactly the
dense store's arrays for every patch of the fixture; so does the LMDB + safetensors peer."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr

from eolab.benv2.compact import Expander, native_groups, unpack
from eolab.benv2.convert import TilesOptions, convert
from eolab.benv2.names import ALL_BANDS, S2_BANDS, npz_key, s2_band_path
from eolab.benv2.store import PatchStore, open_dataset
from eolab.benv2.writers import read_npz

SPLITS = ("train", "validation", "test")


def _opts(root: Path, out: Path, **kw) -> TilesOptions:
    return TilesOptions.for_root(root, out, workers=2, progress=False, **kw)


def _stores(out: Path) -> dict[str, Path]:
    return {s: out / "zarr" / f"{s}.zarr" for s in SPLITS if (out / "zarr" / f"{s}.zarr").is_dir()}


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"normalise": "global"},
        {"float16": True},
        {"normalise": "global", "float16": True, "bands": ("B02", "B05", "VH", "B01")},
        {"resampling": "bilinear", "normalise": "none"},
    ],
    ids=["patch", "global", "patch-float16", "global-float16-bands", "bilinear-none"],
)
def test_compact_store_equals_dense_for_every_patch(benv2_root, tmp_path, kw):
    dense = convert(_opts(benv2_root, tmp_path / "dense", **kw))
    compact = convert(_opts(benv2_root, tmp_path / "compact", store_layout="compact", **kw))
    assert compact["done"] == dense["done"] == dense["selected"]
    stores = _stores(tmp_path / "dense")
    assert stores and set(_stores(tmp_path / "compact")) == set(stores)
    for split, path in stores.items():
        cpath = tmp_path / "compact" / "zarr" / f"{split}.zarr"
        with PatchStore(path) as a, PatchStore(cpath) as b:
            assert b.layout == "compact" and b.attrs["format_version"] == 3
            assert b._fast and b._decompress  # pread + lz4, not zarr-python
            assert len(a) == len(b) and list(a.patch_id) == list(b.patch_id)
            np.testing.assert_array_equal(a.labels, b.labels)
            for i in range(len(a)):  # bit-equal: the same float32 operations in the same order
                x, y = a.read(i), b.read(i)
                assert x.dtype == y.dtype == np.dtype(a.attrs["dtype"])
                assert x.shape == y.shape and np.array_equal(x, y), (split, i)
            order = list(range(len(a)))[::-1]
            np.testing.assert_array_equal(a.read_batch(order), b.read_batch(order))
        # native data, lz4: well under half the bytes of the float32 arrays reads return
        native = _bytes(cpath / "native")
        assert native < 0.5 * np.prod(a.shape) * 4


def test_compact_npz_holds_the_source_pixels(benv2_root, tmp_path):
    """The compact layout's per-patch npz holds each S2 band as read (uint16, native size)."""
    out = tmp_path / "compact"
    convert(_opts(benv2_root, out, store_layout="compact", store_compression="zstd"))
    import rasterio

    npz = sorted((out / "patches").rglob("*.npz"))
    assert npz
    for path in npz[:3]:
        arrays = read_npz(path)
        pid = path.stem
        for band, metres in S2_BANDS.items():
            with rasterio.open(s2_band_path(benv2_root / "BigEarthNet-S2", pid, band)) as src:
                want = src.read(1)
            got = arrays[npz_key(band)]
            assert got.dtype == np.uint16 and got.shape == (1200 // metres,) * 2
            np.testing.assert_array_equal(got, want)
        assert arrays["s1_vv"].dtype == np.float32 and arrays["s1_vv"].shape == (120, 120)
    # zarr-python reads the native groups (blosc zstd) as the npz holds them
    group = zarr.open_group(out / "zarr" / "train.zarr", mode="r")
    with PatchStore(out / "zarr" / "train.zarr") as store:
        first = read_npz(next(p for p in npz if p.stem == store.patch_id[0]))
    packed = group["native"]
    natives = unpack(native_groups(ALL_BANDS), packed[:1])
    np.testing.assert_array_equal(natives["s2_20m"][0, 0], first["s2_b5"])
    np.testing.assert_array_equal(natives["s1"][0, 1], first["s1_vh"])
    spans = {p["group"]: (p["start"], p["stop"]) for p in packed.attrs["packing"]}
    assert spans["s1"][1] == packed.shape[1] == 80_000 + 2 * 120 * 120 * 2
    assert packed.compressors[0].cname.value == "zstd"
    ds = open_dataset(out / "zarr" / "train.zarr")  # xarray opens the compact store too
    assert ds["native"].dims == ("patch", "packed") and ds["native"].dtype == np.uint16
    np.testing.assert_array_equal(ds["native"][0].values, packed[0])


def test_compact_store_pickles_and_reads_in_a_copy(benv2_root, tmp_path):
    out = tmp_path / "compact"
    convert(_opts(benv2_root, out, store_layout="compact"))
    path = out / "zarr" / "train.zarr"
    with PatchStore(path) as store:
        want = store.read(1)
        copy = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(copy.read(1), want)
    with pytest.raises(IndexError, match="outside"):
        copy.read(len(copy))
    copy.close()


def test_expander_nearest_writes_views_not_copies():
    """A batch of two patches with known native values expands into the exact blocks."""
    bands = ("B01", "B02", "B05", "VV")
    ex = Expander(bands, resampling="nearest", normalisation="none", dtype="float32")
    rng = np.random.default_rng(0)
    natives = {
        "s2_10m": rng.integers(0, 10000, (2, 1, 120, 120), dtype=np.uint16),
        "s2_20m": rng.integers(0, 10000, (2, 1, 60, 60), dtype=np.uint16),
        "s2_60m": rng.integers(0, 10000, (2, 1, 20, 20), dtype=np.uint16),
        "s1": rng.normal(-12, 3, (2, 1, 120, 120)).astype(np.float32),
    }
    out = ex.expand(natives)
    assert out.shape == (2, 4, 120, 120)
    np.testing.assert_array_equal(out[:, 0, ::6, ::6], natives["s2_60m"][:, 0])
    np.testing.assert_array_equal(out[:, 0, 5::6, 5::6], natives["s2_60m"][:, 0])
    np.testing.assert_array_equal(out[:, 1], natives["s2_10m"][:, 0])
    np.testing.assert_array_equal(out[:, 2, 1::2, ::2], natives["s2_20m"][:, 0])
    np.testing.assert_array_equal(out[:, 3], natives["s1"][:, 0])


def test_lmdb_peer_returns_the_store_arrays(benv2_root, tmp_path):
    pytest.importorskip("lmdb", reason="lmdb is in the test extra")
    from eolab.benv2.lmdbpeer import LmdbPeer, build_lmdb

    out = tmp_path / "compact"
    convert(_opts(benv2_root, out, store_layout="compact"))
    dense_out = tmp_path / "dense"
    convert(_opts(benv2_root, dense_out))
    path = out / "zarr" / "train.zarr"
    with PatchStore(path) as store:
        npz = {p.stem: p for p in (out / "patches" / "train").rglob("*.npz")}
        nbytes = build_lmdb(
            tmp_path / "lmdb", [npz[p] for p in store.patch_id], list(store.patch_id), ALL_BANDS
        )
        assert nbytes > 0
        with (
            LmdbPeer(tmp_path / "lmdb", store) as peer,
            PatchStore(dense_out / "zarr" / "train.zarr") as dense,
        ):
            assert len(peer) == len(dense)
            for i in range(len(peer)):
                x, y = peer[i]
                np.testing.assert_array_equal(x, dense.read(i))
                np.testing.assert_array_equal(y, dense.labels[i])
            np.testing.assert_array_equal(peer.read_batch([2, 0]), dense.read_batch([2, 0]))


def test_cli_tiles_store_layout_compact(benv2_root, tmp_path):
    """``eolab benv2 tiles --store_layout compact``: lz4 by default, refused on a dense output."""
    import subprocess
    import sys

    out = tmp_path / "out"
    base = [sys.executable, "-m", "eolab", "benv2", "tiles", "--root", str(benv2_root)]
    cmd = [*base, "--out_dir", str(out), "--no-progress", "--workers", "2", "--limit", "6"]
    done = subprocess.run([*cmd, "--store_layout", "compact"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    group = zarr.open_group(out / "zarr" / "train.zarr", mode="r")
    assert group.attrs["layout"] == "compact" and "data" not in group
    assert group["native"].compressors[0].cname.value == "lz4"
    again = subprocess.run(cmd, capture_output=True, text=True)  # dense on compact outputs
    assert again.returncode != 0
    assert again.stderr.startswith("eolab: error: ") and "layout" in again.stderr
