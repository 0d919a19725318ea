"""A stage's settings are checked when the launcher plans the run, before anything is
submitted or trained, with the same checks the stage applies when it is built."""
from __future__ import annotations

import pytest

from mdreg.errors import ConfigError
from mdreg.runs.plan import build_plans
from tests.tiny import REPO

QUICK = REPO / "recipes" / "quickstart.py"


@pytest.mark.parametrize("override,message", [
    ("stages.pretrain.steps=0", "stages.pretrain: building stage:train failed: steps, batch_size and grad_accum must be >= 1 (got 0, 64, 1)"),
    ("stages.pretrain.grad_accum=3", "stages.pretrain: building stage:train failed: batch_size 64 is not divisible by grad_accum 3"),
    ("stages.finetune.precision=fp8", "stages.finetune: building stage:train failed: precision must be one of fp32, bf16, fp16, got 'fp8'"),
    ("stages.pretrain.ema.decay=1.0", "stages.pretrain: building stage:train failed: ema needs 0 <= decay < 1"),
    ("+stages.pretrain.ema.dekay=0.5", "stages.pretrain: building stage:train failed: ema has unknown keys ['dekay'] (allowed: decay, every, start)"),
    ("stages.finetune.init_from=[pretrain]", "stages.finetune.init_from=['pretrain']: give null, 'previous', a stage "
                                             "name, a checkpoint path"),
    ("train=null", "train is null, but it must be a mapping"),
    ("stages.pretrain=null", "stages.pretrain is null, not a stage; drop a stage with ~stages.pretrain"),
])
def test_bad_stage_settings_fail_at_planning_naming_the_stage(override, message):
    with pytest.raises(ConfigError) as info:
        build_plans(QUICK, [override])
    assert message in str(info.value)


def test_the_stage_itself_applies_the_same_checks():
    from mdreg.config import instantiate, load_recipe

    cfg = load_recipe(QUICK)
    cfg.stages.pretrain.ema.decay = 1.0
    with pytest.raises(ConfigError, match="stages.pretrain: building stage:train failed: ema needs 0 <= decay < 1"):
        instantiate(cfg.stages.pretrain, key="stages.pretrain")


def test_init_from_takes_a_name_or_a_mapping_from_the_command_line():
    """``init_from`` is annotated ``Any``: a mapping may replace a name without ``++``."""
    plan = build_plans(QUICK, ["stages.finetune.init_from={stage:pretrain,weights:model}"])[0]
    assert dict(plan.cfg.stages.finetune.init_from) == {"stage": "pretrain", "weights": "model"}
    assert [(s.name, s.parent) for s in plan.stages] == [("pretrain", None), ("finetune", "pretrain")]
    with pytest.raises(ConfigError, match="stages.pretrain.grad_clip expects a number"):  # typed keys stay typed
        build_plans(QUICK, ["stages.pretrain.grad_clip=big"])
