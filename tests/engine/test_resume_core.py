"""Relaunching resumes from the last checkpoint and repeats the uninterrupted run exactly (CPU)."""
import json

import torch

from mdreg.engine.checkpoint import load_checkpoint
from mdreg.engine.distributed import DistEnv
from tests.conftest import trainer_for
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from mdreg.runs.rundir import prepare, write_stage_config
from tests.tiny import write_two_stage_recipe


def losses(stage_dir):
    rows = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def final_weights(stage_dir):
    ckpt = load_checkpoint(stage_dir / "checkpoints" / (stage_dir / "checkpoints" / "last").read_text().strip())
    return ckpt


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=6, ckpt_every=2)
    (straight,) = build_plans(recipe, ["train.run_name=straight"])
    LocalExecutor().run(straight)

    (broken,) = build_plans(recipe, ["train.run_name=broken"])
    prepare(broken)
    write_stage_config(broken, "pretrain")
    trainer = trainer_for(broken, "pretrain", DistEnv())
    step_once = trainer.train_step

    def stop_after_three(*args):
        result = step_once(*args)
        if trainer.step == 3:
            trainer.stop_requested = True   # the loop saves at this step boundary and returns
        return result

    trainer.train_step = stop_after_three
    assert trainer.fit()["complete"] is False
    assert (broken.run_dir / "pretrain" / "checkpoints" / "step_00000003.pt").is_file()
    LocalExecutor().run(broken)  # "relaunch": resumes pretrain at step 3, then runs finetune

    for stage in ("pretrain", "finetune"):
        a, b = straight.run_dir / stage, broken.run_dir / stage
        assert losses(a) == losses(b), stage
        wa, wb = final_weights(a), final_weights(b)
        for key in ("model", "ema"):
            for name, tensor in wa[key].items():
                assert torch.equal(tensor, wb[key][name]), (stage, key, name)


def test_relaunching_a_finished_run_changes_nothing(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    (plan,) = build_plans(recipe, [])
    LocalExecutor().run(plan)
    files = {p: p.stat().st_mtime_ns for p in plan.run_dir.rglob("*.pt")}
    LocalExecutor().run(plan)
    assert files == {p: p.stat().st_mtime_ns for p in plan.run_dir.rglob("*.pt")}


def test_finetune_starts_from_pretrain_ema_weights(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=3, ckpt_every=0)
    (plan,) = build_plans(recipe, [])
    LocalExecutor().run(plan, stages=["pretrain"])
    pre = final_weights(plan.run_dir / "pretrain")
    finetune = trainer_for(plan, "finetune", DistEnv())
    finetune.restore()  # the hand-off happens when the loop starts, not when the trainer is built
    for name, tensor in finetune.parts.model.state_dict().items():
        assert torch.equal(tensor, pre["ema"][name]), name
        assert torch.equal(finetune.parts.ema.model.state_dict()[name], pre["ema"][name])
    assert not all(torch.equal(pre["model"][k], pre["ema"][k]) for k in pre["model"])  # EMA really differs


def test_checkpoint_holds_full_state_and_last_pointer(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=4, ckpt_every=1)
    (plan,) = build_plans(recipe, [])
    LocalExecutor().run(plan, stages=["pretrain"])
    folder = plan.run_dir / "pretrain" / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.pt")) == ["step_00000003.pt", "step_00000004.pt"]  # keep_last=2
    assert (folder / "last").read_text().strip() == "step_00000004.pt"
    assert not list(folder.glob("*.tmp"))
    state = final_weights(plan.run_dir / "pretrain")
    assert {"model", "ema", "optimizer", "scaler", "step", "rng"} <= set(state) and state["step"] == 4


def test_a_checkpoint_from_another_device_type_resumes_with_a_note(tmp_path, capsys):
    """A GPU job's checkpoint resumed on a CPU (or back): the saved generator state does not fit
    this device's generator; it is left fresh, said so, and the run still repeats exactly."""
    recipe = write_two_stage_recipe(tmp_path, steps=4, ckpt_every=2)
    (straight,) = build_plans(recipe, ["train.run_name=straight"])
    LocalExecutor().run(straight, stages=["pretrain"])
    (moved,) = build_plans(recipe, ["train.run_name=moved"])
    prepare(moved)
    trainer = trainer_for(moved, "pretrain", DistEnv())
    step_once = trainer.train_step

    def stop_after_two(*args):
        result = step_once(*args)
        trainer.stop_requested = trainer.step == 2
        return result

    trainer.train_step = stop_after_two
    trainer.fit()
    path = moved.run_dir / "pretrain" / "checkpoints" / "step_00000002.pt"
    state = load_checkpoint(path)
    state["rng"]["ranks"][0].update(device="cuda", generator=torch.zeros(16, dtype=torch.uint8))  # as a GPU writes it
    torch.save(state, path)
    LocalExecutor().run(moved, stages=["pretrain"])
    assert "note: the checkpoint was written on cuda, this run is on cpu" in capsys.readouterr().out
    assert losses(straight.run_dir / "pretrain") == losses(moved.run_dir / "pretrain")
    wa, wb = final_weights(straight.run_dir / "pretrain"), final_weights(moved.run_dir / "pretrain")
    assert all(torch.equal(t, wb["model"][k]) for k, t in wa["model"].items())
