"""U-ViT / MaskDM: masked tokens are dropped before the transformer, not zeroed."""
import torch

from mdreg.masking import PatchMasker, visible_ids
from mdreg.models.uvit import UViT, maskdm_s


def tiny(**kw):
    torch.manual_seed(0)
    return UViT(img_size=16, patch_size=4, embed_dim=32, depth=3, num_heads=2, **kw)


def test_maskdm_s_matches_table_4():
    n = sum(p.numel() for p in maskdm_s(img_size=64, patch_size=4).parameters())
    assert abs(n / 1e6 - 44.0) / 44.0 < 0.01, n  # MaskDM Table 4: 44M (maskdm small: 44.29M)


def test_only_visible_tokens_enter_the_blocks():
    net = tiny()
    seen = []
    net.in_blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 500.0])
    mask = PatchMasker(0.75)(2, net.grid_size, torch.Generator().manual_seed(0))
    net(x, t, ids_keep=visible_ids(mask))
    net(x, t)
    assert seen == [torch.Size([2, 1 + 4, 32]), torch.Size([2, 1 + 16, 32])]  # time token + visible patches


def test_masked_patches_output_zero_and_do_not_influence_visible_ones():
    net = tiny()
    g = torch.Generator().manual_seed(1)
    mask = PatchMasker(0.5)(2, net.grid_size, g)
    ids = visible_ids(mask)
    x, t = torch.randn(2, 3, 16, 16, requires_grad=True), torch.tensor([10.0, 900.0])
    out = net(x, t, ids_keep=ids)
    patches = out.unfold(2, 4, 4).unfold(3, 4, 4).reshape(2, 3, 16, 16).permute(0, 2, 1, 3)  # (B, N, C, p*p)
    assert torch.all(patches[mask] == 0) and patches[~mask].abs().sum() > 0
    out.sum().backward()
    grads = x.grad.unfold(2, 4, 4).unfold(3, 4, 4).reshape(2, 3, 16, 16).permute(0, 2, 1, 3)
    assert torch.all(grads[mask] == 0)  # masked pixels never reach the network


def test_all_visible_ids_equal_the_unmasked_forward():
    net = tiny()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0])
    ids = torch.arange(16).expand(2, 16)
    torch.testing.assert_close(net(x, t, ids_keep=ids), net(x, t), rtol=1e-5, atol=1e-6)


def test_class_conditional_tokens():
    net = tiny(num_classes=5)
    seen = []
    net.in_blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    out = net(torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0]), y=torch.tensor([0, 4]))
    assert out.shape == (2, 3, 16, 16) and seen == [2 + 16]
