"""The Slurm job graph of a submission: which sbatch submissions, in which order, after which.

* one run, several stages: one job per stage, each ``afterok`` on the job of its parent
  stage (the stage it takes its weights from, ``TrainStage.parent``): a chain for
  pre-training -> fine-tuning, a fork for MaskDiT's two unmasking tunings (both wait for
  ``main`` only and may run side by side); a stage without a parent waits for nothing;
* a sweep (N runs): runs with the same stages form a family, and each family gets one job
  ARRAY per stage, element i = run i. A child stage's array waits element-wise,
  ``aftercorr``: its element i starts when element i of the parent stage's array has
  completed successfully. Runs whose sweep element dropped a stage (Table 1's from-scratch
  baseline has no pre-training) form their own family. Why ``aftercorr`` rather than N single jobs with ``afterok``:
  the sweep stays one array per stage (one queue entry each, one ``array_parallelism``
  throttle, one id to cancel), and a fast element's next stage starts at once instead of
  waiting for the whole previous array (what ``afterok:ARRAY`` would do);
* ``--single-job``: one job (or one array) that runs all stages in order.

Every dependent job is submitted with ``--kill-on-invalid-dep=yes``: when a stage fails,
Slurm cancels what depends on it instead of leaving it pending forever.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mdreg.runs.plan import RunPlan


@dataclass
class JobGroup:
    """One sbatch submission: a single job (one run) or an array (one element per run)."""

    index: int                 # 1-based position in the chain
    stages: list[str]          # what each element runs, in order
    plans: list[RunPlan]
    after: "JobGroup | None" = None
    job_ids: list[str] = field(default_factory=list)  # filled in by the submission

    @property
    def is_array(self) -> bool:
        return len(self.plans) > 1

    @property
    def label(self) -> str:
        return "+".join(self.stages)

    @property
    def job_name(self) -> str:
        return f"{self.plans[0].recipe_name}.{self.label}"

    def position(self, plan: RunPlan) -> int | None:
        """Index of ``plan`` among this group's runs (None if the group does not run it)."""
        return next((i for i, p in enumerate(self.plans) if p is plan), None)

    def job_id_for(self, plan: RunPlan) -> str | None:
        i = self.position(plan)
        return None if i is None or not self.job_ids else self.job_ids[i]

    @property
    def base_id(self) -> str | None:
        """The job id (single job) or the array's id, once submitted."""
        return self.job_ids[0].split("_")[0] if self.job_ids else None

    def dependency(self, symbolic: bool = False) -> str | None:
        """``afterok:ID`` / ``aftercorr:ARRAY_ID`` on the previous group (None for the first)."""
        if self.after is None:
            return None
        kind = "aftercorr" if self.is_array else "afterok"
        target = f"<id of job {self.after.index}>" if symbolic else self.after.base_id
        return f"{kind}:{target}"


def chain(plans: list[RunPlan], stages: list[str] | None = None, single_job: bool = False,
          done: dict | None = None) -> list[JobGroup]:
    """The groups to submit, each after the group of its parent stage (dependency order).
    ``done``: run directory -> its complete stages, which get no job (a child of a complete
    stage waits for nothing; :mod:`mdreg.launch.slurm.remaining`)."""
    families: dict[tuple, list[RunPlan]] = {}
    done = done or {}
    for plan in plans:
        finished = done.get(plan.run_dir, set())
        chosen = [s for s in plan.stages if (not stages or s.name in stages) and s.name not in finished]
        names = {s.name for s in chosen}
        tree = tuple((s.name, s.parent if s.parent in names else None) for s in chosen)
        if tree:
            families.setdefault(tree, []).append(plan)
    groups: list[JobGroup] = []
    for tree, members in families.items():
        if single_job:
            groups.append(JobGroup(len(groups) + 1, [name for name, _ in tree], members))
            continue
        by_stage: dict[str, JobGroup] = {}
        for name, parent in tree:
            by_stage[name] = JobGroup(len(groups) + 1, [name], members, by_stage.get(parent))
            groups.append(by_stage[name])
    return groups


def describe_graph(groups: list[JobGroup]) -> str:
    """Text: each group, its array expansion and what it waits for."""
    lines = ["# dependency graph"]
    for g in groups:
        ids = f" = {', '.join(g.job_ids)}" if g.job_ids else ""
        what = f"array of {len(g.plans)} (0-{len(g.plans) - 1})" if g.is_array else "job"
        wait = ""
        if g.after is not None:
            wait = (f"  <- element i after element i of [{g.after.index}] (aftercorr)" if g.is_array
                    else f"  <- after [{g.after.index}] completes successfully (afterok)")
        lines.append(f"[{g.index}] {g.job_name}: {what}, stages {', '.join(g.stages)}{ids}{wait}")
    for g in groups:
        if g.is_array and g.after is None:
            lines.append(f"# array expansion of [{g.index}] (element -> run directory, swept values)")
            for i, plan in enumerate(g.plans):
                values = ", ".join(f"{k}={v}" for k, v in plan.sweep_values.items())
                lines.append(f"  [{i}] {plan.run_dir}  {values}")
    return "\n".join(lines)
