"""Two processes (gloo on the CPU) against one process with the same global batch.

Randomness is keyed by (step, global micro-batch), so 2 ranks x 1 micro-batch of 4 draw
exactly what 1 process x 2 accumulated micro-batches of 4 draws, on the same samples.
Only the float arithmetic of the gradient average differs: DDP computes (g0 + g1) / 2 with
an all-reduce, accumulation g0/2 + g1/2. With two terms these agree bit for bit (halving
is exact), and the observed weight difference after 6 AdamW steps is exactly 0; the
asserted tolerance (rtol 1e-4 / atol 1e-6 per weight, max difference < 1e-5, losses to
rel 1e-5) is what holds for more ranks, where all-reduce summation order varies.

The 2-process run is also stopped by a request seen on rank 1 only at step 3, then
relaunched: the stop vote must stop both ranks at the same boundary, the checkpoint must
hold both ranks' RNG states, and the resumed run must still match. The first launch finds
its ranks from Slurm variables (as in a 2-task submitit job), the relaunch from torchrun's.
"""
from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import trainer_for, build_plan, make_trainer

STEPS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, recipe: str, port: int, stop_at: int | None, use_slurm_vars: bool) -> None:
    torch.set_num_threads(1)
    if use_slurm_vars:  # what a 2-task submitit job sees
        os.environ.update(SLURM_JOB_ID="4242", SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS="2",
                          SLURM_STEP_NUM_TASKS="2",
                          SLURM_JOB_NUM_NODES="1", SLURM_NODEID="0", SLURM_JOB_NODELIST="127.0.0.1",
                          MASTER_PORT=str(port))
    else:  # what torchrun sets
        os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
    import tests.engine.objectives  # noqa: F401
    from mdreg.engine import distributed as ddp
    from mdreg.engine.distributed import setup
    from mdreg.engine.trainer import Trainer
    from mdreg.runs.plan import build_plans
    from mdreg.runs.rundir import prepare

    env = setup("cpu")
    assert env.source == ("slurm" if use_slurm_vars else "torchrun") and env.world_size == 2 and env.rank == rank
    plan = build_plans(recipe, ["train.run_name=ddp"])[0]
    if env.is_main:
        prepare(plan)
    ddp.barrier()
    trainer = trainer_for(plan, "main", env)
    if stop_at is not None and rank == 1:
        step_fn = trainer.train_step

        def stepping(x, y):
            out = step_fn(x, y)
            if trainer.step == stop_at:
                trainer.request_stop()
            return out
        trainer.train_step = stepping
    result = trainer.fit()
    ddp.barrier()
    torch.distributed.destroy_process_group()
    expect = stop_at if stop_at is not None else STEPS
    assert result["step"] == expect, (rank, result)


def _spawn(recipe, stop_at=None, use_slurm_vars=False):
    """Two ranks, forked: they inherit the imported modules (the parent runs one thread)."""
    mp.start_processes(_worker, args=(str(recipe), _free_port(), stop_at, use_slurm_vars), nprocs=2,
                       start_method="fork", join=True)


def _losses(folder):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_two_ranks_match_one_process_and_resume_after_a_rank1_stop(recipe_factory):
    recipe = recipe_factory(steps=STEPS, batch_size=8, log_every=1, masker="patch", ratio=0.5, objective="mdsm",
                            hflip=0.5)
    reference = make_trainer(recipe, ["train.run_name=single", "stages.main.grad_accum=2"])
    reference.fit()

    _spawn(recipe, stop_at=3, use_slurm_vars=True)
    folder = build_plan(recipe, ["train.run_name=ddp"]).run_dir / "main"
    stopped = torch.load(folder / "checkpoints" / "step_00000003.pt", weights_only=True)
    ranks = stopped["rng"]["ranks"]
    assert stopped["rng"]["world_size"] == 2 and len(ranks) == 2
    assert not torch.equal(ranks[0]["generator"], ranks[1]["generator"])  # each rank's own stream
    assert stopped["data"]["samples_seen"] == 24

    _spawn(recipe)  # relaunch: resumes at step 3, both ranks restore their own RNG state
    final = torch.load(folder / "checkpoints" / f"step_{STEPS:08d}.pt", weights_only=True)
    want = reference.parts.model.state_dict()
    worst = max(float((final["model"][k] - want[k]).abs().max()) for k in want)
    for key in want:
        torch.testing.assert_close(final["model"][key], want[key], rtol=1e-4, atol=1e-6, msg=key)
    print(f"max |w_2proc - w_1proc| = {worst:.3g}")
    assert worst < 1e-5
    single, double = _losses(reference.dir), _losses(folder)
    assert sorted(double) == list(range(1, STEPS + 1))
    for step, loss in single.items():
        assert double[step] == pytest.approx(loss, rel=1e-5), step
