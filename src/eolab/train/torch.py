"""The PyTorch adapter (``pip install eolab[train]``): a sampler, a collate function, a loader.

The datasets of :mod:`eolab.train.dataset` and :mod:`eolab.train.benv2` are map-style already
(``len`` and ``[i]``), so a ``torch.utils.data.DataLoader`` takes them as they are. What this
adds: :class:`EpochSampler` (seeded shuffle per epoch, split across ranks without padding,
resume from an offset; the DataLoader hands each index to exactly one worker) and
:func:`collate` (numpy arrays to tensors, time series of unequal length padded at the end with a
``time_mask``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from eolab.train.sampling import epoch_order

#: Keys whose first axis is time (padded to the longest series of a batch).
TIME_KEYS = ("10m", "20m", "60m", "image", "valid", "time")


class EpochSampler(Sampler[int]):
    """Indices of one rank for one epoch (:func:`eolab.train.sampling.epoch_order`).

    Call ``set_epoch(epoch)`` before each epoch, as with DistributedSampler; after preemption
    ``set_epoch(epoch, start=samples_already_read_by_this_rank)`` continues where it stopped.
    """

    def __init__(
        self,
        data_source: Sequence[Any] | int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.n = data_source if isinstance(data_source, int) else len(data_source)
        self.seed, self.shuffle = seed, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def indices(self) -> np.ndarray:
        return epoch_order(
            self.n,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            rank=self.rank,
            world_size=self.world_size,
            drop_last=self.drop_last,
            start=self.start,
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return len(self.indices())


def _pad_time(arrays: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(arrays), length, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
    for k, a in enumerate(arrays):
        out[k, : len(a)] = a
    return out


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A batch of items as tensors: time-axis arrays padded to the longest series (zeros, with
    ``time_mask`` (batch, time) True on real dates); other arrays stacked; strings and other
    values as lists."""
    out: dict[str, Any] = {}
    lengths = [len(item["time"]) for item in batch] if "time" in batch[0] else None
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], np.ndarray):
            if lengths is not None and key in TIME_KEYS:
                stacked = _pad_time(values, max(lengths))
            else:
                stacked = np.stack(values)
            out[key] = torch.from_numpy(stacked)
        elif isinstance(values[0], int | float) and not isinstance(values[0], bool):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    if lengths is not None:
        steps = np.arange(max(lengths))
        out["time_mask"] = torch.from_numpy(steps[None, :] < np.array(lengths)[:, None])
    return out


#: How DataLoader workers start (see `data_loader`).
WORKER_START = "forkserver"
#: What the forkserver imports once, so that each worker forks with them loaded instead of
#: importing torch and the readers again (~2 s a worker, every epoch without persistent workers).
#: ``__main__`` is the standard library's default.
WORKER_PRELOAD = ("__main__", "torch", "eolab.train.dataset", "eolab.train.benv2")


def data_loader(
    dataset: Sequence[Any],
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    **kwargs: Any,
) -> tuple[DataLoader, EpochSampler]:
    """A DataLoader over ``dataset`` with an :class:`EpochSampler` and :func:`collate`; returns
    both (call ``sampler.set_epoch`` each epoch). ``kwargs`` go to the DataLoader.

    Worker processes start from a ``forkserver`` unless ``multiprocessing_context`` says
    otherwise: forking the training process itself copies locks that its threads (GDAL's,
    jemalloc's background thread, Blosc's) may hold at that instant, and a worker then waits on
    them forever (seen: a COG DataLoader with 1 worker after reads in the parent). The
    forkserver preloads :data:`WORKER_PRELOAD`; ``persistent_workers=True`` keeps the workers
    (and their open stores) from one epoch to the next."""
    if num_workers > 0:
        kwargs.setdefault("multiprocessing_context", WORKER_START)
        if kwargs["multiprocessing_context"] == "forkserver":
            # No effect once the forkserver runs (it started with the same list then).
            multiprocessing.set_forkserver_preload(list(WORKER_PRELOAD))
    sampler = EpochSampler(
        dataset,
        seed=seed,
        shuffle=shuffle,
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        **kwargs,
    )
    return loader, sampler
