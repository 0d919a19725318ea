"""A finished (or capped) run extended to more steps continues from its last checkpoint, says so
in the output and in metrics.jsonl, and ends with the weights of an uninterrupted run when its
schedules do not depend on the total; a resumed stage logs each step once."""
from __future__ import annotations

import json

import torch

from mdreg.commands.entry import run_cli
from mdreg.commands.launch import main
from tests.conftest import tiny_recipe

CONSTANT = "L(\"lr_schedule:constant\")(warmup_steps=2)"


def _weights(run_dir, stage="main"):
    last = (run_dir / stage / "checkpoints" / "last").read_text().strip()
    return torch.load(run_dir / stage / "checkpoints" / last, weights_only=True)["model"]


def _launch(recipe, root, *overrides):
    return run_cli(main, [str(recipe), f"train.output_root={root}", "train.log_every=1", *overrides])


def test_extending_200_to_400_steps_equals_an_uninterrupted_400_step_run(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, steps=400, num_images=32, batch_size=4)
    assert _launch(recipe, tmp_path / "a", "train.run_name=grow", "stages.main.steps=200") == 0
    assert _launch(recipe, tmp_path / "a", "train.run_name=grow", "stages.main.steps=400") == 0
    out = capsys.readouterr().out
    assert "extending stage 'main' from 200 to 400 steps, from its checkpoint of step 200" in out
    assert "schedules do not depend on the total" in out
    assert _launch(recipe, tmp_path / "b", "train.run_name=fresh") == 0
    grown, fresh = _weights(tmp_path / "a" / "tiny" / "grow"), _weights(tmp_path / "b" / "tiny" / "fresh")
    assert all(torch.equal(grown[k], fresh[k]) for k in fresh)
    events = [json.loads(line) for line in (tmp_path / "a" / "tiny" / "grow" / "main" / "metrics.jsonl").open()]
    assert [e for e in events if e.get("event") == "extend"][0]["from_total"] == 200


def test_raising_the_cap_continues_the_same_run(tmp_path, capsys):
    """train.max_steps is not part of the run's name: the capped run is a prefix of the full one."""
    recipe = tiny_recipe(tmp_path, steps=6)
    assert _launch(recipe, tmp_path, "train.max_steps=3") == 0
    assert _launch(recipe, tmp_path) == 0
    out = capsys.readouterr().out
    assert "extending stage 'main' from 3 to 6 steps" in out and "as before, so the result equals" in out
    assert (tmp_path / "tiny" / "default" / "main" / "checkpoints" / "last").read_text().strip() == "step_00000006.pt"


def test_a_total_dependent_schedule_says_what_the_extension_changes(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, steps=8)
    cosine = ["stages.main.lr_schedule=cosine"]
    assert _launch(recipe, tmp_path, "train.run_name=cos", "stages.main.steps=4", *cosine) == 0
    assert _launch(recipe, tmp_path, "train.run_name=cos", "stages.main.steps=8", *cosine) == 0
    out = capsys.readouterr().out
    assert "its lr schedule depends on the total (lr factor at step 4: 0 in the 4-step schedule" in out
    assert "differs from a fresh 8-step run" in out


def test_a_resumed_stage_logs_each_step_once(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=6, ckpt_every=2)
    assert _launch(recipe, tmp_path, "train.run_name=r") == 0
    stage = tmp_path / "tiny" / "r" / "main"
    # as after a kill at step 5: the last checkpoint is step 4, the log reached step 6
    (stage / "checkpoints" / "step_00000006.pt").unlink()
    (stage / "checkpoints" / "last").write_text("step_00000004.pt\n")
    assert _launch(recipe, tmp_path, "train.run_name=r") == 0
    steps = [json.loads(line)["step"] for line in (stage / "metrics.jsonl").open() if '"loss"' in line]
    assert steps == sorted(set(steps)) == [1, 2, 3, 4, 5, 6]
    moved = [json.loads(line)["step"] for line in (stage / "metrics.superseded.jsonl").open()]
    assert moved == [5, 6]


def test_a_stage_that_started_from_the_old_end_is_moved_aside_and_retrained(tmp_path, capsys):
    """Raising the cap of a two-stage run: pre-training continues, and the fine-tuning that started
    from its step-2 weights is set aside (kept) and trained again from the extended weights, so the
    run ends as an uninterrupted 4-step one."""
    from tests.tiny import write_two_stage_recipe

    recipe = write_two_stage_recipe(tmp_path, steps=4, ckpt_every=0)
    assert _launch(recipe, tmp_path / "a", "train.max_steps=2") == 0
    assert _launch(recipe, tmp_path / "a") == 0
    out = capsys.readouterr().out
    run = tmp_path / "a" / "tiny_two_stage" / "default"
    assert "stage 'finetune' started from 'pretrain' at step 2, which now runs to 4: moved aside to" in out
    assert (run / "finetune.before-extension" / "checkpoints" / "step_00000002.pt").is_file()
    assert _launch(recipe, tmp_path / "b") == 0
    grown, fresh = _weights(run, "finetune"), _weights(tmp_path / "b" / "tiny_two_stage" / "default", "finetune")
    assert all(torch.equal(grown[k], fresh[k]) for k in fresh)
