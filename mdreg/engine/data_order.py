"""Which samples each step trains on, as a pure function of (seed, step).

Epoch ``e`` visits the dataset in the order ``randperm(n, seed + e)``; the incomplete tail
batch of each epoch is dropped. Step ``s`` takes global batch ``s`` of that sequence, and
rank ``r`` of ``w`` takes the ``r``-th contiguous slice of it, so 2 processes see exactly
the samples 1 process would, and a resumed run starts where the interrupted one stopped
without saving any iterator state.
"""
from __future__ import annotations

import functools

import torch
from torch.utils.data import Sampler


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_indices(n: int, global_batch: int, step: int, seed: int, rank: int = 0, world: int = 1,
                  shuffle: bool = True) -> list[int]:
    """Dataset indices that ``rank`` trains on at ``step``."""
    per_epoch = n // global_batch
    if per_epoch == 0:
        raise ValueError(f"the dataset has {n} samples, fewer than one global batch of {global_batch}")
    epoch, within = divmod(step, per_epoch)
    order = _epoch_order(n, seed, epoch) if shuffle else torch.arange(n)
    batch = order[within * global_batch:(within + 1) * global_batch]
    per_rank = global_batch // world
    return batch[rank * per_rank:(rank + 1) * per_rank].tolist()


class StepBatchSampler(Sampler[list[int]]):
    """Batch sampler for a DataLoader: the batches of steps ``start, start+1, ...``."""

    def __init__(self, n: int, global_batch: int, seed: int, start_step: int, end_step: int,
                 rank: int = 0, world: int = 1, shuffle: bool = True):
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by world size {world}")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.start, self.end, self.rank, self.world, self.shuffle = start_step, end_step, rank, world, shuffle

    def __iter__(self):
        for step in range(self.start, self.end):
            yield batch_indices(self.n, self.global_batch, step, self.seed, self.rank, self.world, self.shuffle)

    def __len__(self) -> int:
        return max(0, self.end - self.start)
