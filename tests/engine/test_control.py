"""Divergence, stop requests and in-process resume."""
from __future__ import annotations

import json

import pytest
import torch

from mdreg.engine.trainer import TrainingDiverged
from tests.conftest import final_state, make_trainer


@pytest.mark.parametrize("mode", ["loss", "grad"])
def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(recipe_factory, mode):
    """An objective registered by the test turns NaN at step 5 (its loss, or only its
    gradient); checkpoints every 2 steps. The run must stop naming step 5, keep step 4 as
    the last checkpoint and leave no step-5/6 file, temp file or sample grid behind."""
    recipe = recipe_factory(objective="test_nan_at", steps=8, ckpt_every=2, log_every=3,
                            sampler='L("sampler:ddim")(steps=2)')
    trainer = make_trainer(recipe, [f"+stages.main.objective.at=5", f"+stages.main.objective.mode={mode}",
                                    "stages.main.sample.every=2"])
    with pytest.raises(TrainingDiverged, match="NaN/inf at step 5"):
        trainer.fit()
    folder = trainer.dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last", "step_00000002.pt", "step_00000004.pt"]
    assert (folder / "last").read_text().strip() == "step_00000004.pt"
    state = torch.load(folder / "step_00000004.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert sorted(p.name for p in (trainer.dir / "samples").iterdir()) == ["step_00000002.pt".replace(".pt", ".png"),
                                                                           "step_00000004.png"]
    events = [json.loads(line) for line in (trainer.dir / "metrics.jsonl").read_text().splitlines()]
    assert {"event": "diverged", "step": 5}.items() <= events[-1].items()


def test_stop_request_saves_at_the_step_boundary_and_resume_matches(recipe_factory):
    recipe = recipe_factory(steps=7, masker="patch", ratio=0.5, objective="mdsm", hflip=0.5)
    reference = make_trainer(recipe, ["train.run_name=reference"])
    reference.fit()

    trainer = make_trainer(recipe, ["train.run_name=stopped"])
    step_fn = trainer.train_step

    def stepping(x, y):
        out = step_fn(x, y)
        if trainer.step == 3:
            trainer.request_stop()
        return out

    trainer.train_step = stepping
    result = trainer.fit()
    assert result["complete"] is False and result["step"] == 3
    assert trainer.last_good.name == "step_00000003.pt"  # saved at the boundary, before fit() returned
    resumed = make_trainer(recipe, ["train.run_name=stopped"])
    resumed.restore()
    assert resumed.step == 3
    assert resumed.fit()["complete"]
    ref, got = final_state(reference), final_state(resumed)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert all(torch.equal(a, b) for a, b in zip(reference.parts.ema.model.state_dict().values(),
                                                 resumed.parts.ema.model.state_dict().values()))


def test_relaunching_a_complete_stage_does_nothing(recipe_factory):
    recipe = recipe_factory(steps=2)
    make_trainer(recipe).fit()
    again = make_trainer(recipe)
    assert again.fit() == {"step": 2, "complete": True} and again.step == 2


def test_a_killed_writers_temp_files_are_removed_by_the_next_save(tmp_path):
    from mdreg.engine.checkpoint import CheckpointManager

    manager = CheckpointManager(tmp_path, keep_last=1)
    (tmp_path / ".step_00000004.pt.abc.tmp").write_bytes(b"partial")
    (tmp_path / ".last.xyz.tmp").write_text("step_0")
    manager.save({"step": 5}, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "step_00000005.pt"]
