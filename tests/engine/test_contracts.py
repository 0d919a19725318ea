"""Each kind's contract (mdreg/engine/contracts.py; docs/extending.md): the built-ins keep it,
and a component that breaks it is named with what it broke."""
from __future__ import annotations

import pytest
import torch

from mdreg.engine.contracts import (ContractError, check_backbone, check_dataset, check_masker, check_objective,
                                    check_registered)
from mdreg.masking import Masker, PatchMasker


@pytest.mark.parametrize("ref, args", [
    ("masker:patch", {}), ("masker:block", {"block_size": 2}), ("masker:crop", {}),
    ("masker:block", {"block_size": 2, "rounding": "whole_blocks"}),
    ("backbone:uvit", {"img_size": 8, "patch_size": 2, "embed_dim": 32, "depth": 3, "num_heads": 2}),
    ("backbone:dit", {"img_size": 8, "patch_size": 2, "in_chans": 4, "hidden_size": 32, "depth": 2, "num_heads": 2,
                      "num_classes": 3}),
    ("objective:dsm", {}), ("objective:mdsm", {}), ("dataset:shapes", {"num_images": 8, "resolution": 8}),
])
def test_the_builtins_keep_their_contract(ref, args):
    assert check_registered(ref, args)


class TooMany(Masker):
    def sample(self, batch, grid, k, generator):
        mask = torch.zeros(batch, grid[0] * grid[1], dtype=torch.bool)
        mask[:, :k] = True
        mask[0, k] = True  # one row hides one more: the rows no longer gather alike
        return mask


class Unseeded(PatchMasker):
    def sample(self, batch, grid, k, generator):
        return super().sample(batch, grid, k, None)  # the global RNG: a resumed run would draw other masks


def test_a_masker_that_breaks_its_contract_is_named():
    with pytest.raises(ContractError, match=r"hides \[4, 5\] tokens per row, not exactly num_masked = 4"):
        check_masker(TooMany(0.25))
    with pytest.raises(ContractError, match="the same generator state gave another mask"):
        check_masker(Unseeded(0.5))


def test_a_backbone_dataset_and_objective_that_break_it_are_named():
    from mdreg.config import L, instantiate

    model = instantiate(L("backbone:uvit")(img_size=8, patch_size=2, embed_dim=32, depth=3, num_heads=2))
    forward = model.forward
    model.forward = lambda x, t, y=None, ids_keep=None: forward(x, t, y)[:, :1]  # drops channels
    with pytest.raises(ContractError, match=r"with all tokens it returned \(2, 1, 8, 8\), not \(2, 3, 8, 8\)"):
        check_backbone(model)
    model.forward = forward

    class Bytes(torch.utils.data.Dataset):
        channels, resolution, num_classes = 3, 8, 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3, 8, 8, dtype=torch.uint8), -1
    with pytest.raises(ContractError, match=r"dataset\[0\]\[0\] is torch.uint8 \(3, 8, 8\), not a float"):
        check_dataset(Bytes())

    class Detached:
        def __call__(self, net, x0, y=None, ids_keep=None, generator=None):
            return type("Out", (), {"loss": net(x0, torch.zeros(len(x0))).detach().pow(2).mean()})()

        def model_fn(self, net, y=None, guidance_scale=1.0):
            return lambda x, t: net(x, t)
    with pytest.raises(ContractError, match="its loss does not back-propagate into the net"):
        check_objective(Detached(), model)
