"""``stages.NAME.on_nonfinite``: skipped steps, the in-a-row limit, and exact resume across a skip.

The objective ``test_nan_steps`` (tests/engine/objectives.py) makes the loss (or only the
gradient) NaN at chosen trainer steps, read from the step-keyed generator, so an
interrupted and resumed run meets the same NaN steps as an uninterrupted one.
"""
from __future__ import annotations

import json

import pytest
import torch

from mdreg.engine.checkpoint import load_checkpoint
from mdreg.engine.trainer import TrainingDiverged
from tests.conftest import final_state, make_trainer


def _overrides(nan_steps, mode="loss", skip=True, max_in_row=3, run="run"):
    out = [f"+stages.main.objective.steps={list(nan_steps)}", f"+stages.main.objective.mode={mode}",
           f"train.run_name={run}", f"+stages.main.max_skips_in_row={max_in_row}"]
    return out + (["+stages.main.on_nonfinite=skip_step"] if skip else [])


def _snapshot(trainer) -> dict:
    """Model, EMA and AdamW moments, flattened to name -> tensor copy."""
    parts = trainer.parts
    out = {f"model.{k}": v.clone() for k, v in parts.model.state_dict().items()}
    out.update({f"ema.{k}": v.clone() for k, v in parts.ema.model.state_dict().items()})
    out.update({f"adam.{i}.{k}": v.clone() for i, s in parts.optimizer.state.items()
                for k, v in s.items() if torch.is_tensor(v)})
    return out


def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def _records(trainer) -> list[dict]:
    return [json.loads(line) for line in (trainer.dir / "metrics.jsonl").read_text().splitlines()]


def _stop_at(trainer, step):
    step_fn = trainer.train_step

    def stepping(x, y):
        out = step_fn(x, y)
        if trainer.step == step:
            trainer.request_stop()
        return out
    trainer.train_step = stepping


@pytest.mark.parametrize("mode", ["loss", "grad"])
def test_skipped_steps_leave_weights_ema_and_adam_untouched_and_are_counted(recipe_factory, mode):
    recipe = recipe_factory(objective="test_nan_steps", steps=8, ckpt_every=2, log_every=2)
    trainer = make_trainer(recipe, _overrides([4, 5], mode) + ["train.keep_last=10"])
    seen = {}
    step_fn = trainer.train_step

    def observed(x, y):
        before = _snapshot(trainer)
        out = step_fn(x, y)
        after = _snapshot(trainer)
        seen[trainer.step] = (out.skipped, _equal(before, after))
        return out
    trainer.train_step = observed
    assert trainer.fit()["complete"]

    assert {s: skipped for s, (skipped, _) in seen.items() if skipped} == {4: True, 5: True}
    assert all(unchanged for skipped, unchanged in seen.values() if skipped)  # weights, EMA, AdamW moments
    assert not any(unchanged for s, (skipped, unchanged) in seen.items() if not skipped and s > 1)
    assert all(torch.isfinite(v).all() for v in final_state(trainer).values())

    records = _records(trainer)
    skips = [(r["step"], r["in_row"]) for r in records if r.get("event") == "skipped_step"]
    assert skips == [(4, 1), (5, 2)]
    assert {r["step"]: r["skipped_steps"] for r in records if "skipped_steps" in r} == {2: 0, 4: 1, 6: 2, 8: 2}
    folder = trainer.dir / "checkpoints"
    assert load_checkpoint(folder / "step_00000004.pt")["nonfinite"] == {"total": 1, "in_row": 1}
    assert load_checkpoint(folder / "step_00000008.pt")["nonfinite"] == {"total": 2, "in_row": 0}


def test_the_default_stops_at_the_first_nan(recipe_factory):
    recipe = recipe_factory(objective="test_nan_steps", steps=8, ckpt_every=2)
    trainer = make_trainer(recipe, _overrides([4], skip=False))
    with pytest.raises(TrainingDiverged, match="NaN/inf at step 4.*on_nonfinite=skip_step"):
        trainer.fit()


def test_too_many_skips_in_a_row_stop_naming_the_stage_and_the_last_good_checkpoint(recipe_factory):
    recipe = recipe_factory(objective="test_nan_steps", steps=10, ckpt_every=2, log_every=2)
    trainer = make_trainer(recipe, _overrides([3, 5, 6, 7], max_in_row=3))
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    message = str(info.value)
    print(message)
    assert "stage 'main': 3 optimizer steps in a row (up to step 7)" in message
    assert "stages.main.max_skips_in_row=3" in message
    good = trainer.dir / "checkpoints" / "step_00000006.pt"
    assert f"the last good checkpoint is {good}" in message
    folder = trainer.dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last", "step_00000004.pt", "step_00000006.pt"]
    assert all(torch.isfinite(v).all() for v in load_checkpoint(good)["model"].values())
    records = _records(trainer)
    assert [r["step"] for r in records if r.get("event") == "skipped_step"] == [3, 5, 6, 7]
    assert {"event": "diverged", "step": 7}.items() <= records[-1].items()


def test_a_run_interrupted_right_after_a_skip_resumes_to_the_same_weights(recipe_factory):
    recipe = recipe_factory(objective="test_nan_steps", steps=7, ckpt_every=0, masker="patch", ratio=0.5,
                            hflip=0.5)
    reference = make_trainer(recipe, _overrides([3, 6], run="reference"))
    reference.fit()

    stopped = make_trainer(recipe, _overrides([3, 6], run="stopped"))
    _stop_at(stopped, 3)
    assert stopped.fit()["step"] == 3
    assert load_checkpoint(stopped.last_good)["nonfinite"] == {"total": 1, "in_row": 1}
    resumed = make_trainer(recipe, _overrides([3, 6], run="stopped"))
    assert resumed.fit()["complete"]
    assert resumed.skipped == reference.skipped == {"total": 2, "in_row": 0}
    assert _equal(final_state(reference), final_state(resumed))
    assert _equal(reference.parts.ema.model.state_dict(), resumed.parts.ema.model.state_dict())


def test_the_count_in_a_row_survives_a_resume(recipe_factory):
    """Skips at 3, 4 | interrupted at 4 | resumed: the skip at 5 is the third in a row."""
    recipe = recipe_factory(objective="test_nan_steps", steps=8, ckpt_every=0)
    first = make_trainer(recipe, _overrides([3, 4, 5], max_in_row=3))
    _stop_at(first, 4)
    assert first.fit()["step"] == 4
    resumed = make_trainer(recipe, _overrides([3, 4, 5], max_in_row=3))
    with pytest.raises(TrainingDiverged, match=r"3 optimizer steps in a row \(up to step 5\).*step_00000004.pt"):
        resumed.fit()
