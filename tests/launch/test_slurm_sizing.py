"""What a Slurm job is given beyond its launch section (mdreg/launch/slurm/sizing.py): memory
from the model size, a preemption lead that fits the checkpoint write, and short limits."""
from __future__ import annotations

import pytest

from mdreg.engine.parts import meta_model
from mdreg.errors import UserError
from mdreg.launch.slurm.settings import slurm_settings
from mdreg.launch.slurm.sizing import STEP_ALLOWANCE_S, largest_checkpoint, sized
from mdreg.runs.plan import build_plans
from tests.tiny import REPO

TINY = ["model.embed_dim=32", "model.depth=3"]


def _sized(recipe: str, overrides: list[str], **flags):
    (plan,) = build_plans(REPO / "recipes" / recipe, overrides)
    return plan, sized(slurm_settings(plan.cfg, flags), [plan])


def test_memory_is_estimated_and_a_short_lead_is_raised_to_the_allowance():
    plan, (res, notes) = _sized("quickstart.py", TINY, mem_gb=None, timeout_min=60)
    parameters = sum(p.numel() for p in meta_model(plan.cfg.model).parameters())
    assert largest_checkpoint([plan]) == 16 * parameters  # weights, EMA and AdamW's two moments in fp32
    assert res.mem_gb >= 6 and any(n.startswith("memory: ") for n in notes)
    assert res.signal_delay_s >= STEP_ALLOWANCE_S


def test_a_one_minute_test_job_keeps_its_lead_and_says_so():
    _, (res, notes) = _sized("quickstart.py", [*TINY, "launch.slurm.signal_delay_s=5"], timeout_min=1)
    assert res.signal_delay_s == 5
    assert any("5 s before the time limit, as set" in n for n in notes), notes


def test_a_checkpoint_too_large_to_write_within_the_limit_is_an_error():
    with pytest.raises(UserError, match=r"takes about \d+ s to write twice, but the time limit is 1 min; raise --time"):
        _sized("dit_in256.py", ["launch.slurm.signal_delay_s=5"], timeout_min=1)
