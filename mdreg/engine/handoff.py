"""Stage hand-off: initialise a stage from another stage's weights or a checkpoint file.

MaskDM fine-tunes from the masked pre-training's weights (sec. 3.2); MaskDiT's unmasking
tuning continues the masked model (sec. 3.2, "Unmasking tuning"). The stage's
:class:`~mdreg.engine.stage.InitFrom` (resolved once, :func:`mdreg.engine.stage.resolve_init`)
names one of

* ``stage=PARENT`` (``weights`` ema or model, ``steps`` N): the parent stage's latest
  checkpoint in the same run directory; the parent must have reached step ``N``;
* ``path``: an mdreg checkpoint (or a bare state dict), given as the file, a ``last`` pointer,
  a ``checkpoints/`` folder, a stage folder or a run directory
  (:func:`~mdreg.engine.checkpoint.find_checkpoint`); any iopath URI works (``https://...``,
  downloaded once into the cache, :mod:`mdreg.io`);
* ``path`` with ``kind`` (``dit``, ``maskdit``, ``uvit``, ``maskdm``): an official release's
  file, read and renamed into mdreg's key layout by :mod:`mdreg.models.official`.

Differences between source and model are handled explicitly, each one logged
(:func:`load_matching`): ``_orig_mod.``/``module.`` prefixes are stripped (torch's
``consume_prefix_in_state_dict_if_present``); a mask token present on one side only is
skipped (the model keeps its own); position tables whose token grid changed (a new
resolution) are resized — learned ones by timm's ``resample_abs_pos_embed`` (bicubic, the
model's ``num_prefix_tokens`` time/label tokens kept as they are), fixed sin-cos ones
(frozen parameters) keep the model's freshly computed table. Any other missing,
unexpected or reshaped key is an error that lists the first few keys of each kind with the
counts, and says which layout the file is in when it is not the model's
(:func:`diagnose_layout`): an official DiT/MaskDiT/U-ViT/maskdm release read without ``kind``
("looks like an official MaskDiT checkpoint ...: add kind='maskdit'"), another backbone, a
container of several state dicts, or a layout mdreg does not know.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from mdreg.engine.checkpoint import CheckpointManager, find_checkpoint, load_checkpoint
from mdreg.engine.parts import StageParts
from mdreg.engine.stage import InitFrom
from mdreg.errors import UserError
from mdreg.io import local_path

PREFIXES = ("_orig_mod.", "module.")  # torch.compile, DDP


def read_source(init: InitFrom, run_dir: Path, stage: str) -> tuple[dict, str, dict]:
    """The weights ``init`` names, a description of where they came from, and (for an earlier
    stage) ``{"from_stage", "from_step"}``: the step its weights were taken at."""
    key = f"stages.{stage}.init_from"
    if init.path is not None:
        path = local_path(init.path, f"{key}.path")
        if init.kind:
            return official_weights(path, init.kind, init.weights), \
                f"{init.path} (official {init.kind} checkpoint, {init.weights})", {}
        file, how = find_checkpoint(path, key)
        state = load_checkpoint(file, map_location="cpu")
        weights = state[init.weights] if init.weights in state else state
        where = str(file) if how == "file" else f"{file}, {how}"
        return weights, f"{where} ({init.weights})", {}
    parent, needed = init.stage, init.steps
    folder = run_dir / parent / "checkpoints"
    latest = CheckpointManager(folder).latest()
    if latest is None:
        raise UserError(f"stage {stage!r} starts from stage {parent!r}, which has no checkpoint in {folder}; "
                        f"run {parent!r} first")
    state = load_checkpoint(latest, map_location="cpu")
    if int(state["step"]) < needed:
        raise UserError(f"stage {stage!r} starts from stage {parent!r}, which stopped at step "
                        f"{state['step']}/{needed}; finish it first (relaunch the same command)")
    return (state[init.weights], f"stage {parent!r} {init.weights} weights, step {state['step']} ({latest})",
            {"from_stage": parent, "from_step": int(state["step"])})


def official_weights(path: Path, kind: str, weights: str) -> dict:
    """The ``weights`` (``ema``/``model``) of official checkpoint ``path`` in mdreg's key layout."""
    from mdreg.models.official import read_checkpoint, to_mdreg

    return to_mdreg(read_checkpoint(path, weights), kind, weights)


def apply_handoff(parts: StageParts, run_dir: Path) -> tuple[str, list[str], dict]:
    """Load the weights ``parts.stage.init_from`` names into the model and its EMA; returns
    (description, notes on every adapted key, where an earlier stage's weights came from)."""
    weights, source, origin = read_source(parts.stage.init_from, run_dir, parts.name)
    notes = load_matching(parts.model, weights, source)
    parts.ema.model.load_state_dict(parts.model.state_dict())
    return source, notes, origin


def strip_prefixes(state: dict) -> dict:
    """A copy of ``state`` without DDP/compile key prefixes (in either nesting order)."""
    state = dict(state)
    for _ in PREFIXES:
        for prefix in PREFIXES:
            consume_prefix_in_state_dict_if_present(state, prefix)
    return state


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def is_mask_token(key: str) -> bool:
    return "mask_token" in _leaf(key)


def is_pos_embed(key: str) -> bool:
    return "pos_embed" in _leaf(key)


def resize_pos_embed(src: torch.Tensor, shape: torch.Size, prefix: int) -> torch.Tensor | None:
    """A learned (1, N, D) table resized to ``shape`` on its square token grid, the first
    ``prefix`` (time/label) tokens kept; None when the two tables do not fit that layout."""
    if src.ndim != 3 or len(shape) != 3 or src.shape[0] != 1 or src.shape[-1] != shape[-1]:
        return None
    old, new = math.isqrt(src.shape[1] - prefix), math.isqrt(shape[1] - prefix)
    if old * old != src.shape[1] - prefix or new * new != shape[1] - prefix or not old or not new:
        return None
    return resample_abs_pos_embed(src, [new, new], [old, old], num_prefix_tokens=prefix, interpolation="bicubic",
                                  antialias=False)


