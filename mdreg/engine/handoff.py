"""Stage hand-off: initialise a stage from another stage's weights or a checkpoint file.

MaskDM fine-tunes from the masked pre-training's EMA weights (sec. 3.2); MaskDiT's
unmasking tuning continues the masked model (sec. 3.2, "Unmasking tuning"). A stage's
``init_from`` is one of

* a stage name or ``"previous"`` (its final EMA weights), or ``dict(stage=NAME,
  weights="ema"|"model")``: the source stage must be complete;
* ``dict(path=FILE, weights="ema"|"model")``: an mdreg checkpoint file (or a bare state
  dict);
* ``dict(path=FILE, kind="dit"|"maskdit"|"uvit"|"maskdm", weights="ema"|"model")``: an
  official release's file, read and renamed into mdreg's key layout by
  :mod:`mdreg.models.official` (the file's ``weights`` entry where it holds both, as
  ``load_official`` does); everything below applies to the result.

Differences between source and model are handled explicitly, each one logged
(:func:`load_matching`): ``_orig_mod.``/``module.`` prefixes are stripped; a mask token
present on one side only is skipped (the model keeps its own); position embeddings whose
token grid changed (a new resolution) are resized — learned ones by bicubic interpolation
on the 2-D grid (extra tokens such as U-ViT's time/label tokens are kept), fixed sin-cos
ones (buffers or frozen parameters) keep the model's freshly computed table. Any other
missing, unexpected or reshaped key is an error that lists the keys.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint
from mdreg.engine.wrap import strip_prefixes
from mdreg.errors import UserError

OFFICIAL_KINDS = ("dit", "maskdit", "uvit", "maskdm")


def source_stage(trainer, name: str) -> str:
    names = list(trainer.cfg.stages.keys())
    if name == "previous":
        index = names.index(trainer.name)
        if index == 0:
            raise UserError(f"stages.{trainer.name}.init_from='previous' but {trainer.name!r} is the first stage")
        return names[index - 1]
    if name not in names:
        raise UserError(f"stages.{trainer.name}.init_from names stage {name!r}, which the recipe does not have "
                        f"(stages: {', '.join(names)})")
    return name


def official_weights(path: Path, kind: str, weights: str) -> dict:
    """The ``weights`` (``ema``/``model``) of official checkpoint ``path`` in mdreg's key layout."""
    from mdreg.models.official import read_checkpoint, to_mdreg

    if kind not in OFFICIAL_KINDS:
        raise UserError(f"init_from.kind={kind!r} is not an official checkpoint kind ({', '.join(OFFICIAL_KINDS)})")
    return to_mdreg(read_checkpoint(path, weights), kind, weights)


def read_source(trainer, spec: dict) -> tuple[dict, str]:
    """The weights ``spec`` names and a description of where they came from."""
    from mdreg.engine.trainer import effective_steps

    if "path" in spec:
        path = Path(spec["path"])
        if spec.get("kind"):
            return (official_weights(path, spec["kind"], spec["weights"]),
                    f"{path} (official {spec['kind']} checkpoint, {spec['weights']})")
        state = load_checkpoint(path, map_location="cpu")
        weights = state[spec["weights"]] if spec["weights"] in state else state
        return weights, f"{path} ({spec['weights']})"
    name = source_stage(trainer, spec["stage"])
    folder = trainer.dir.parent / name / "checkpoints"
    latest = CheckpointManager(folder).latest()
    needed = effective_steps(trainer.cfg, name)
    if latest is None:
        raise UserError(f"stage {trainer.name!r} starts from stage {name!r}, which has no checkpoint in {folder}; "
                        f"run {name!r} first")
    state = load_checkpoint(latest, map_location="cpu")
    if int(state["step"]) < needed:
        raise UserError(f"stage {trainer.name!r} starts from stage {name!r}, which stopped at step "
                        f"{state['step']}/{needed}; finish it first (relaunch the same command)")
    return state[spec["weights"]], f"stage {name!r} {spec['weights']} weights, step {state['step']} ({latest})"


def initial_weights(trainer, spec: dict) -> tuple[str, list[str]]:
    """Load the weights ``spec`` names into ``trainer.model`` and its EMA; returns
    (description, notes on every adapted key)."""
    weights, source = read_source(trainer, spec)
    notes = load_matching(trainer.model, weights, source)
    trainer.ema.model.load_state_dict(trainer.model.state_dict())
    return source, notes


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def is_mask_token(key: str) -> bool:
    return "mask_token" in _leaf(key)


def is_pos_embed(key: str) -> bool:
    return "pos_embed" in _leaf(key)


def _square(n: int) -> int | None:
    root = math.isqrt(n)
    return root if root > 0 and root * root == n else None


def resize_pos_embed(src: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """Bicubic resize of a learned (…, N, D) table to ``shape``; extra leading tokens
    (time/label) are kept. None when the two tables do not share a square-grid layout."""
    if src.ndim != len(shape) or src.shape[-1] != shape[-1] or src.shape[:-2] != shape[:-2]:
        return None
    n_src, n_dst = src.shape[-2], shape[-2]
    for extra in range(0, min(n_src, n_dst, 9)):
        g_src, g_dst = _square(n_src - extra), _square(n_dst - extra)
        if g_src and g_dst:
            lead = src.shape[:-2]
            flat = src.reshape(-1, n_src, src.shape[-1])
            grid = flat[:, extra:].reshape(-1, g_src, g_src, src.shape[-1]).permute(0, 3, 1, 2).float()
            grid = F.interpolate(grid, size=(g_dst, g_dst), mode="bicubic", align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(-1, g_dst * g_dst, src.shape[-1]).to(src.dtype)
            return torch.cat([flat[:, :extra], grid], dim=1).reshape(*lead, n_dst, src.shape[-1])
    return None


def load_matching(model: torch.nn.Module, weights: dict, source: str) -> list[str]:
    """Load ``weights`` into ``model`` with the adaptations of the module docstring;
    returns one note per adapted key; raises UserError listing every other mismatch."""
    weights = strip_prefixes(weights)
    own = model.state_dict()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
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
        elif is_pos_embed(key) and (resized := resize_pos_embed(theirs, value.shape)) is not None:
            notes.append(f"{key}: learned table interpolated (bicubic) {tuple(theirs.shape)} -> {tuple(value.shape)}")
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
        parts = [f"{label}: {', '.join(keys[:12])}{' ...' if len(keys) > 12 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape changed", reshaped))
                 if keys]
        raise UserError(f"cannot initialise from {source}: the model does not match ({'; '.join(parts)})")
    model.load_state_dict(merged)
    return notes
