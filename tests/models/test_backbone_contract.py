"""The backbone contract: shapes, attributes, masked tokens dropped (not zeroed), labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mdreg.masking import visible_ids
from mdreg.models.layers import sincos_2d_pos_embed
from mdreg.registry import BACKBONES, MASKERS
from tests.models.official_reference import to_tokens

TINY = {
    "uvit": dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=3, num_heads=2),
    "uvit_dwt": dict(img_size=8, patch_size=2, in_chans=12, embed_dim=32, depth=3, num_heads=2),
    "dit": dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2, num_classes=5),
    "maskdit": dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2, num_classes=5,
                    decoder_hidden_size=16, decoder_depth=2, decoder_num_heads=2),
}


def tiny(name):
    model = BACKBONES.get(name)(**TINY[name])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def inputs(model, batch=2):
    x = torch.randn(batch, model.in_chans, model.img_size, model.img_size)
    y = torch.arange(batch) % model.num_classes if model.num_classes else None
    return x, torch.rand(batch) * 100, y


def tokens_seen(modules, run):
    """Sequence lengths entering each module during ``run()``."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[1])) for m in modules]
    run()
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", list(TINY))
def test_attributes_and_shapes(name):
    model = tiny(name)
    assert model.grid_size == (4, 4) and model.patch_size == 2 and model.img_size == 8
    x, t, y = inputs(model)
    out = model(x, t, y)
    assert out.shape == (2, model.out_chans, 8, 8)
    assert (model.null_label is not None) == bool(model.num_classes)


@pytest.mark.parametrize("name", list(TINY))
def test_masked_tokens_are_dropped_before_the_transformer(name):
    model = tiny(name)
    x, t, y = inputs(model)
    mask = MASKERS.get("patch")(0.75)(2, model.grid_size, torch.Generator().manual_seed(1))
    ids = visible_ids(mask)  # K = 4 of 16 cells
    encoder = model.blocks if hasattr(model, "blocks") else [*model.in_blocks, model.mid_block]
    seen = tokens_seen(encoder, lambda: model(x, t, y, ids_keep=ids))
    per_cell = 2 if name == "uvit_dwt" else 1  # the DWT model keeps the cell's low and high token
    assert set(seen) == {model.num_prefix_tokens + per_cell * 4}
    if name == "maskdit":
        assert set(tokens_seen(model.decoder_blocks, lambda: model(x, t, y, ids_keep=ids))) == {16}


@pytest.mark.parametrize("name", list(TINY))
def test_visible_outputs_ignore_masked_inputs(name):
    model = tiny(name)
    x, t, y = inputs(model)
    mask = MASKERS.get("block")(0.5, block_size=2)(2, model.grid_size, torch.Generator().manual_seed(2))
    ids = visible_ids(mask)
    changed = x + 5 * mask.view(2, 1, 4, 1, 4, 1).expand(2, 1, 4, 2, 4, 2).reshape(2, 1, 8, 8)  # masked cells only
    with torch.no_grad():
        a, b = model(x, t, y, ids_keep=ids), model(changed, t, y, ids_keep=ids)
    visible = to_tokens(a, 2)[~mask], to_tokens(b, 2)[~mask]
    assert torch.allclose(*visible, atol=1e-6)
    if name != "maskdit":  # the encoder-only backbones output zeros where they saw nothing
        assert torch.all(to_tokens(a, 2)[mask] == 0)
    else:
        assert torch.all(to_tokens(a, 2)[mask].abs().sum(-1) > 0)  # MAE predictions from mask tokens


def test_dwt_low_and_high_bands_are_masked_together():
    model = tiny("uvit_dwt")
    x, t, _ = inputs(model)
    mask = MASKERS.get("patch")(0.5)(2, model.grid_size, torch.Generator().manual_seed(3))
    out = model(x, t, ids_keep=visible_ids(mask))
    low, high = to_tokens(out[:, :3], 2), to_tokens(out[:, 3:], 2)
    assert torch.all(low[mask] == 0) and torch.all(high[mask] == 0)
    assert torch.all(low[~mask].abs().sum(-1) > 0) and torch.all(high[~mask].abs().sum(-1) > 0)
    with pytest.raises(ValueError, match="12 DWT channels"):
        model(torch.randn(1, 3, 8, 8), t[:1])


def reference_sincos_2d(dim: int, size: int) -> np.ndarray:
    """The MAE / DiT table written out in numpy: tokens row-major; the first dim/2 channels
    encode the column coordinate, the last dim/2 the row, each as [sin(p w) | cos(p w)] with
    w_k = 1 / 10000^(k / (dim/4)), k < dim/4."""
    freqs = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    rows = []
    for r in range(size):
        for c in range(size):
            rows.append(np.concatenate([np.sin(c * freqs), np.cos(c * freqs), np.sin(r * freqs), np.cos(r * freqs)]))
    return np.stack(rows).astype(np.float32)


def test_sincos_positions_match_the_reference_formula():
    assert np.array_equal(sincos_2d_pos_embed(32, (4, 4)).numpy(), reference_sincos_2d(32, 4))
    assert np.array_equal(sincos_2d_pos_embed(1152, (16, 16)).numpy(), reference_sincos_2d(1152, 16))  # DiT-XL/2


def test_dit_initialisation_is_adaln_zero_with_fixed_positions():
    model = BACKBONES.get("dit")(**TINY["dit"])
    x, t, y = inputs(model)
    assert torch.equal(model(x, t, y), torch.zeros(2, 4, 8, 8))  # zeroed final layer
    assert not model.pos_embed.requires_grad
    assert torch.equal(model.pos_embed[0], sincos_2d_pos_embed(32, (4, 4)))
    assert all(not b.adaLN_modulation[-1].weight.detach().any() for b in model.blocks)


def test_maskdit_null_label_is_the_zero_embedding():
    model = tiny("maskdit")
    null = model.y_embedder(torch.tensor([model.null_label]))
    assert model.null_label == 5 and torch.equal(null, torch.zeros(1, 32))
    assert torch.equal(model.y_embedder(torch.tensor([2]))[0], model.y_embedder.embedding_table.weight[:, 2])
    fresh = BACKBONES.get("maskdit")(**TINY["maskdit"])
    assert 0.005 < float(fresh.mask_token.detach().std()) < 0.05  # N(0, 0.02)


@pytest.mark.parametrize("name", ["dit", "maskdit"])
def test_conditional_nets_need_labels(name):
    model = tiny(name)
    x, t, _ = inputs(model)
    with pytest.raises(ValueError, match="pass labels y"):
        model(x, t)


def test_uvit_null_label_row():
    model = BACKBONES.get("uvit")(**{**TINY["uvit"], "num_classes": 10})
    assert model.label_emb.num_embeddings == 11 and model.null_label == 10
    plain = BACKBONES.get("uvit")(**{**TINY["uvit"], "num_classes": 10, "null_class": False})
    assert plain.label_emb.num_embeddings == 10 and plain.null_label is None
