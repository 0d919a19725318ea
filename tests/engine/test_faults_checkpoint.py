"""Resuming past damaged checkpoints: real files truncated, emptied or overwritten on disk."""
from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint, resume_point
from mdreg.errors import UserError
from tests.conftest import trainer_for, final_state, make_trainer
from tests.tiny import launch


def _damage(path, how: str) -> bytes:
    data = path.read_bytes()
    bad = {"truncated": data[: len(data) // 2], "empty": b"",
           "garbage": bytes(range(256)) * (len(data) // 256)}[how]
    path.write_bytes(bad)
    return bad


def _interrupted(recipe, step: int, run: str = "broken"):
    """A run of ``recipe`` stopped (checkpointed) at ``step``."""
    trainer = make_trainer(recipe, [f"train.run_name={run}"])
    step_fn = trainer.train_step

    def stepping(x, y):
        out = step_fn(x, y)
        if trainer.step == step:
            trainer.request_stop()
        return out
    trainer.train_step = stepping
    assert trainer.fit()["step"] == step
    return trainer.dir / "checkpoints"


def _same_weights(a, b) -> bool:
    sa, sb = final_state(a), final_state(b)
    ema = all(torch.equal(x, y) for x, y in zip(a.parts.ema.model.state_dict().values(),
                                                 b.parts.ema.model.state_dict().values()))
    return ema and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
def test_resume_skips_a_damaged_newest_checkpoint_and_keeps_it_aside(recipe_factory, capsys, how):
    recipe = recipe_factory(steps=6, ckpt_every=2, masker="patch", ratio=0.5, objective="mdsm", hflip=0.5)
    reference = make_trainer(recipe, ["train.run_name=reference"])
    reference.fit()
    folder = _interrupted(recipe, 4)
    assert (folder / "last").read_text() == "step_00000004.pt\n"
    bad = _damage(folder / "step_00000004.pt", how)
    good = (folder / "step_00000002.pt").read_bytes()

    resumed = make_trainer(recipe, ["train.run_name=broken"])
    capsys.readouterr()
    assert resumed.fit()["complete"]
    out = capsys.readouterr().out
    print(out)
    assert f"skipped unreadable checkpoint {folder / 'step_00000004.pt'} (" in out
    assert "kept as step_00000004.pt.damaged" in out and "resumed from" in out and "(step 2/6)" in out
    assert _same_weights(reference, resumed)

    aside = folder / "step_00000004.pt.damaged"
    assert aside.read_bytes() == bad  # kept byte for byte, never pruned by keep_last=2
    assert sorted(p.name for p in folder.iterdir()) == ["last", "step_00000004.pt", "step_00000004.pt.damaged",
                                                        "step_00000006.pt"]
    assert CheckpointManager(folder).damaged() == [aside]
    events = [json.loads(line) for line in (resumed.dir / "metrics.jsonl").read_text().splitlines()]
    skipped = [e for e in events if e.get("event") == "skipped_checkpoint"]
    assert len(skipped) == 1 and skipped[0]["path"] == str(folder / "step_00000004.pt")
    assert skipped[0]["kept_as"] == str(aside) and skipped[0]["reason"]
    assert {"event": "resume", "step": 2}.items() <= events[events.index(skipped[0]) + 1].items()
    expected = {"empty": "empty file (0 bytes)", "truncated": "truncated or corrupt: ",
                "garbage": "not a torch checkpoint: "}[how]
    assert expected in skipped[0]["reason"]


def _tiny_state(step: int) -> dict:
    return {"model": {"w": torch.full((4,), float(step))}, "ema": {}, "optimizer": {}, "step": step}


def test_a_second_damaged_file_of_the_same_name_gets_its_own_suffix(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (2, 4):
        manager.save(_tiny_state(step), step)
    first = _damage(tmp_path / "step_00000004.pt", "truncated")
    path, state, skipped = resume_point(manager, is_main=True)
    assert path.name == "step_00000002.pt" and state["step"] == 2
    assert (tmp_path / "last").read_text() == "step_00000002.pt\n"  # the pointer follows the fallback
    manager.save(_tiny_state(4), 4)  # the resumed run writes step 4 again, and it breaks again
    second = _damage(tmp_path / "step_00000004.pt", "empty")
    path, _, skipped = resume_point(manager, is_main=True)
    assert path.name == "step_00000002.pt"
    assert skipped == [{"path": str(tmp_path / "step_00000004.pt"), "reason": "empty file (0 bytes)",
                        "kept_as": str(tmp_path / "step_00000004.pt.damaged.2")}]
    assert [p.name for p in manager.damaged()] == ["step_00000004.pt.damaged", "step_00000004.pt.damaged.2"]
    assert manager.damaged()[0].read_bytes() == first and manager.damaged()[1].read_bytes() == second
    for step in (6, 8, 10):
        manager.save(_tiny_state(step), step)  # keep_last=3 prunes step 2, never the damaged files
    assert manager.steps() == [6, 8, 10] and len(manager.damaged()) == 2


@pytest.mark.parametrize("pointer", [b"\xff\xfe\x00garbage", b"", b"step_00000009.pt\n", b"../config.yaml\n"])
def test_a_garbled_or_stale_last_pointer_falls_back_to_the_newest_step_file(tmp_path, pointer):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (2, 4):
        manager.save(_tiny_state(step), step)
    (tmp_path / "last").write_bytes(pointer)
    path, state, skipped = resume_point(manager, is_main=True)
    assert path.name == "step_00000004.pt" and state["step"] == 4 and skipped == []


def test_a_file_that_loads_but_is_no_training_checkpoint_is_skipped(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(_tiny_state(2), 2)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "step_00000004.pt")
    manager.point_to(tmp_path / "step_00000004.pt")
    path, _, skipped = resume_point(manager, is_main=True)
    assert path.name == "step_00000002.pt"
    assert skipped[0]["reason"] == "loads but is not a training checkpoint (no model, ema, optimizer, step)"


def test_when_no_checkpoint_reads_the_run_stops_and_nothing_is_renamed(recipe_factory):
    recipe = recipe_factory(steps=6, ckpt_every=2)
    folder = _interrupted(recipe, 4)
    damaged = {name: _damage(folder / name, how) for name, how in
               [("step_00000004.pt", "truncated"), ("step_00000002.pt", "empty")]}
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    trainer = make_trainer(recipe, ["train.run_name=broken"])
    with pytest.raises(UserError) as info:
        trainer.fit()
    message = str(info.value)
    print(message)
    assert f"{folder} holds 2 checkpoint(s) but none can be read (step_00000004.pt: truncated or corrupt" in message
    assert "step_00000002.pt: empty file (0 bytes)" in message and "Nothing was renamed or deleted" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert trainer.step == 0 and not (trainer.dir / "samples").exists()
    out = launch(recipe, "train.run_name=broken")  # the CLI: one line, status 2, still nothing touched
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {folder} holds 2 checkpoint(s) but none can be read")
    assert "Traceback" not in out.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and set(damaged) <= set(before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, recipe: str, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from mdreg.engine.distributed import setup
    from mdreg.engine.trainer import Trainer
    from mdreg.runs.plan import build_plans

    env = setup("cpu")
    plan = build_plans(recipe, ["train.run_name=broken"])[0]
    trainer = trainer_for(plan, "main", env)
    events = trainer.restore()
    weights = trainer.parts.model.state_dict()
    torch.save({"step": trainer.step, "events": [e["event"] for e in events], "weights": weights},
               f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_every_rank_resumes_from_the_same_checkpoint_and_only_rank_0_renames(recipe_factory, tmp_path):
    recipe = recipe_factory(steps=6, ckpt_every=2, batch_size=8)
    folder = _interrupted(recipe, 4)
    _damage(folder / "step_00000004.pt", "garbage")
    mp.start_processes(_rank, args=(str(recipe), _free_port(), str(tmp_path)), nprocs=2, start_method="fork",
                       join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["step"] for r in ranks] == [2, 2]
    assert ranks[0]["events"] == ranks[1]["events"] == ["skipped_checkpoint", "resume"]
    expected = load_checkpoint(folder / "step_00000002.pt")["model"]
    assert all(torch.equal(r["weights"][k], expected[k]) for r in ranks for k in expected)
    assert sorted(p.name for p in folder.iterdir()) == ["last", "step_00000002.pt", "step_00000004.pt.damaged"]
    assert (folder / "last").read_text() == "step_00000002.pt\n"
