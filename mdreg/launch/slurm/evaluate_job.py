"""Evaluation as Slurm jobs, each waiting for the training job of the evaluated stage.

* ``tools/launch.py RECIPE --evaluate --cluster slurm``: after the training chain is submitted
  (:class:`~mdreg.launch.slurm.executor.SlurmExecutor`), one evaluation job per run, after
  the job that trains the protocol's stage: ``afterok`` for one run; for a sweep one job ARRAY,
  element i ``aftercorr`` on element i of the training array (the same
  :class:`~mdreg.launch.slurm.job_graph.JobGroup` rule as the training stages);
* ``tools/evaluate.py RUN_DIR --cluster slurm``: one job, ``afterok`` on the stage's training
  job when that is still queued or running (refused when it failed), else at once.

Each job runs :class:`EvaluateJob` (:func:`~mdreg.evaluation.protocol_job.evaluate_run`,
resumable, so a requeued job continues sampling) on one task with at most one GPU: the
recipe's ``launch.slurm`` resources and flags, with ``nodes=1`` and ``gpus_per_node<=1``. The
jobs join the run's latest submission in ``RUN_DIR/slurm/jobs.json`` (stages
``evaluate-<stage>``), so ``tools/launch.py --status`` and ``--wait`` follow them too.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import submitit
from submitit.core.utils import FailedJobError

from mdreg.errors import UserError
from mdreg.launch.slurm.cluster import (
    check_cluster,
    outside_job_env,
    require_slurm_client,
)
from mdreg.launch.slurm.executor import logs_folder
from mdreg.launch.slurm.job_graph import JobGroup
from mdreg.launch.slurm.sbatch import (
    python_path_setup,
    sbatch_parameters,
    submitit_executor,
)
from mdreg.launch.slurm.settings import SlurmSettings, slurm_settings
from mdreg.runs.jobs import JobRecord, add_to_latest_submission, latest_jobs
from mdreg.runs.plan import RunPlan


class EvaluateJob(submitit.helpers.Checkpointable):
    """tools/evaluate.py's job for one run directory; requeued as is (the job resumes)."""

    def __init__(self, run_dir: str | Path, stage: str | None = None, checkpoint: str | None = None,
                 overrides: list[str] = (), inception_weights: str | None = None):
        self.run_dir, self.stage, self.checkpoint = str(Path(run_dir).absolute()), stage, checkpoint
        self.overrides = list(overrides)
        self.inception_weights = str(Path(inception_weights).absolute()) if inception_weights else None

    def __call__(self) -> list[dict]:
        from mdreg.evaluation.protocol_job import evaluate_run
        from mdreg.launch.slurm.stage_job import use_allocated_cpus

        use_allocated_cpus()
        return evaluate_run(self.run_dir, self.stage, self.checkpoint, self.overrides, self.inception_weights)


def label(stage: str) -> str:
    return f"evaluate-{stage}"


def eval_resources(cfg, flags: dict, flag_names: dict | None = None) -> SlurmSettings:
    """The run's Slurm resources for one evaluation task: one node, one GPU at most."""
    res = slurm_settings(cfg, flags, flag_names)
    return dataclasses.replace(res, nodes=1, gpus_per_node=min(res.gpus_per_node, 1))


def submit_group(group: JobGroup, calls: list[EvaluateJob], res: SlurmSettings, folder: Path,
                 dependency: str | None) -> None:
    """sbatch one evaluation job (or array); fills ``group.job_ids``."""
    params = sbatch_parameters(res, group.job_name, dependency, python_path_setup())
    executor = submitit_executor(folder, res, params)
    try:
        with outside_job_env():
            if group.is_array:
                with executor.batch():
                    jobs = [executor.submit(call) for call in calls]
            else:
                jobs = [executor.submit(calls[0])]
    except FailedJobError as exc:
        raise UserError(f"sbatch refused the evaluation job {group.job_name}: {str(exc).strip()} (the training "
                        f"jobs already submitted keep running; evaluate later with python tools/evaluate.py "
                        f"RUN_DIR --cluster slurm)") from None
    group.job_ids = [job.job_id for job in jobs]


