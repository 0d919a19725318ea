"""Load official DiT, MaskDiT, U-ViT and maskdm checkpoints into mdreg backbones.

``load_official(path, kind)`` reads the file, picks the EMA (or raw) weights, finds the
network inside whatever wrapper saved it (``model.`` of MaskDiT's EDMPrecond, ``module.``
of DDP, ``_orig_mod.`` of torch.compile, ``model.``/``ema_model.model.`` of maskdm's
GaussianDiffusion and EMA), renames the keys (:mod:`mdreg.models.official_keys`), infers the
architecture from the tensor shapes, builds the backbone and loads it strictly. Any key
that does not line up is reported in one :class:`~mdreg.errors.UserError`.

Head counts cannot be read from weights; they come from the papers' size tables by width
(DiT: 384->6, 768->12, 1024->16, 1152->16; U-ViT/MaskDM: 512->8, 768->12, 1024->16,
1152->16) and can be overridden (``num_heads=...``; ``--arg num_heads=...`` on the command
line). Every mapping is written down in ``docs/official-checkpoints.md``.

Files are read with ``torch.load(weights_only=True)``, allowing ``argparse.Namespace`` (the
``args`` that official MaskDiT and DiT training checkpoints pickle); only files holding other
objects are unpickled in full, with a warning.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mdreg.errors import UserError
from mdreg.models.official_keys import FROM_MDREG, TO_MDREG, StateDict
from mdreg.registry import BACKBONES

# a key every network of the kind has (after its wrapper prefix)
ANCHORS = {"dit": ("x_embedder.proj.weight",), "maskdit": ("x_embedder.proj.weight",),
           "uvit": ("patch_embed.proj.weight",),
           "maskdm": ("encoder.patch_embed.proj.weight", "encoder.approx_patch_embed.proj.weight")}
KINDS = tuple(ANCHORS)
DIT_HEADS = {384: 6, 768: 12, 1024: 16, 1152: 16}
UVIT_HEADS = {512: 8, 768: 12, 1024: 16, 1152: 16}


def check_kind(kind: str) -> None:
    if kind not in ANCHORS:
        raise UserError(f"unknown official checkpoint kind {kind!r}; kinds are {', '.join(KINDS)}")


def safe_globals_for_official_files():
    """``argparse.Namespace`` allowed by ``weights_only`` loading, for this ``with`` block only."""
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    return allow([argparse.Namespace]) if allow else contextlib.nullcontext()


def load_file(path: str | Path) -> dict:
    """The object saved in ``path``: tensors, containers and ``argparse.Namespace`` without running
    code from the file; anything else only after a warning. A file ``torch.load`` cannot read
    at all is a :class:`UserError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"official checkpoint {path} does not exist")
    try:
        with safe_globals_for_official_files():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises anything from EOFError to IndexError on a file it cannot read
        unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsupported is None:
            raise UserError(f"cannot read {path}: not a PyTorch checkpoint ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no details'})") from exc
        warnings.warn(f"{path} holds more than tensors ({unsupported.group(1)}); unpickling it in full, which runs "
                      f"code from the file: load only official releases or files you made", stacklevel=3)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as full_exc:
            raise UserError(f"cannot read {path}: unpickling it failed ({type(full_exc).__name__}: {full_exc}); "
                            f"install the package that defines {unsupported.group(1)} or extract the state "
                            f"dict where the file was written") from full_exc
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict or a training checkpoint")
    return obj


def read_checkpoint(source: str | Path | dict, weights: str = "ema") -> StateDict:
    """The state dict inside ``source`` (a path or a loaded object): ``source[weights]`` for
    training checkpoints (``ema``/``model``), the object itself for plain state dicts."""
    if not isinstance(source, dict):
        source = load_file(source)
    if weights not in ("ema", "model"):
        raise UserError(f"weights must be 'ema' or 'model', got {weights!r}")
    if isinstance(source.get(weights), dict):
        return source[weights]
    if any(isinstance(v, torch.Tensor) for v in source.values()):
        return source
    raise UserError(f"the checkpoint holds no {weights!r} weights (top-level keys: "
                    f"{', '.join(map(str, source))}); pass weights='model' or 'ema' accordingly")


def network_state(sd: StateDict, kind: str, weights: str = "ema") -> StateDict:
    """The network's own keys: wrapper prefixes found through the kind's anchor key, stripped."""
    check_kind(kind)
    sd = {re.sub(r"(^|\.)_orig_mod\.", r"\1", k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    prefixes = sorted({k[: -len(a)] for k in sd for a in ANCHORS[kind] if k.endswith(a) and
                       (not k[: -len(a)] or k[: -len(a)].endswith("."))})
    if not prefixes:
        raise UserError(f"no {kind} network in this checkpoint: none of its keys ends with "
                        f"{' or '.join(ANCHORS[kind])} (first keys: {', '.join(list(sd)[:5])}); is kind right?")
    if len(prefixes) > 1:
        preferred = [p for p in prefixes if ("ema" in p) == (weights == "ema")]
        if len(preferred) != 1:
            raise UserError(f"the checkpoint holds several {kind} networks (prefixes {', '.join(prefixes)}); "
                            f"extract one state dict first")
        prefixes = preferred
    prefix = prefixes[0]
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def to_mdreg(sd: StateDict, kind: str, weights: str = "ema") -> StateDict:
    """Official state dict (any wrapper) -> mdreg key layout."""
    return TO_MDREG[kind](network_state(sd, kind, weights))


def to_official(sd: StateDict, kind: str) -> StateDict:
    """mdreg state dict -> the official network's keys (without a wrapper prefix)."""
    check_kind(kind)
    return FROM_MDREG[kind](sd)


def count_indexed(sd: StateDict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def heads_for(width: int, table: dict[int, int]) -> int | None:
    """The papers' head count for a width (None if the width is not a published size)."""
    return table.get(width)


def infer_dit(sd: StateDict) -> tuple[str, dict[str, Any]]:
    w = sd["x_embedder.proj.weight"]
    hidden, in_chans, patch = w.shape[0], w.shape[1], w.shape[-1]
    side = math.isqrt(sd["pos_embed"].shape[1])
    out = sd["final_layer.linear.weight"].shape[0] // patch ** 2
    kwargs = dict(img_size=side * patch, patch_size=patch, in_chans=in_chans, hidden_size=hidden,
                  depth=count_indexed(sd, "blocks."), num_heads=heads_for(hidden, DIT_HEADS))
    table = sd.get("y_embedder.embedding_table.weight")
    if "decoder_pos_embed" in sd:  # MaskDiT: one-hot Linear (hidden, classes); decoder heads are 16 in the paper
        kwargs.update(num_classes=table.shape[1] if table is not None else 0,
                      decoder_hidden_size=sd["decoder_pos_embed"].shape[-1],
                      decoder_depth=count_indexed(sd, "decoder_blocks."), decoder_num_heads=16,
                      mask_token="mask_token" in sd)  # trained without the MAE loss: no mask token
        return "maskdit", kwargs
    kwargs.update(num_classes=table.shape[0] - 1 if table is not None else 0, learn_sigma=out == 2 * in_chans)
    return "dit", kwargs


def infer_uvit(sd: StateDict) -> tuple[str, dict[str, Any]]:
    w = sd["patch_embed.proj.weight"]
    dim, band_chans, patch = w.shape[0], w.shape[1], w.shape[-1]
    dwt = "patch_embed_high.proj.weight" in sd
    extras = 2 if "label_emb.weight" in sd else 1
    side = math.isqrt(sd["pos_embed"].shape[1] - extras)
    kwargs = dict(img_size=side * patch, patch_size=patch, embed_dim=dim,
                  in_chans=4 * band_chans if dwt else band_chans,
                  depth=2 * count_indexed(sd, "in_blocks.") + 1, num_heads=heads_for(dim, UVIT_HEADS),
                  qkv_bias="mid_block.attn.qkv.bias" in sd, mlp_time_embed="time_embed.0.weight" in sd,
                  num_classes=sd["label_emb.weight"].shape[0] - 1 if extras == 2 else 0)
    if not dwt:
        kwargs["conv"] = "final_layer.weight" in sd
    return ("uvit_dwt" if dwt else "uvit"), kwargs


def check_maskdit_has_decoder(sd: StateDict) -> None:
    """MaskDiT's ``use_decoder=False`` variant (Table 2a's "DiT backbone") is not modelled: say so."""
    if "decoder_pos_embed" not in sd:
        raise UserError("this MaskDiT checkpoint has no decoder (no decoder_pos_embed, decoder_layer.*, "
                        "decoder_blocks.*): it was trained with use_decoder=False, the encoder-only 'DiT backbone' "
                        "of MaskDiT Table 2a, whose one-hot label Linear and DiT final layer mdreg does not model. "
                        "Supported: MaskDiT checkpoints with the decoder (use_decoder=True, as released) with "
                        "kind 'maskdit', and facebookresearch/DiT checkpoints with kind 'dit'")


def infer_backbone(sd: StateDict, kind: str) -> tuple[str, dict[str, Any]]:
    """(registry name, constructor kwargs) of the mdreg backbone that holds ``sd`` (mdreg keys)."""
    if kind == "maskdit":
        check_maskdit_has_decoder(sd)
    return infer_dit(sd) if kind in ("dit", "maskdit") else infer_uvit(sd)


def how_to_pass(names: list[str], cli: bool) -> str:
    """The advice to give arguments ``names``, in the caller's own terms."""
    if cli:
        return f"pass {' '.join(f'--arg {k}=...' for k in names)} to tools/convert.py"
    return f"pass {', '.join(f'{k}=...' for k in names)} to load_official"


def backbone_arguments(sd: StateDict, kind: str, overrides: dict[str, Any], cli: bool = False
                       ) -> tuple[str, dict[str, Any]]:
    """(registry name, every constructor argument) for ``sd``: inferred from the shapes, then
    ``overrides``. ``null_class=False`` (a U-ViT label table without a null row) counts every
    row of ``label_emb`` as a class."""
    backbone, kwargs = infer_backbone(sd, kind)
    if kind == "uvit" and overrides.get("null_class") is False and "label_emb.weight" in sd:
        kwargs["num_classes"] = sd["label_emb.weight"].shape[0]
    kwargs.update(overrides)
    unknown = [k for k, v in kwargs.items() if v is None]
    if unknown:
        raise UserError(f"cannot infer {', '.join(unknown)} of this {kind} checkpoint (width "
                        f"{kwargs.get('hidden_size', kwargs.get('embed_dim'))} is not a published size); "
                        f"{how_to_pass(unknown, cli)}")
    return backbone, kwargs


def check_state_dict(model: nn.Module, sd: StateDict, source: str, cli: bool = False) -> None:
    """One error listing every missing, unexpected and reshaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    reshaped = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
                if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        parts = [f"{label} ({len(keys)}): {', '.join(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape (checkpoint vs model)", reshaped)) if keys]
        check = "--kind and the --arg values" if cli else "kind= and the model arguments"
        raise UserError(f"{source} does not match {type(model).__name__}: " + "; ".join(parts) +
                        f". Check {check} (docs/official-checkpoints.md lists every key)")


def build_official(source: str | Path | dict, kind: str, model: nn.Module | None = None, weights: str = "ema",
                   overrides: dict[str, Any] | None = None, cli: bool = False
                   ) -> tuple[nn.Module, str | None, dict[str, Any]]:
    """:func:`load_official`, also returning the registry name and arguments the backbone was built
    with (None and {} for a given ``model``); ``cli`` phrases advice as ``--arg`` options."""
    check_kind(kind)
    name = str(source) if not isinstance(source, dict) else f"official {kind} state dict"
    sd = to_mdreg(read_checkpoint(source, weights), kind, weights)
    backbone, kwargs = None, {}
    if model is None:
        backbone, kwargs = backbone_arguments(sd, kind, dict(overrides or {}), cli)
        model = BACKBONES.get(backbone)(**kwargs)
    check_state_dict(model, sd, name, cli)
    model.load_state_dict(sd)
    return model, backbone, kwargs


def load_official(source: str | Path | dict, kind: str, model: nn.Module | None = None, weights: str = "ema",
                  **model_kwargs) -> nn.Module:
    """An mdreg backbone holding the weights of official checkpoint ``source``.

    ``kind``: ``dit`` | ``maskdit`` | ``uvit`` (baofff) | ``maskdm`` (jiachenlei, plain or DWT).
    ``weights``: ``ema`` or ``model`` for training checkpoints that hold both. Without
    ``model`` the backbone is built from the inferred architecture, updated by ``model_kwargs``
    (e.g. ``num_heads``, ``null_class=False`` for a U-ViT trained without a null label).
    """
    return build_official(source, kind, model, weights, model_kwargs)[0]
