"""What runs inside a Slurm job: the stages of one run directory, in order.

The job reads the run's ``config.yaml`` (written at submission), so the run directory is
the single source of truth: a requeued or relaunched job trains exactly what was
submitted. Each task first exports torch.distributed's variables from submitit's
environment (:func:`export_distributed_env`), then the trainer's ``setup()`` joins the
process group. Preemption: see :mod:`mdreg.launch.preemption`.
"""
from __future__ import annotations

import os
from pathlib import Path

import submitit

from mdreg.launch.preemption import StopAtStepBoundary


def export_distributed_env() -> submitit.helpers.TorchDistributedEnvironment:
    """Set RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR (first node of the
    job) and MASTER_PORT (derived from the job id, the same on every task) from submitit's
    JobEnvironment, for torch.distributed's ``env://`` init in ``setup()``.

    One task per GPU; every task keeps the node's ``CUDA_VISIBLE_DEVICES`` as Slurm set it
    and uses ``cuda:LOCAL_RANK`` (as under torchrun). We do not let submitit narrow it to
    ``str(local_rank)``: on a shared node the job's GPUs need not be 0..n-1.
    """
    return submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def use_allocated_cpus() -> None:
    """torch sizes its thread pool from the node's cores, not the job's: on a shared node (or
    without cgroups) that oversubscribes. Use ``cpus_per_task`` unless OMP_NUM_THREADS is set."""
    import torch

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(int(cpus))


def describe_task(dist_env: submitit.helpers.TorchDistributedEnvironment) -> str:
    job = submitit.JobEnvironment()
    return (f"job {job.job_id} rank {dist_env.rank}/{dist_env.world_size} local_rank {dist_env.local_rank} "
            f"node {job.node}/{job.num_nodes} ({job.hostname}) master {dist_env.master_addr}:{dist_env.master_port} "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')} "
            f"restart {os.environ.get('SLURM_RESTART_COUNT', '0')}")


class StageJob(submitit.helpers.Checkpointable):
    """Train ``stages`` of the run in ``run_dir``; requeued as is after a preemption or
    time limit (``Checkpointable.checkpoint`` resubmits the same call: all state is in
    the run directory)."""

    def __init__(self, run_dir: str | Path, stages: list[str]):
        self.run_dir = str(Path(run_dir).absolute())
        self.stages = list(stages)

    def __call__(self) -> dict[str, dict]:
        from mdreg.config import load_config
        from mdreg.engine.trainer import Trainer

        use_allocated_cpus()
        dist_env = export_distributed_env()
        print(f"mdreg: {self.run_dir} stages {', '.join(self.stages)}: {describe_task(dist_env)}", flush=True)
        cfg = load_config(Path(self.run_dir) / "config.yaml")
        results: dict[str, dict] = {}
        with StopAtStepBoundary() as stop:
            for name in self.stages:
                if stop.requested:
                    stop.requeue()
                trainer = Trainer(cfg, name, self.run_dir)
                stop.attach(trainer)
                results[name] = trainer.fit()
                stop.detach()
                if not results[name]["complete"]:
                    stop.requeue()
        return results
