"""Independent functional forwards of the official models, for parity tests.

Each function computes an official network's output straight from an official-layout
state dict with plain torch ops, following the facts in
``/work/shared/notes/official-code-facts.md`` (no module of mdreg is used, and no official
code was copied). Attention is written out as softmax(q k^T / sqrt(d)) v.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def linear(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def patch_tokens(sd, name, x, patch):
    """Conv with stride = kernel = patch, then (B, N, D) in row-major order."""
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=patch).flatten(2).transpose(1, 2)


def to_image(tokens, patch, channels):
    """(B, h*w, p*p*C) with each patch flattened as (p1, p2, C) -> (B, C, h*p, w*p)."""
    b, n, _ = tokens.shape
    side = math.isqrt(n)
    x = tokens.reshape(b, side, side, patch, patch, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, side * patch, side * patch)


def to_tokens(image, patch):
    b, c, h, w = image.shape
    x = image.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def sinusoid(t, dim):
    """[cos | sin] of t * 10000^(-i/half), i < half."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def self_attention(sd, name, x, heads, qkv_bias="full"):
    """qkv projection -> heads -> softmax attention -> output projection.

    ``qkv_bias``: "full" (one bias of 3D), "none", or "beit" (separate q and v biases, no k bias).
    """
    b, n, d = x.shape
    if qkv_bias == "full":
        bias = sd[f"{name}.qkv.bias"]
    elif qkv_bias == "beit":
        q_bias = sd[f"{name}.q_bias"]
        bias = torch.cat([q_bias, torch.zeros_like(q_bias), sd[f"{name}.v_bias"]])
    else:
        bias = None
    qkv = F.linear(x, sd[f"{name}.qkv.weight"], bias).reshape(b, n, 3, heads, d // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, n, d)
    return linear(sd, f"{name}.proj", out)


def feed_forward(sd, name, x, tanh_gelu):
    h = linear(sd, f"{name}.fc1", x)
    h = F.gelu(h, approximate="tanh" if tanh_gelu else "none")
    return linear(sd, f"{name}.fc2", h)


# -- DiT / MaskDiT ---------------------------------------------------------------------------------
def shift_scale(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def plain_norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def adaln_block(sd, name, x, c, heads):
    mods = linear(sd, f"{name}.adaLN_modulation.1", F.silu(c)).chunk(6, dim=1)
    shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mods
    x = x + gate_a[:, None] * self_attention(sd, f"{name}.attn", shift_scale(plain_norm(x), shift_a, scale_a), heads)
    return x + gate_m[:, None] * feed_forward(sd, f"{name}.mlp", shift_scale(plain_norm(x), shift_m, scale_m), True)


def adaln_linear(sd, name, x, c):
    shift, scale = linear(sd, f"{name}.adaLN_modulation.1", F.silu(c)).chunk(2, dim=1)
    return linear(sd, f"{name}.linear", shift_scale(plain_norm(x), shift, scale))


def time_condition(sd, t):
    h = linear(sd, "t_embedder.mlp.0", sinusoid(t, 256))
    return linear(sd, "t_embedder.mlp.2", F.silu(h))


def count(sd, prefix):
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def dit_forward(sd, x, t, y, heads):
    """Official DiT: embed + fixed positions, c = t_emb + table[y], adaLN-Zero blocks, final layer."""
    patch = sd["x_embedder.proj.weight"].shape[-1]
    tokens = patch_tokens(sd, "x_embedder.proj", x, patch) + sd["pos_embed"]
    c = time_condition(sd, t) + sd["y_embedder.embedding_table.weight"][y]
    for i in range(count(sd, "blocks.")):
        tokens = adaln_block(sd, f"blocks.{i}", tokens, c, heads)
    out = adaln_linear(sd, "final_layer", tokens, c)
    return to_image(out, patch, out.shape[-1] // patch ** 2)


def maskdit_forward(sd, x, t, y_onehot, heads, decoder_heads, ids_shuffle=None, keep=None):
    """Official MaskDiT network (the ``model.`` part, keys without that prefix).

    Masking as the official code does it: tokens get positions, the first ``keep`` of
    ``ids_shuffle`` stay, the decoder appends mask tokens and un-shuffles with the inverse
    permutation; labels are one-hot rows through a bias-free linear map. A network trained
    without the MAE loss has no ``mask_token``: zeros are appended instead.
    """
    patch = sd["x_embedder.proj.weight"].shape[-1]
    tokens = patch_tokens(sd, "x_embedder.proj", x, patch) + sd["pos_embed"]
    b, n, d = tokens.shape
    if ids_shuffle is not None:
        tokens = torch.gather(tokens, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    c = time_condition(sd, t) + F.linear(y_onehot, sd["y_embedder.embedding_table.weight"])
    for i in range(count(sd, "blocks.")):
        tokens = adaln_block(sd, f"blocks.{i}", tokens, c, heads)
    h = adaln_linear(sd, "decoder_layer", tokens, c)
    if ids_shuffle is not None:
        width = h.shape[-1]
        token = sd["mask_token"] if "mask_token" in sd else h.new_zeros(1, 1, width)
        filler = token.expand(b, n - keep, width)
        restore = torch.argsort(ids_shuffle, dim=1)
        h = torch.gather(torch.cat([h, filler], dim=1), 1, restore[:, :, None].expand(-1, -1, width))
    h = h + sd["decoder_pos_embed"]
    for i in range(count(sd, "decoder_blocks.")):
        h = adaln_block(sd, f"decoder_blocks.{i}", h, c, decoder_heads)
    out = adaln_linear(sd, "final_layer", h, c)
    return to_image(out, patch, out.shape[-1] // patch ** 2)


# -- U-ViT (baofff) and maskdm ---------------------------------------------------------------------
def vit_block(sd, name, x, heads, qkv_bias, skip=None):
    if skip is not None:
        x = linear(sd, f"{name}.skip_linear", torch.cat([x, skip], dim=-1))
    x = x + self_attention(sd, f"{name}.attn", F.layer_norm(x, x.shape[-1:], sd[f"{name}.norm1.weight"],
                                                             sd[f"{name}.norm1.bias"]), heads, qkv_bias)
    h = F.layer_norm(x, x.shape[-1:], sd[f"{name}.norm2.weight"], sd[f"{name}.norm2.bias"])
    return x + feed_forward(sd, f"{name}.mlp", h, False)


def long_skip_stack(sd, prefix, x, heads, qkv_bias):
    skips = []
    for i in range(count(sd, f"{prefix}in_blocks.")):
        x = vit_block(sd, f"{prefix}in_blocks.{i}", x, heads, qkv_bias)
        skips.append(x)
    x = vit_block(sd, f"{prefix}mid_block", x, heads, qkv_bias)
    for i in range(count(sd, f"{prefix}out_blocks.")):
        x = vit_block(sd, f"{prefix}out_blocks.{i}", x, heads, qkv_bias, skip=skips.pop())
    return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}norm.weight"], sd[f"{prefix}norm.bias"])


def time_token(sd, prefix, t, dim):
    h = sinusoid(t, dim)
    if f"{prefix}time_embed.0.weight" in sd:
        h = linear(sd, f"{prefix}time_embed.2", F.silu(linear(sd, f"{prefix}time_embed.0", h)))
    return h[:, None]


def uvit_forward(sd, x, t, y, heads):
    """baofff U-ViT: [label?, time, patches] + learned positions, long skips, norm, linear, (conv)."""
    patch = sd["patch_embed.proj.weight"].shape[-1]
    tokens = patch_tokens(sd, "patch_embed.proj", x, patch)
    seq = [time_token(sd, "", t, tokens.shape[-1]), tokens]
    if y is not None:
        seq.insert(0, sd["label_emb.weight"][y][:, None])
    h = torch.cat(seq, dim=1) + sd["pos_embed"]
    qkv_bias = "full" if "mid_block.attn.qkv.bias" in sd else "none"
    out = linear(sd, "decoder_pred", long_skip_stack(sd, "", h, heads, qkv_bias))[:, len(seq) - 1:]
    image = to_image(out, patch, x.shape[1])
    if "final_layer.weight" in sd:
        image = F.conv2d(image, sd["final_layer.weight"], sd["final_layer.bias"], padding=1)
    return image


def maskdm_forward(sd, x, t, heads, mask=None, y=None):
    """jiachenlei/maskdm network (plain or DWT), unconditional unless ``y`` is given.

    ``mask``: bool (B, extras + patch tokens), True = dropped (extras never are). Unmasked:
    the image prediction; masked: the visible tokens' predictions (B, K, values), as the
    official model returns them (for DWT: a (low, high) pair).
    """
    dwt = "encoder.approx_patch_embed.proj.weight" in sd
    embed = "encoder.approx_patch_embed.proj" if dwt else "encoder.patch_embed.proj"
    patch = sd[f"{embed}.weight"].shape[-1]
    low_chans = sd[f"{embed}.weight"].shape[1]
    tokens = patch_tokens(sd, embed, x[:, :low_chans] if dwt else x, patch)
    if dwt:
        tokens = torch.cat([tokens, patch_tokens(sd, "encoder.detail_patch_embed.proj", x[:, low_chans:], patch)], 1)
    seq = [time_token(sd, "encoder.", t, tokens.shape[-1]), tokens]
    if "encoder.label_emb.weight" in sd:
        label = sd["encoder.uncond_embed"].expand(x.shape[0], -1) if y is None else sd["encoder.label_emb.weight"][y]
        seq.insert(0, label[:, None])
    extras = len(seq) - 1
    h = torch.cat(seq, dim=1) + sd["encoder.encoder_pos_embed"]
    if mask is not None:
        h = h[~mask].reshape(h.shape[0], -1, h.shape[-1])
    qkv_bias = "beit" if "encoder.mid_block.attn.q_bias" in sd else "none"
    h = long_skip_stack(sd, "encoder.", h, heads, qkv_bias)[:, extras:]
    if not dwt:
        out = linear(sd, "encoder_to_output", h)
        return to_image(out, patch, x.shape[1]) if mask is None else out
    n_low = tokens.shape[1] // 2 if mask is None else int((~mask[0, extras:extras + tokens.shape[1] // 2]).sum())
    low, high = linear(sd, "approx_to_output", h[:, :n_low]), linear(sd, "detail_to_output", h[:, n_low:])
    if mask is not None:
        return low, high
    return torch.cat([to_image(low, patch, low_chans), to_image(high, patch, x.shape[1] - low_chans)], dim=1)
