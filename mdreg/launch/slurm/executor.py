"""The Slurm executor: submit a plan's stages as Slurm jobs through submitit.

Beside :class:`~mdreg.launch.local.LocalExecutor`, same inputs (plans, stages). It
returns once sbatch has accepted everything (``--wait`` then follows the jobs).

* resources: the recipe's ``launch.slurm`` section and flags
  (:mod:`mdreg.launch.slurm.settings`), as sbatch parameters (:mod:`mdreg.launch.slurm.sbatch`);
  one task per GPU;
* job graph: one job per stage, ``afterok`` on its parent stage's job; a sweep is one job
  array per stage and stage layout, chained element-wise with ``aftercorr``
  (:mod:`mdreg.launch.slurm.job_graph`);
* inside a job: :class:`~mdreg.launch.slurm.stage_job.StageJob` (distributed env, preemption);
* before sbatch runs: the client tools, the partition and its GPUs are checked, every run
  directory gets its ``config.yaml`` (a different existing run there is an error), and a
  run whose earlier jobs are still queued or running, or that a live launch holds
  (``RUN_DIR/.lock``, :mod:`mdreg.runs.lock`), is refused. If sbatch refuses a later
  job of the chain, the jobs already submitted are cancelled.
* relaunching: complete stages get no job, and runs with nothing left are not resubmitted
  (:mod:`mdreg.launch.slurm.remaining`), so relaunching a sweep resubmits only its
  unfinished elements.
* logs: submitit's folder ``<output_root>/<recipe>/slurm-logs/`` (shared by an array's
  elements), linked from each ``RUN_DIR/slurm/``, with the job ids in ``jobs.json``.

``--dry-run`` prints the sbatch scripts submitit would write
(:func:`~mdreg.launch.slurm.sbatch.sbatch_script`, no ``srun`` needed), the array expansion
and the dependency graph; it asks nothing of the cluster.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from omegaconf import OmegaConf
from submitit.core.utils import FailedJobError, JobPaths

from mdreg.engine.stage import micro_batch_size
from mdreg.errors import ConfigError, UserError
from mdreg.launch.slurm.cluster import (
    check_cluster,
    outside_job_env,
    require_slurm_client,
)
from mdreg.launch.slurm.job_graph import JobGroup, chain, describe_graph
from mdreg.launch.slurm.remaining import complete_stages, describe_complete
from mdreg.launch.slurm.sbatch import (
    checkout_root,
    python_path_setup,
    sbatch_parameters,
    sbatch_script,
    submitit_executor,
)
from mdreg.launch.slurm.settings import SlurmSettings, slurm_settings
from mdreg.launch.slurm.sizing import plugin_problems, sized
from mdreg.launch.slurm.stage_job import StageJob
from mdreg.runs.jobs import JobRecord, append_submission, latest_jobs
from mdreg.runs.lock import check_free
from mdreg.runs.plan import RunPlan, missing_data
from mdreg.runs.queue import query
from mdreg.runs.rundir import prepare, write_stage_config

LOGS = "slurm-logs"


def logs_folder(plans: list[RunPlan]) -> Path:
    """submitit's folder (logs, pickles): a run's own ``RUN_DIR/slurm/logs``; a sweep's array shares
    ``<output_root>/<recipe>/slurm-logs`` (submitit writes one array's logs into one folder), and
    each run directory links its element's logs (``RUN_DIR/slurm/``)."""
    if len(plans) == 1:
        return plans[0].run_dir.absolute() / "slurm" / "logs"
    return plans[0].run_dir.parent.absolute() / LOGS


class SlurmExecutor:
    """Submits plans as Slurm jobs; ``flags`` are resource flags by key (``--nodes`` -> nodes),
    ``flag_names`` how each is spelled (for errors)."""

    name = "slurm"

    def __init__(self, flags: dict | None = None, single_job: bool = False, flag_names: dict | None = None):
        self.flags, self.single_job, self.flag_names = dict(flags or {}), single_job, dict(flag_names or {})
        self.notes: list[str] = []  # what the sizing decided (memory, signal lead), for the dry run

    def resources(self, plans: list[RunPlan]) -> SlurmSettings:
        """The plans' validated resources; a sweep's elements must agree (one array). Each
        distinct ``launch`` section is checked once (a 256-element sweep shares one)."""
        checked: dict[str, SlurmSettings] = {}

        def settings(cfg) -> SlurmSettings:
            try:
                key = json.dumps(OmegaConf.to_container(cfg.launch, resolve=True) if "launch" in cfg else None,
                                 sort_keys=True, default=repr)
            except Exception:  # not a mapping, a bad interpolation: slurm_settings says what is wrong
                return slurm_settings(cfg, self.flags, self.flag_names)
            if key not in checked:
                checked[key] = slurm_settings(cfg, self.flags, self.flag_names)
            return checked[key]

        found = [settings(p.cfg) for p in plans]
        for plan, res in zip(plans[1:], found[1:]):
            if res != found[0]:
                keys = [k for k, v in res.as_dict().items() if v != found[0].as_dict()[k]]
                raise ConfigError(f"sweep element {plan.run_name!r} asks for other Slurm resources "
                                  f"(launch.slurm.{', launch.slurm.'.join(keys)}) than {plans[0].run_name!r}; a sweep "
                                  f"is one job array with one set of resources: submit those values separately")
        world = found[0].nodes * found[0].tasks_per_node
        for plan in plans:
            if plan.run_name == LOGS:
                raise ConfigError(f"train.run_name={LOGS!r} is where Slurm logs go; choose another run name")
            for stage in plan.stages:
                micro_batch_size(stage.batch_size, stage.grad_accum, world, stage.name,
                                 f"{found[0].nodes} node(s) x {found[0].tasks_per_node} task(s) per node, one per GPU;"
                                 f" set --nodes / --gpus-per-node")
        problems = plugin_problems(plans, checkout_root())
        if problems:
            raise UserError("; ".join(problems))
        res, self.notes = sized(found[0], plans)
        return res

    def groups(self, plans: list[RunPlan], stages: list[str] | None, skip_complete: bool = False) -> list[JobGroup]:
        """The job graph; with ``skip_complete``, complete stages get no job."""
        return chain(plans, stages, self.single_job, complete_stages(plans) if skip_complete else None)

    def dry_run(self, plans: list[RunPlan], stages: list[str] | None = None) -> str:
        """The sbatch scripts, array expansion and dependency graph; submits nothing."""
        res, groups, folder = self.resources(plans), self.groups(plans, stages), logs_folder(plans)
        parts = []
        for g in groups:
            params = sbatch_parameters(res, g.job_name, g.dependency(symbolic=True), python_path_setup())
            script = sbatch_script(folder, res, params, array_size=len(g.plans) if g.is_array else None)
            kind = f"array of {len(g.plans)}" if g.is_array else "job"
            parts.append(f"# [{g.index}] {g.job_name}: sbatch script ({kind}, {res.nodes} node(s) x "
                         f"{res.tasks_per_node} task(s), {res.gpus_per_node} GPU(s) per node)\n{script}")
        parts.append(describe_graph(groups))
        parts += describe_complete(plans, complete_stages(plans), stages)
        parts += [f"# {note}" for note in self.notes]
        parts += [f"# warning: {line} (the job's nodes may see it; check there)" for line in missing(plans)]
        parts.append("# dry run: nothing was submitted")
        return "\n".join(parts)

    def submit(self, plans: list[RunPlan], stages: list[str] | None = None) -> list[JobGroup]:
        """Check, prepare the run directories, submit the chain; returns the submitted groups."""
        require_slurm_client()
        res, groups, folder = self.resources(plans), self.groups(plans, stages, True), logs_folder(plans)
        plans = scheduled(plans, groups)
        if not groups:
            return groups
        for line in missing(plans):
            print(f"warning: {line} (the job's nodes may see it; check there)")
        with outside_job_env():
            check_cluster(res)
            refuse_active_runs(plans)
            for plan in plans:
                prepare(plan)
                for g in groups:
                    for name in g.stages if g.position(plan) is not None else ():
                        write_stage_config(plan, name)
            submit_groups(groups, res, folder)
        for plan in plans:
            jobs = [JobRecord(g.stages, g.job_id_for(plan), str(folder), res.nodes * res.tasks_per_node,
                              g.dependency()) for g in groups if g.position(plan) is not None]
            append_submission(plan.run_dir, jobs, res.as_dict())
        return groups


def missing(plans: list[RunPlan]) -> list[str]:
    """The dataset folders of ``plans`` that this machine does not see (each once)."""
    return list(dict.fromkeys(line for plan in plans for line in missing_data(plan)))


STATUS_LISTED = 6  # up to this many runs, the --status hint names each run directory


def submit_groups(groups: list[JobGroup], res: SlurmSettings, folder: Path) -> None:
    """sbatch each group in order; on a refusal, cancel what was submitted and explain."""
    done: list[JobGroup] = []
    for g in groups:
        executor = submitit_executor(folder, res, sbatch_parameters(res, g.job_name, g.dependency(), python_path_setup()))
        calls = [StageJob(plan.run_dir, g.stages) for plan in g.plans]
        try:
            if g.is_array:
                with executor.batch():
                    jobs = [executor.submit(call) for call in calls]
            else:
                jobs = [executor.submit(calls[0])]
        except FailedJobError as exc:
            cancelled = [g2.base_id for g2 in done]
            if cancelled:
                subprocess.run(["scancel", *cancelled], capture_output=True)
            note = f"; cancelled the jobs already submitted ({', '.join(cancelled)})" if cancelled else ""
            raise UserError(f"sbatch refused job [{g.index}] {g.job_name}: {str(exc).strip()}{note}") from None
        g.job_ids = [job.job_id for job in jobs]
        done.append(g)


def refuse_active_runs(plans: list[RunPlan]) -> None:
    """Two job chains (or a job and a local launch) writing one run directory would corrupt it.
    One sacct/squeue query for every run's recorded jobs."""
    recorded = {plan.run_dir: latest_jobs(plan.run_dir) for plan in plans}
    states = query([j.job_id for jobs in recorded.values() for j in jobs])
    for plan in plans:
        active = [f"{j.job_id} ({states[j.job_id].state})" for j in recorded[plan.run_dir]
                  if not states[j.job_id].ended and states[j.job_id].state != "UNKNOWN"]
        check_free(plan.run_dir)
        if active:
            raise UserError(f"{plan.run_dir} already has Slurm jobs queued or running: {', '.join(active)}. "
                            f"Follow them with python tools/launch.py --status {plan.run_dir}, or cancel them "
                            f"(scancel) before submitting again")


def scheduled(plans: list[RunPlan], groups: list[JobGroup]) -> list[RunPlan]:
    """The plans that get a job. A sweep element with none of the ``--stages`` asked for gets
    none: its run directory (and its record of earlier jobs) is left alone."""
    return [plan for plan in plans if any(g.position(plan) is not None for g in groups)]


def submission_summary(groups: list[JobGroup], plans: list[RunPlan]) -> str:
    """What the user reads after submitting: ids, run dirs, how to follow them."""
    done = scheduled(plans, groups)
    left = [plan for plan in plans if plan not in done]
    skipped = [f"# not resubmitted, nothing left to run: {len(left)} run(s) (every stage asked for is complete)",
               *(f"  {plan.run_dir}" for plan in left[:STATUS_LISTED]),
               *([f"  ... and {len(left) - STATUS_LISTED} more"] if len(left) > STATUS_LISTED else [])] if left else []
    if not groups:
        return "\n".join(["# nothing to submit", *skipped])
    plans = done
    lines = [describe_graph(groups), *skipped, "# run directories"]
    for plan in plans:
        ids = ", ".join(f"{g.label} {g.job_id_for(plan)}" for g in groups if g.position(plan) is not None)
        lines.append(f"  {plan.run_dir}  ({ids})")
    first = JobPaths(logs_folder(plans), job_id=groups[0].job_ids[0])
    if len(plans) <= STATUS_LISTED:
        follow = " ".join(str(plan.run_dir) for plan in plans)
    else:  # a large sweep: its recipe folder (which also lists earlier runs made from the recipe)
        follow = f"{plans[0].run_dir.parent}   # every run of the recipe in this output root"
    lines += ["# follow them",
              f"  python tools/launch.py --status {follow}",
              f"  logs: {logs_folder(plans)}/<job id>_<task>_log.out|err (linked from RUN_DIR/slurm/), "
              f"e.g. tail -f {first.stdout}",
              f"  cancel: scancel {' '.join(g.base_id for g in groups)}"]
    return "\n".join(lines)
