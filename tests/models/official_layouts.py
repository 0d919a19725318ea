"""Official state-dict layouts written down from the facts in official-code-facts.md.

``*_keys`` give the documented key lists; ``official_layout`` renames an mdreg state dict
into the official layout by those facts (independently of mdreg.models.official_keys), so
tests can build official checkpoints synthetically.
"""
from __future__ import annotations

import torch


def with_params(prefix: str, names, bias: bool = True) -> set[str]:
    suffixes = ("weight", "bias") if bias else ("weight",)
    return {f"{prefix}{n}.{s}" for n in names for s in suffixes}


def dit_block_keys(prefix: str) -> set[str]:
    return with_params(prefix, ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"))


def dit_keys(depth: int, labels: bool = True) -> set[str]:
    """facebookresearch/DiT, no prefix."""
    keys = {"pos_embed"} | with_params("", ("x_embedder.proj", "t_embedder.mlp.0", "t_embedder.mlp.2",
                                            "final_layer.linear", "final_layer.adaLN_modulation.1"))
    if labels:
        keys.add("y_embedder.embedding_table.weight")
    for i in range(depth):
        keys |= dit_block_keys(f"blocks.{i}.")
    return keys


def maskdit_keys(depth: int, decoder_depth: int) -> set[str]:
    """Anima-Lab/MaskDiT's network (inside EDMPrecond, where every key gets ``model.``)."""
    keys = dit_keys(depth) | {"decoder_pos_embed", "mask_token"}
    keys |= with_params("", ("decoder_layer.linear", "decoder_layer.adaLN_modulation.1"))
    for i in range(decoder_depth):
        keys |= dit_block_keys(f"decoder_blocks.{i}.")
    return keys


def vit_block_keys(prefix: str, qkv_bias: str, skip: bool) -> set[str]:
    names = ("norm1", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2") + (("skip_linear",) if skip else ())
    keys = with_params(prefix, names)
    keys.add(f"{prefix}attn.qkv.weight")
    if qkv_bias == "full":
        keys.add(f"{prefix}attn.qkv.bias")
    elif qkv_bias == "beit":
        keys |= {f"{prefix}attn.q_bias", f"{prefix}attn.v_bias"}
    return keys


def uvit_stack_keys(prefix: str, half: int, qkv_bias: str) -> set[str]:
    keys = with_params(prefix, ("norm",)) | vit_block_keys(f"{prefix}mid_block.", qkv_bias, False)
    for i in range(half):
        keys |= vit_block_keys(f"{prefix}in_blocks.{i}.", qkv_bias, False)
        keys |= vit_block_keys(f"{prefix}out_blocks.{i}.", qkv_bias, True)
    return keys


def uvit_keys(half: int, qkv_bias: bool = False, labels: bool = False, time_mlp: bool = False,
              conv: bool = False) -> set[str]:
    """baofff/U-ViT, no prefix."""
    keys = {"pos_embed"} | with_params("", ("patch_embed.proj", "decoder_pred")) | \
        uvit_stack_keys("", half, "full" if qkv_bias else "none")
    keys |= with_params("", ("time_embed.0", "time_embed.2")) if time_mlp else set()
    keys |= {"label_emb.weight"} if labels else set()
    keys |= with_params("", ("final_layer",)) if conv else set()
    return keys


def maskdm_keys(half: int, dwt: bool = False, qkv_bias: bool = False) -> set[str]:
    """jiachenlei/maskdm MaskedUViT / MaskedDWTUViT with a linear decoder, unconditional."""
    keys = {"encoder.encoder_pos_embed"} | uvit_stack_keys("encoder.", half, "beit" if qkv_bias else "none")
    if dwt:
        keys |= with_params("", ("encoder.approx_patch_embed.proj", "encoder.detail_patch_embed.proj",
                                 "approx_to_output", "detail_to_output"))
    else:
        keys |= with_params("", ("encoder.patch_embed.proj", "encoder_to_output"))
    return keys


def official_layout(kind: str, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an mdreg state dict into the official network layout (facts only)."""
    if kind in ("dit", "maskdit", "uvit"):
        return dict(sd)
    dwt = "pos_embed_high" in sd
    out = {}
    for key, value in sd.items():
        if key == "pos_embed":
            out["encoder.encoder_pos_embed"] = torch.cat([value, sd["pos_embed_high"]], 1) if dwt else value
        elif key == "pos_embed_high":
            continue
        elif key.endswith("attn.qkv.bias"):
            q, _, v = value.chunk(3)
            out["encoder." + key.replace("qkv.bias", "q_bias")] = q
            out["encoder." + key.replace("qkv.bias", "v_bias")] = v
        elif key.startswith("patch_embed."):
            out[("encoder.approx_" if dwt else "encoder.") + key] = value
        elif key.startswith("patch_embed_high."):
            out["encoder.detail_patch_embed." + key[len("patch_embed_high."):]] = value
        elif key.startswith("decoder_pred_high."):
            out["detail_to_output." + key[len("decoder_pred_high."):]] = value
        elif key.startswith("decoder_pred."):
            out[("approx_to_output." if dwt else "encoder_to_output.") + key[len("decoder_pred."):]] = value
        elif key == "label_emb.weight":
            out["encoder.label_emb.weight"], out["encoder.uncond_embed"] = value[:-1], value[-1:]
        else:
            out["encoder." + key] = value
    return out
