"""What a Slurm job needs beyond its ``launch.slurm`` section, decided before anything is queued:
its memory, how early the preemption signal must come, and whether the job can import the
run's plugins.

* **Memory.** With ``launch.slurm.mem_gb`` null the job asks for an estimate instead of the
  partition's default (often a few GB per CPU, too little for a data loader and a checkpoint):
  per node, each task (one per GPU) ``TASK_GB`` for the interpreter, CUDA context and loader
  workers (``WORKER_GB`` each of ``cpus_per_task - 1``), plus, on the node of rank 0, twice the
  largest checkpoint (``torch.save`` copies every tensor to host memory while it writes). A
  CPU-only job also holds the model, its gradients and activations in host memory: three
  checkpoints more. Set ``launch.slurm.mem_gb`` to choose yourself.
* **The preemption signal.** Slurm sends USR2 ``signal_delay_s`` before the time limit; the
  trainer then finishes its step and writes a checkpoint (:mod:`mdreg.launch.slurm.preemption`).
  The largest checkpoint of the plan (model + EMA + AdamW's two moments: 16 bytes per
  parameter) must be written within that lead at ``WRITE_MB_S`` (a slow shared file system),
  with ``STEP_ALLOWANCE_S`` for the step in flight; a shorter ``signal_delay_s`` is raised to it
  (a time limit too short for that allowance keeps the value set, and says so; one too short to
  write the checkpoint is an error).
* **Plugins.** Each module of the run's ``plugins`` is imported by the job's interpreter in
  the job's working directory (:func:`mdreg.plugins.problems_in_job`); a failure is one error
  at ``--dry-run`` and before submitting, not after a wait in the queue.

The dry run prints each decision with its numbers.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys

from mdreg.engine.parts import meta_model
from mdreg.errors import UserError
from mdreg.launch.slurm.settings import SlurmSettings
from mdreg.plugins import plugins_of, problems_in_job
from mdreg.runs.plan import RunPlan

BYTES_PER_PARAMETER = 16  # fp32 weights + EMA + AdamW exp_avg and exp_avg_sq
WRITE_MB_S = 200.0
STEP_ALLOWANCE_S = 60
TASK_GB = 6.0
WORKER_GB = 0.5


def largest_checkpoint(plans: list[RunPlan]) -> int:
    """Bytes of the largest checkpoint any stage of ``plans`` writes (an estimate from the model)."""
    return max(BYTES_PER_PARAMETER * sum(p.numel() for p in meta_model(plan.cfg.model).parameters())
               for plan in plans)


def required_signal_delay(checkpoint_bytes: int) -> int:
    """Seconds of lead the preemption signal needs: the step in flight and the checkpoint write, twice."""
    return STEP_ALLOWANCE_S + math.ceil(2 * checkpoint_bytes / (WRITE_MB_S * 1e6))


def memory_gb(res: SlurmSettings, checkpoint_bytes: int) -> int:
    """GB of host memory per node (see the module docstring)."""
    checkpoint_gb = checkpoint_bytes / 1e9
    per_task = TASK_GB + WORKER_GB * max(0, res.cpus_per_task - 1)
    extra = 2 * checkpoint_gb + (3 * checkpoint_gb if res.gpus_per_node == 0 else 0)
    return math.ceil(res.tasks_per_node * per_task + extra)


def sized(res: SlurmSettings, plans: list[RunPlan]) -> tuple[SlurmSettings, list[str]]:
    """``res`` with the memory and signal lead the plans need, and one line per decision."""
    size = largest_checkpoint(plans)
    notes = []
    if res.mem_gb is None:
        res = dataclasses.replace(res, mem_gb=float(memory_gb(res, size)))
        notes.append(f"memory: {res.mem_gb:g} GB per node (estimated for {res.tasks_per_node} task(s) of "
                     f"{res.cpus_per_task} CPU(s) and a {size / 1e9:.2f} GB checkpoint; set launch.slurm.mem_gb "
                     f"to choose)")
    lead = required_signal_delay(size)
    if res.signal_delay_s < lead:
        write_s = math.ceil(2 * size / (WRITE_MB_S * 1e6))
        if write_s >= res.timeout_min * 60:
            raise UserError(f"the largest checkpoint ({size / 1e9:.2f} GB) takes about {write_s} s to write twice, "
                            f"but the time limit is {res.timeout_min} min; raise --time")
        if lead >= res.timeout_min * 60:  # a short test job: the allowance for a slow step does not fit
            notes.append(f"preemption signal: {res.signal_delay_s} s before the time limit, as set (the "
                         f"{STEP_ALLOWANCE_S} s allowed for a step in flight do not fit in {res.timeout_min} min; a "
                         f"step still running then loses the work since the last checkpoint)")
            return res, notes
        notes.append(f"preemption signal: {lead} s before the time limit (launch.slurm.signal_delay_s="
                     f"{res.signal_delay_s} is raised: writing the largest checkpoint, {size / 1e9:.2f} GB, takes "
                     f"about {size / (WRITE_MB_S * 1e6):.0f} s at {WRITE_MB_S:g} MB/s, twice that plus "
                     f"{STEP_ALLOWANCE_S} s for the step in flight)")
        res = dataclasses.replace(res, signal_delay_s=lead)
    else:
        notes.append(f"preemption signal: {res.signal_delay_s} s before the time limit (the largest checkpoint, "
                     f"{size / 1e9:.3g} GB, needs {lead} s at {WRITE_MB_S:g} MB/s)")
    return res, notes


def plugin_problems(plans: list[RunPlan], setup_path: str | None) -> list[str]:
    """Why the job could not import the run's plugins ([] when it can): imported by this
    interpreter in this working directory (sbatch's default), with the job's ``PYTHONPATH``."""
    modules = list(dict.fromkeys(m for plan in plans for m in plugins_of(plan.cfg)))
    if not modules:
        return []
    env = dict(os.environ)
    if setup_path:
        env["PYTHONPATH"] = setup_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    problems = problems_in_job(modules, os.getcwd(), sys.executable, env)
    return [f"{p}; install it where the job runs (pip install -e PATH), submit from the folder that holds it, or add "
            f"its folder to PYTHONPATH (or launch.slurm.setup)" for p in problems]