def load_matching(model: torch.nn.Module, weights: dict, source: str) -> list[str]:
    """Load ``weights`` into ``model`` with the adaptations of the module docstring;
    returns one note per adapted key; raises UserError listing every other mismatch."""
    weights = strip_prefixes(weights)
    own = model.state_dict()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    merged, notes, missing, unexpected, reshaped = {}, [], [], [], []
    for key, value in own.items():
        if key not in weights:
            if is_mask_token(key):
                notes.append(f"{key}: not in the source, kept the model's own initialisation")
                merged[key] = value
            else:
                missing.append(key)
            continue
        theirs = weights[key]
        if theirs.shape == value.shape:
            merged[key] = theirs
        elif is_pos_embed(key) and key not in trainable:
            notes.append(f"{key}: fixed sin-cos table recomputed for {tuple(value.shape)} "
                         f"(source had {tuple(theirs.shape)})")
            merged[key] = value
        elif is_pos_embed(key) and (resized := resize_pos_embed(theirs, value.shape, prefix)) is not None:
            notes.append(f"{key}: learned table interpolated (bicubic, first {prefix} token(s) kept) "
                         f"{tuple(theirs.shape)} -> {tuple(value.shape)}")
            merged[key] = resized
        else:
            reshaped.append(f"{key} {tuple(theirs.shape)} -> {tuple(value.shape)}")
    for key in weights:
        if key not in own:
            if is_mask_token(key):
                notes.append(f"{key}: only in the source (this model has no mask token), skipped")
            else:
                unexpected.append(key)
    if missing or unexpected or reshaped:
        parts = [f"{label}: {_few(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape changed", reshaped)) if keys]
        layout = diagnose_layout(own, weights, model)
        if layout:
            raise UserError(f"cannot initialise from {source}: {layout} ({len(missing)} of the model's {len(own)} "
                            f"keys missing, {len(unexpected)} unexpected; {'; '.join(parts)})")
        raise UserError(f"cannot initialise from {source}: the model does not match ({'; '.join(parts)}): another "
                        f"model size or configuration")
    model.load_state_dict(merged)
    return notes


SHOWN = 5  # keys named per list in an error


def _few(keys: list[str], shown: int = SHOWN) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _like(keys: list[str], shown: int = 3) -> str:
    return ", ".join(keys[:shown]) + (", ..." if len(keys) > shown else "")


# the network a key list holds, by a key every network of the family has (maskdm first: its
# anchor ends like U-ViT's); mdreg's own DiT/MaskDiT/U-ViT keys are the official ones (identity)
_ANCHORS = (("maskdm", "encoder.patch_embed.proj.weight"), ("maskdm", "encoder.approx_patch_embed.proj.weight"),
            ("DiT", "x_embedder.proj.weight"), ("U-ViT", "patch_embed.proj.weight"))
_KIND = {"DiT": "dit", "MaskDiT": "maskdit", "U-ViT": "uvit", "maskdm": "maskdm"}


def network_of(keys) -> tuple[str | None, str]:
    """(family, wrapper prefix) of the network in a list of keys: ``("MaskDiT", "model.")`` for
    an official MaskDiT file (its EDMPrecond wrapper), ``("U-ViT", "")`` for mdreg's U-ViT;
    ``(None, "")`` when no known network's key is there."""
    keys = list(keys)
    for family, anchor in _ANCHORS:
        for key in keys:
            prefix = key[: -len(anchor)]
            if key.endswith(anchor) and (not prefix or prefix.endswith(".")):
                if family == "DiT" and f"{prefix}decoder_pos_embed" in keys:
                    family = "MaskDiT"
                return family, prefix
    return None, ""


def diagnose_layout(own: dict, weights: dict, model: torch.nn.Module) -> str | None:
    """Why ``weights`` is in another key layout than ``model`` expects (an official release read
    without ``kind``, another backbone, a container of several state dicts, a layout mdreg does
    not know), with the fix; None when the layouts agree and only sizes or options differ."""
    from mdreg.registry import ref_of

    label = ref_of(type(model)) or type(model).__name__
    expected = f"the model ({label}) expects mdreg's layout ({_like(list(own))})"
    tensors = [k for k, v in weights.items() if isinstance(v, torch.Tensor)]
    if not tensors:
        nested = [str(k) for k, v in weights.items() if isinstance(v, dict)]
        return (f"the file holds no weights at its top level but {_few(nested or list(map(str, weights)))}: choose "
                f"the entry with init_from weights=... (mdreg's training checkpoints hold 'model' and 'ema'); "
                f"{expected}")
    theirs, prefix = network_of(tensors)
    ours, _ = network_of(own)
    if theirs is not None and (theirs == "maskdm" or prefix):
        where = f"its network under '{prefix}'" if prefix else "keys like " + _like(tensors)
        return (f"the file looks like an official {theirs} checkpoint ({where}): add kind='{_KIND[theirs]}' to "
                f"init_from (dict(path=..., kind='{_KIND[theirs]}')), which reads and renames that layout; {expected}")
    if theirs is not None and ours is not None and theirs.replace("Mask", "") != ours.replace("Mask", ""):
        return f"the file holds a {theirs} network ({_like(tensors)}) but {expected}: another backbone"
    if len(set(own) & set(tensors)) < len(own) / 2:
        found = f"{theirs} keys under '{prefix}'" if theirs else "a layout mdreg does not know"
        return f"the file's keys are {found} ({_like(tensors)}) but {expected}"
    return None
