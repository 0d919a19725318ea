"""Key mappings between official checkpoints and mdreg backbones (docs/official-checkpoints.md).

mdreg names its parameters like the official code wherever it can, so most mappings are
the identity once the checkpoint's wrapper prefix is stripped:

* ``dit`` (facebookresearch/DiT): identity.
* ``maskdit`` (Anima-Lab/MaskDiT, keys under ``model.``): identity; a checkpoint trained
  without the MAE loss has no ``mask_token`` (the official model then uses zeros) and loads
  into ``maskdit(mask_token=False)``, which does the same.
* ``uvit`` (baofff/U-ViT): identity.
* ``maskdm`` (jiachenlei/maskdm, network under ``encoder.``): renamed, see
  :data:`MASKDM_RENAMES`; the BEiT-style ``attn.q_bias``/``attn.v_bias`` become
  ``attn.qkv.bias = [q_bias, 0, v_bias]`` (a key bias never changes attention, so the
  zero is exact); ``encoder.uncond_embed`` becomes the null row of ``label_emb``; the
  DWT model's joint position table is split into ``pos_embed`` (label/time tokens + low
  band) and ``pos_embed_high``.

Each mapping has an inverse (mdreg -> official) used by ``tools/convert.py --to official``.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor
StateDict = dict[str, Tensor]

# official maskdm prefix -> mdreg prefix, first match wins (position tables are handled separately)
MASKDM_RENAMES = (
    ("encoder_to_output.", "decoder_pred."),
    ("encoder.", ""),
)
MASKDM_DWT_RENAMES = (
    ("encoder.approx_patch_embed.", "patch_embed."),
    ("encoder.detail_patch_embed.", "patch_embed_high."),
    ("approx_to_output.", "decoder_pred."),
    ("detail_to_output.", "decoder_pred_high."),
    ("encoder.", ""),
)
MASKDM_POS = "encoder.encoder_pos_embed"


def rename_prefix(key: str, renames: tuple[tuple[str, str], ...], reverse: bool = False) -> str:
    for official, ours in renames:
        src, dst = (ours, official) if reverse else (official, ours)
        if key.startswith(src):
            return dst + key[len(src):]
    return key


def is_maskdm_dwt(official: StateDict) -> bool:
    return "encoder.approx_patch_embed.proj.weight" in official


def maskdm_to_mdreg(sd: StateDict) -> StateDict:
    dwt = is_maskdm_dwt(sd)
    renames = MASKDM_DWT_RENAMES if dwt else MASKDM_RENAMES
    out: StateDict = {}
    for key, value in sd.items():
        if key.endswith("attn.v_bias") or key in ("encoder.uncond_embed", MASKDM_POS):
            continue
        if key.endswith("attn.q_bias"):
            stem = key[: -len("q_bias")]
            out[rename_prefix(stem, renames) + "qkv.bias"] = torch.cat([value, torch.zeros_like(value),
                                                                        sd[stem + "v_bias"]])
        else:
            out[rename_prefix(key, renames)] = value
    if "encoder.uncond_embed" in sd:
        out["label_emb.weight"] = torch.cat([sd["encoder.label_emb.weight"], sd["encoder.uncond_embed"]])
    if MASKDM_POS in sd:
        joint = sd[MASKDM_POS]
        if dwt:  # [label?, time, low-band tokens | high-band tokens]; the two bands have equal token counts
            extras = 2 if "encoder.label_emb.weight" in sd else 1
            split = extras + (joint.shape[1] - extras) // 2
            out["pos_embed"], out["pos_embed_high"] = joint[:, :split], joint[:, split:]
        else:
            out["pos_embed"] = joint
    return out


def maskdm_from_mdreg(sd: StateDict) -> StateDict:
    dwt = "pos_embed_high" in sd
    renames = MASKDM_DWT_RENAMES if dwt else MASKDM_RENAMES
    out: StateDict = {}
    for key, value in sd.items():
        if key in ("pos_embed", "pos_embed_high"):
            continue
        if key.endswith("attn.qkv.bias"):  # the key bias is dropped: it never changes attention
            q, _, v = value.chunk(3)
            stem = rename_prefix(key[: -len("qkv.bias")], renames, reverse=True)
            out[stem + "q_bias"], out[stem + "v_bias"] = q, v
        elif key == "label_emb.weight":
            out["encoder.label_emb.weight"], out["encoder.uncond_embed"] = value[:-1], value[-1:]
        else:
            out[rename_prefix(key, renames, reverse=True)] = value
    if "pos_embed" in sd:
        out[MASKDM_POS] = torch.cat([sd["pos_embed"], sd["pos_embed_high"]], dim=1) if dwt else sd["pos_embed"]
    return out


def identity(sd: StateDict) -> StateDict:
    return dict(sd)


TO_MDREG = {"dit": identity, "maskdit": identity, "uvit": identity, "maskdm": maskdm_to_mdreg}
FROM_MDREG = {"dit": identity, "maskdit": identity, "uvit": identity, "maskdm": maskdm_from_mdreg}
