"""The toy's coordinate transformer: one token per coordinate, masked coordinates never computed."""
import torch

from mdreg.config import L, instantiate
from mdreg.diffusion.objectives import MDSM
from mdreg.diffusion.schedules import DDPMLinear
from mdreg.masking import PatchMasker, visible_ids


def net(d=3):
    torch.manual_seed(0)
    return instantiate(L("backbone:coord_transformer")(num_coords=d, embed_dim=16, depth=2, num_heads=2)).eval()


def test_coordinates_are_the_token_grid():
    model = net(3)
    assert (model.grid_size, model.patch_size, model.in_chans, model.img_size) == ((1, 3), 1, 1, 3)
    out = model(torch.randn(4, 1, 1, 3), torch.tensor([0.0, 10.0, 500.0, 999.0]))
    assert out.shape == (4, 1, 1, 3)


def test_masked_coordinates_do_not_reach_the_visible_ones():
    model = net(3)
    x, t = torch.randn(2, 1, 1, 3), torch.tensor([5.0, 700.0])
    keep = torch.tensor([[0, 2], [0, 2]])
    out = model(x, t, ids_keep=keep)
    assert torch.all(out[..., 1] == 0)
    changed = x.clone()
    changed[..., 1] += 10.0  # the hidden coordinate
    assert torch.allclose(model(changed, t, ids_keep=keep), out)
    assert not torch.allclose(model(changed, t), model(x, t))  # unmasked, it matters


def test_mdsm_on_coordinates_trains_through_the_masker():
    model = net(2).train()
    mask = PatchMasker(0.5)(4, model.grid_size, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [1, 1, 1, 1]  # S = 1 of 2 coordinates visible (MaskDM sec. 3.1)
    loss = MDSM(DDPMLinear())(model, torch.randn(4, 1, 1, 2), ids_keep=visible_ids(mask, 1),
                              generator=torch.Generator().manual_seed(1)).loss
    loss.backward()
    assert loss.item() > 0 and model.pos_embed.grad.abs().sum() > 0
