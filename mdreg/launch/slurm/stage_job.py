"""What runs inside a Slurm job: the stages of one run directory, in order.

The job reads the run's ``config.yaml`` (written at submission; its plugins are imported
first, :func:`mdreg.runs.rundir.plan_of_run`), so the run directory is the single source of
truth: a requeued or relaunched job trains exactly what was submitted. Each task joins
torch.distributed (submitit's JobEnvironment gives rank, local rank, world size and the master
address/port) and runs the same function as a local launch,
:func:`mdreg.launch.local.run_stages`. Preemption: see :mod:`mdreg.launch.slurm.preemption`.

Global rank 0 holds the run's lock while the job trains (:mod:`mdreg.runs.lock`, with
the job id: a requeued run of the same job takes over what its earlier run left; another
job or a local launch holding the run makes this job fail at once with the holder's name).
A rank that dies makes the others fail with
:class:`~mdreg.engine.distributed.CollectiveFailure`, whose message ends up in ``--status``.
"""
from __future__ import annotations

import os
from pathlib import Path

import submitit

from mdreg.launch.slurm.preemption import StopAtStepBoundary


def use_allocated_cpus() -> None:
    """torch sizes its thread pool from the node's cores, not the job's: on a shared node (or
    without cgroups) that oversubscribes. Use ``cpus_per_task`` unless OMP_NUM_THREADS is set."""
    import torch

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(int(cpus))


def describe_task(env) -> str:
    """One line naming this task's place in the job (printed to the job's log)."""
    job = submitit.JobEnvironment()
    return (f"job {job.job_id} rank {env.rank}/{env.world_size} local_rank {env.local_rank} "
            f"node {job.node}/{job.num_nodes} ({job.hostname}) "
            f"master {os.environ.get('MASTER_ADDR', '-')}:{os.environ.get('MASTER_PORT', '-')} "
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
        from mdreg.engine.distributed import job_source
        from mdreg.launch.local import run_stages, start_process
        from mdreg.runs.lock import slurm_job_id
        from mdreg.runs.rundir import plan_of_run

        use_allocated_cpus()
        plan = plan_of_run(self.run_dir)  # config.yaml, its plugins imported, the stages built once
        env = start_process(plan, source=job_source())
        print(f"mdreg: {self.run_dir} stages {', '.join(self.stages)}: {describe_task(env)}", flush=True)
        with StopAtStepBoundary() as stop:
            results = run_stages(plan, env, self.stages, job_id=slurm_job_id(), stop=stop)
            if not all(r["complete"] for r in results.values()):  # stopped by a signal (or the ranks' vote)
                stop.requeue()
            stop.finished()  # a signal that came after the last step (final grid, metric) requeues nothing
        return results
