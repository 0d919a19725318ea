"""Stage hand-off: initialise a stage from another stage's final weights.

MaskDM fine-tunes from the masked pre-training's EMA weights (sec. 3.2); MaskDiT's
unmasking tuning continues the masked model (sec. 3.2, "Unmasking tuning"). The source
stage must be complete; tensors whose shapes differ are reported, never silently used.
"""
from __future__ import annotations

from pathlib import Path

from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint
from mdreg.errors import UserError


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


def initial_weights(trainer, spec: dict) -> str:
    """Load the weights ``spec`` names into ``trainer.model`` (and its EMA); return a description."""
    from mdreg.engine.trainer import effective_steps

    if "path" in spec:
        path = Path(spec["path"])
        state = load_checkpoint(path, map_location="cpu")
        weights = state[spec["weights"]] if spec["weights"] in state else state
        source = f"{path} ({spec['weights']})"
    else:
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
        weights = state[spec["weights"]]
        source = f"stage {name!r} {spec['weights']} weights, step {state['step']} ({latest})"
    load_matching(trainer.model, weights, source)
    trainer.ema.model.load_state_dict(trainer.model.state_dict())
    return source


def load_matching(model, weights: dict, source: str) -> None:
    """Load ``weights`` into ``model``; any missing, unexpected or reshaped key is an error."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [f"{k} {tuple(weights[k].shape)} -> {tuple(own[k].shape)}" for k in own
                if k in weights and weights[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing[:10])}")
        if unexpected:
            parts.append(f"unexpected: {', '.join(unexpected[:10])}")
        if reshaped:
            parts.append(f"shape changed: {', '.join(reshaped[:10])}")
        raise UserError(f"cannot initialise from {source}: the model does not match ({'; '.join(parts)})")
    model.load_state_dict(weights)
