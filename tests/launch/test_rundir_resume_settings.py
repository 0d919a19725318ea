"""Resuming a run may change where and how it executes, never what it trains."""
from __future__ import annotations

import pytest

from mdreg.config import load_config
from mdreg.errors import UserError
from mdreg.runs.plan import build_plans
from mdreg.runs.rundir import prepare, write_stage_config
from tests.tiny import write_two_stage_recipe


def _prepared(recipe, overrides):
    plan = build_plans(recipe, overrides)[0]
    prepare(plan)
    return plan


def test_run_settings_may_change_on_resume_and_the_saved_configs_follow(tmp_path, capsys):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    first = _prepared(recipe, [])
    write_stage_config(first, "pretrain")
    again = _prepared(recipe, ["train.num_workers=3", "train.device=cpu"])  # e.g. another machine
    assert again.run_dir == first.run_dir
    for saved in (first.run_dir / "config.yaml", first.run_dir / "pretrain" / "config.yaml"):
        assert load_config(saved).train.num_workers == 3
    assert "resuming with changed run settings (train.num_workers: 0 -> 3)" in capsys.readouterr().out


def test_what_is_trained_may_not_change(tmp_path):
    """More steps extend a run (tests/engine/test_extend_and_resume_logs.py); another masker ratio does not."""
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    first = _prepared(recipe, ["train.run_name=fixed"])
    before = (first.run_dir / "config.yaml").read_bytes()
    with pytest.raises(UserError, match=r"different config \(stages.pretrain.masker.ratio: 0.5 -> 0.75\)"):
        _prepared(recipe, ["train.run_name=fixed", "stages.pretrain.masker.ratio=0.75", "train.num_workers=3"])
    assert (first.run_dir / "config.yaml").read_bytes() == before
