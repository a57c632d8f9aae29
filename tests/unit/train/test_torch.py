"""The PyTorch adapter end to end: DataLoader workers x ranks, epochs, resume, padded series,
and the BigEarthNet v2 store through the same recipe."""

from pathlib import Path

import numpy as np
import pytest
import torch

from eolab.chips.merge import read_index
from eolab.core.errors import InputError
from eolab.train.benv2 import Benv2Dataset
from eolab.train.dataset import CubeSource, PatchSeriesDataset
from eolab.train.sampling import index_samples
from eolab.train.torch import EpochSampler, collate, data_loader

TILE = "35VLH"


@pytest.fixture(scope="module")
def series(ty2024, ty2025):
    """Per-date chips of both years at 10 m, on the zipped store (cheap to read)."""
    index = read_index([ty2024.index_dir, ty2025.index_dir])
    samples = index_samples(index, per="date", max_cloud=0.5)
    entries = {(ty.tile, ty.year): str(ty.entries["zarr-zip"]) for ty in (ty2024, ty2025)}
    return PatchSeriesDataset(CubeSource("zarr-zip", entries), samples[:23], resolution=20)


def _keys(loader):
    return [k for batch in loader for k in batch["key"]]


@pytest.mark.parametrize("workers", [0, 2])
def test_workers_and_ranks_read_every_sample_once(series, workers):
    seen = []
    for rank in range(3):
        loader, sampler = data_loader(
            series, batch_size=4, num_workers=workers, seed=11, rank=rank, world_size=3
        )
        sampler.set_epoch(1)
        keys = _keys(loader)
        assert len(keys) == len(sampler) in (7, 8)
        seen += keys
    assert sorted(seen) == sorted(s.key for s in series.samples)  # no duplicates, no gaps


def test_epochs_reorder_and_the_seed_repeats(series):
    loader, sampler = data_loader(series, batch_size=5, seed=3)
    sampler.set_epoch(0)
    first = _keys(loader)
    sampler.set_epoch(1)
    second = _keys(loader)
    assert sorted(first) == sorted(second) and first != second
    again, sampler2 = data_loader(series, batch_size=5, seed=3, num_workers=2)
    sampler2.set_epoch(0)
    assert _keys(again) == first


def test_resume_from_an_offset(series):
    loader, sampler = data_loader(series, batch_size=3, seed=5, rank=1, world_size=2)
    sampler.set_epoch(2)
    full = _keys(loader)
    sampler.set_epoch(2, start=6)  # two batches were done before preemption
    assert _keys(loader) == full[6:]


def test_batches_are_tensors_with_the_dataset_pixels(series):
    loader, _ = data_loader(series, batch_size=4, shuffle=False)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 1, 13, 16, 16) and batch["image"].dtype == torch.uint16
    assert batch["valid"].dtype == torch.bool and batch["time_mask"].all()
    for k in range(4):
        np.testing.assert_array_equal(batch["image"][k].numpy(), series[k]["image"])
    assert batch["index"].tolist() == [0, 1, 2, 3] and batch["crs"] == ["EPSG:32635"] * 4


def test_collate_pads_series_of_unequal_length():
    def item(t):
        return {
            "image": np.full((t, 2, 3, 3), t, dtype=np.uint16),
            "valid": np.ones((t, 3, 3), bool),
            "time": np.arange(t, dtype=np.int64),
            "key": f"s{t}",
        }

    batch = collate([item(2), item(4)])
    assert batch["image"].shape == (2, 4, 2, 3, 3)
    assert batch["time_mask"].tolist() == [[True, True, False, False], [True] * 4]
    assert batch["image"][0, 2:].sum() == 0 and not batch["valid"][0, 2:].any()
    assert batch["key"] == ["s2", "s4"]


def test_sampler_len_matches_its_iteration():
    s = EpochSampler(10, world_size=4, rank=3)
    assert len(s) == len(list(s)) == 2
    s.set_epoch(0, start=1)
    assert len(s) == 1


def test_benv2_same_recipe_labels_refmaps_countries(benv2_store):
    from eolab.benv2.store import PatchStore

    ds = Benv2Dataset(benv2_store, "train", reference_maps=True)
    with PatchStore(Path(benv2_store) / "zarr" / "train.zarr") as store:
        expected = {
            str(store.patch_id[i]): (store.read(i), store.labels[i]) for i in range(len(store))
        }
    seen = []
    for rank in range(2):
        loader, sampler = data_loader(
            ds, batch_size=3, num_workers=2, seed=1, rank=rank, world_size=2
        )
        sampler.set_epoch(0)
        for batch in loader:
            assert batch["labels"].dtype == torch.uint8 and batch["labels"].shape[1] == 19
            assert batch["reference_map"].shape[1:] == (120, 120)
            for k, pid in enumerate(batch["patch_id"]):
                x, labels = expected[pid]
                np.testing.assert_array_equal(batch["image"][k].numpy(), x)
                np.testing.assert_array_equal(batch["labels"][k].numpy(), labels)
                seen.append(pid)
    assert sorted(seen) == sorted(expected)
    country = ds.country[ds.rows[0]]
    only = Benv2Dataset(benv2_store, "train", countries=[country])
    assert 0 < len(only) < len(ds)
    assert {only[i]["country"] for i in range(len(only))} == {country}
    with pytest.raises(InputError, match="no patches from"):
        Benv2Dataset(benv2_store, "train", countries=["Atlantis"])
    with pytest.raises(InputError, match="no BigEarthNet v2 store"):
        Benv2Dataset(benv2_store, "nosuchsplit")


def test_workers_start_from_a_forkserver_unless_told_otherwise(series):
    """Forking a threaded training process can copy a held lock into the worker (a hang)."""
    loader, _ = data_loader(series, batch_size=2, num_workers=1)
    assert loader.multiprocessing_context.get_start_method() == "forkserver"
    forked, _ = data_loader(series, batch_size=2, num_workers=1, multiprocessing_context="fork")
    assert forked.multiprocessing_context.get_start_method() == "fork"
    in_process, _ = data_loader(series, batch_size=2)
    assert in_process.multiprocessing_context is None


WORKER_PROBE = """
import sys

from eolab.train.torch import data_loader


class Probe:  # which readers a worker has without importing them itself
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"index": i, "preloaded": "eolab.train.benv2" in sys.modules}


if __name__ == "__main__":
    assert "eolab.train.benv2" not in sys.modules
    loader, _ = data_loader(Probe(), batch_size=1, num_workers=1, shuffle=False)
    print(sorted({p for batch in loader for p in batch["preloaded"]}))
"""


def test_workers_fork_from_a_forkserver_that_preloaded_the_readers(tmp_path):
    """Each worker forks with torch and the readers imported (~2 s a worker an epoch saved).
    A fresh interpreter: the forkserver of this session may have started already."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(WORKER_PROBE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True]"