def plan_groups(plans: list[RunPlan], groups: list[JobGroup], inception_weights: str | None = None,
                ) -> list[tuple[JobGroup, JobGroup | None]]:
    """The evaluation groups of ``plans`` after the training ``groups``: ``[(group, training group)]``.
    A group of the same runs as its training array waits element-wise (``group.after``); one
    whose runs differ from it becomes single jobs, each after its own training element.
    Every plan's protocol is checked first (:func:`~mdreg.evaluation.protocol_job.preflight`)."""
    from mdreg.engine.checkpoint import CheckpointManager
    from mdreg.evaluation.protocol_job import preflight

    families: dict[tuple, list[RunPlan]] = {}
    for plan in plans:
        stage = preflight(plan.cfg, inception_weights).stage
        trains = next((g for g in groups if stage in g.stages and g.position(plan) is not None), None)
        if trains is None and CheckpointManager(plan.run_dir / stage / "checkpoints").latest() is None:
            raise UserError(f"--evaluate: evaluation.stage={stage!r} of {plan.run_dir} is neither submitted now "
                            f"(--stages) nor trained; add it to --stages")
        families.setdefault((id(trains), stage), []).append((plan, trains))
    index, out = max((g.index for g in groups), default=0), []
    for (_, stage), members in families.items():
        trains = members[0][1]
        runs = [plan for plan, _ in members]
        aligned = trains is not None and trains.plans == runs
        for chunk in [runs] if aligned or trains is None else [[run] for run in runs]:
            index += 1
            out.append((JobGroup(index, [label(stage)], chunk, after=trains if aligned else None), trains))
    return out


def dependency_of(group: JobGroup, trains: JobGroup | None, symbolic: bool = False) -> str | None:
    """``aftercorr``/``afterok`` on the training group, or ``afterok`` on one training element."""
    if group.after is not None or trains is None:
        return group.dependency(symbolic)
    target = f"<id of job {trains.index}, element {trains.position(group.plans[0])}>" if symbolic else \
        trains.job_id_for(group.plans[0])
    return f"afterok:{target}"


def describe(pairs: list[tuple[JobGroup, JobGroup | None]]) -> str:
    """The evaluation jobs of a dry run or a submission, one line each."""
    lines = ["# evaluation (--evaluate): tools/evaluate.py after the stage it scores"]
    for group, trains in pairs:
        ids = f" = {', '.join(group.job_ids)}" if group.job_ids else ""
        what = f"array of {len(group.plans)}" if group.is_array else f"job ({group.plans[0].run_name})"
        lines.append(f"[{group.index}] {group.job_name}: {what}{ids}  <- "
                     f"{dependency_of(group, trains, symbolic=not group.job_ids) or 'nothing (already trained)'}")
    return "\n".join(lines)


def after_training(plans: list[RunPlan], groups: list[JobGroup], flags: dict, flag_names: dict, folder: Path,
                   inception_weights: str | None = None) -> list[tuple[JobGroup, JobGroup | None]]:
    """Submit each plan's evaluation after the submitted group that trains its protocol's stage."""
    pairs = plan_groups(plans, groups, inception_weights)
    res = eval_resources(plans[0].cfg, flags, flag_names)
    for group, trains in pairs:
        dependency = dependency_of(group, trains)
        submit_group(group, [EvaluateJob(p.run_dir, inception_weights=inception_weights) for p in group.plans], res,
                     folder, dependency)
        for plan in group.plans:
            job = JobRecord(group.stages, group.job_id_for(plan), str(folder), 1, dependency)
            add_to_latest_submission(plan.run_dir, [job], res.as_dict())
    return pairs


def for_run(run_dir: Path, stage: str | None, checkpoint: str | None, overrides: list[str],
            inception_weights: str | None, flags: dict, flag_names: dict | None = None) -> tuple[str, str | None]:
    """Submit tools/evaluate.py for ``run_dir``; returns (job id, dependency)."""
    from mdreg.evaluation.protocol_job import checkpoints, preflight, run_protocol
    from mdreg.runs.queue import query
    from mdreg.runs.rundir import plan_of_run

    require_slurm_client()
    cfg, protocol = run_protocol(run_dir, overrides, stage)
    preflight(cfg, inception_weights)
    res = eval_resources(cfg, flags, flag_names)
    dependency = None
    trains = [j for j in latest_jobs(run_dir) if protocol.stage in j.stages]
    if trains:
        state = query([trains[-1].job_id])[trains[-1].job_id]
        if state.ended and state.state != "COMPLETED":
            raise UserError(f"the training job {trains[-1].job_id} of stage {protocol.stage!r} ended {state.state}; "
                            f"train the stage to completion before evaluating it (python tools/launch.py --status "
                            f"{run_dir})")
        if not state.ended and state.state != "UNKNOWN":
            dependency = f"afterok:{trains[-1].job_id}"
    if dependency is None:
        checkpoints(cfg, run_dir / protocol.stage, checkpoint)  # something to score now
    with outside_job_env():
        check_cluster(res)
    plan = plan_of_run(run_dir)
    folder = logs_folder([plan])
    group = JobGroup(1, [label(protocol.stage)], [plan])
    submit_group(group, [EvaluateJob(run_dir, stage, checkpoint, overrides, inception_weights)], res, folder,
                 dependency)
    job = JobRecord(group.stages, group.job_ids[0], str(folder), 1, dependency)
    add_to_latest_submission(run_dir, [job], res.as_dict())
    return group.job_ids[0], dependency
