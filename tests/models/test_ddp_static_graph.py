"""Every backbone puts every parameter in the autograd graph, masked or not.

DistributedDataParallel with ``find_unused_parameters=False`` (our default: the search costs a
graph walk per step) fails on the step after one where a parameter got no gradient. MaskDiT's
mask token is the parameter at risk: unmasking tuning runs at mask ratio 0 (MaskDiT sec. 3.2),
where no token is replaced by it.
"""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mdreg.masking import visible_ids
from mdreg.registry import MASKERS
from tests.models.test_backbone_contract import TINY, inputs, tiny


def _backward(model, ratio: float) -> None:
    x, t, y = inputs(model)
    ids = None
    if ratio:
        ids = visible_ids(MASKERS.get("patch")(ratio)(2, model.grid_size, torch.Generator().manual_seed(0)))
    model(x, t, y, ids_keep=ids).square().mean().backward()


@pytest.mark.parametrize("ratio", [0.0, 0.5])
@pytest.mark.parametrize("name", list(TINY))
def test_every_parameter_gets_a_gradient(name, ratio):
    model = tiny(name).train()
    _backward(model, ratio)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_the_mask_token_gets_a_zero_gradient_when_nothing_is_masked():
    model = tiny("maskdit").train()
    _backward(model, 0.0)
    assert torch.equal(model.mask_token.grad, torch.zeros_like(model.mask_token))
    x, t, y = inputs(model)
    with torch.no_grad():  # sampling skips the zero term; the outputs are the same bits
        sampled = model(x, t, y)
    assert torch.equal(model(x, t, y).detach(), sampled)


def _ddp_unmasking_steps(rank: int, port: int) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=1)
    model = tiny("maskdit").train()
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
    for ratio in (0.5, 0.0, 0.0):  # a cosine ratio schedule reaching 0, then zero-ratio tuning
        x, t, y = inputs(model)
        ids = visible_ids(MASKERS.get("patch")(ratio)(2, model.grid_size, torch.Generator())) if ratio else None
        net(x, t, y, ids_keep=ids).square().mean().backward()  # raises on the step after an unused parameter
    dist.destroy_process_group()


def test_ddp_trains_maskdit_through_ratio_zero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_unmasking_steps, args=(port,), nprocs=1, start_method="fork", join=True)
