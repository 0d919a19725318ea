"""The paper's table reproduced from the runs on disk (``python tools/report.py RECIPE [overrides]
[--only A,B]`` or ``RUN_DIR...``).

One row per sweep element (the runs the same launch command makes; a swept ``train.seed``
makes several runs of one element: mean ± sample std across seeds, ``n`` when fewer seeds
were measured), with:

* the measured metrics (the protocol's ``metrics``, mdreg/evaluation/protocol.py) beside the
  paper's ``reported`` numbers. Measured = the newest tools/evaluate.py record of the
  protocol (its digest and first N) in the evaluated stage's metrics.jsonl, else the newest
  score the stage's own ``evaluate`` logged while training (``measured by`` says which);
* the state (``not run``, ``running``/``stopped``/``diverged`` with the steps done, ``done``),
  steps done, device time spent (GPU-hours from the start/end events and the world size; CPU
  runs: core-hours and wall time, see mdreg/runs/records.py) against the recipe's
  estimate (:mod:`mdreg.reports.estimate`: FLOPs per step x steps; GPU-hours at
  ``--peak-tflops`` x ``--mfu`` or ``--images-per-s``), and training TFLOPs done of the total;
* a link to each run's latest sample grid.

Each invocation writes a new folder ``<output_root>/<recipe>/report/<YYYYmmdd-HHMMSS>/`` (or
under ``--out``) and points ``report/latest`` (a relative symlink) at it, so an earlier report
is never overwritten: ``report.md``, ``table.csv``
(per element), ``runs.csv`` (per run), ``loss.png`` (every run's training loss on one figure,
smoothed, :data:`mdreg.reports.plots.SMOOTHING`; ``--log`` for a log axis),
``metric_vs_step.png`` and ``metric_vs_flops.png`` (the protocol's first metric from every
evaluation record against cumulative training steps and training FLOPs: the laptop-scale
comparisons are at equal FLOPs) and ``plots.json`` (the data of each figure). Stages that
start from another one are placed after it (the parent chain), so a pre-trained run's
fine-tuning curve continues where its pre-training ended.

With seeds, the recipe's ``report`` section (or ``--baseline`` / ``--threshold``) adds the arms
against the baseline element, paired by seed, and the training FLOPs each run took to reach a
metric value (:mod:`mdreg.reports.compare`, ``comparisons.csv``, ``threshold.csv``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from mdreg.config.loader import load_recipe
from mdreg.errors import UserError
from mdreg.evaluation.protocol import Protocol
from mdreg.io import writing_into
from mdreg.reports import compare
from mdreg.reports.compare import of_protocol as _of_protocol
from mdreg.reports.estimate import Device, MacCounter, StageCost, estimate_plans
from mdreg.reports.plots import SMOOTHING, Curve, ema_smooth, line_plot
from mdreg.reports.report_tables import (comparison_markdown, element_table, markdown, threshold_markdown,
                                         write_csvs, write_statistics_csv)
from mdreg.runs.plan import RunPlan
from mdreg.runs.records import SOURCE as EVALUATE
from mdreg.runs.records import StageRecord, latest_grid, read_run
from mdreg.runs.rundir import read_meta
from mdreg.runs.sweep import declared

REPORT = "report"
LATEST = "latest"


@dataclass
class RunRow:
    """One run (a sweep element at one seed) as the report sees it."""

    plan: RunPlan
    element: str
    seed: int
    stages: dict[str, StageRecord]
    protocol: Protocol | None
    costs: dict[str, StageCost]

    @property
    def ran(self) -> bool:
        return any(r.state != "not started" for r in self.stages.values())

    @property
    def status(self) -> str:
        if not self.ran:
            return "not run"
        for name, rec in self.stages.items():
            if rec.state != "done":
                return f"{rec.state if rec.state != 'not started' else 'waiting'} ({name} {rec.done}/{rec.total})"
        return "done"

    def offsets(self) -> dict[str, tuple[int, float]]:
        """(steps, TFLOPs) trained before each stage: its parent chain's full stages."""
        out: dict[str, tuple[int, float]] = {}
        for s in self.plan.stages:
            steps, tflops = out.get(s.parent, (0, 0.0)) if s.parent else (0, 0.0)
            if s.parent:
                steps += next(p.steps for p in self.plan.stages if p.name == s.parent)
                tflops += self.costs[s.parent].step_tflops * self.costs[s.parent].steps
            out[s.name] = (steps, tflops)
        return out

    def measurement(self) -> tuple[dict, str, int | None]:
        """(scores, how they were measured, checkpoint step) of the evaluated stage, or ({}, "", None)."""
        p = self.protocol
        if p is None or p.stage not in self.stages:
            return {}, "", None
        evals = [e for e in self.stages[p.stage].evals if p.primary in e["scores"]]
        ours = [e for e in evals if e["source"] == EVALUATE and _of_protocol(e, p)]
        pool = ours or [e for e in evals if e["source"] != EVALUATE]
        if not pool:
            return {}, "", None
        best = max(pool, key=lambda e: e["step"])
        how = (f"{EVALUATE}, N={p.num_samples[0]}" if ours else
               f"stage evaluate ({best['record'].get('metric', '')})")
        return best["scores"], f"{how} @ step {best['step']}", best["step"]

    def reported(self) -> dict[str, float]:
        if self.protocol is None:
            return {}
        step = self.measurement()[2]
        if step is None:  # not measured yet: the paper's number for the stage's planned last step
            step = next((s.steps for s in self.plan.stages if s.name == self.protocol.stage), None)
        return self.protocol.reported_for(None, step)

    def spend(self) -> dict[str, float]:
        recs = self.stages.values()
        return {"gpu_h": sum(r.seconds(gpu=True) for r in recs) / 3600,
                "core_h": sum(r.core_seconds() for r in recs) / 3600,
                "wall_h": sum(r.wall_seconds() for r in recs) / 3600}

    def estimate(self, device: Device) -> dict[str, float]:
        costs = self.costs.values()
        return {"est_gpu_h": sum(device.gpu_hours(c.total_pflops * 1e15, c.steps * c.batch) for c in costs),
                "tflops_total": sum(c.step_tflops * c.steps for c in costs),
                "tflops_done": sum(c.step_tflops * min(self.stages[c.stage].done, c.steps) for c in costs)}

    def grid(self) -> Path | None:
        names = [self.protocol.stage] if self.protocol else []
        for name in names + [s.name for s in reversed(self.plan.stages)]:
            found = latest_grid(self.plan.run_dir / name)
            if found:
                return found
        return None


def elements(plans: list[RunPlan]) -> list[str]:
    """The sweep element of each run: its declared ``_name_`` and the values swept on the command
    line besides ``train.seed`` (for a named element: those that vary among its runs), else ``default``."""
    out = []
    for plan in plans:
        values, name = plan.sweep_values, plan.sweep_values.get("_name_")
        same = [p.sweep_values for p in plans if p.sweep_values.get("_name_") == name]
        keys = [k for k in values if k not in ("_name_", "train.seed")
                and (name is None or any(v.get(k) != values[k] for v in same))]
        out.append(", ".join(([str(name)] if name is not None else []) + [f"{k}={values[k]}" for k in keys])
                   or "default")
    return out


def in_recipe_order(plans: list[RunPlan]) -> list[RunPlan]:
    """Runs read from folders, in the order a report of their recipe lists them: its declared sweep
    elements in the recipe's order, then seeds ascending (run names only break ties). A run whose
    recipe file is gone, or whose element the recipe no longer declares, comes after, by name."""
    recipes = {p.run_dir: str(read_meta(p.run_dir).get("recipe_path") or p.recipe) for p in plans}  # absolute
    cells: dict[str, list[dict]] = {}  # each recipe's declared sweep elements' values, in order
    for recipe in dict.fromkeys(recipes.values()):
        try:
            cells[recipe] = [e.values for e in declared(load_recipe(recipe))]
        except (UserError, OSError):
            cells[recipe] = []

    def key(plan: RunPlan) -> tuple:
        shown = {k: str(v) for k, v in plan.sweep_values.items()}
        known = cells[recipes[plan.run_dir]]
        index = next((i for i, values in enumerate(known) if all(shown.get(k) == str(v) for k, v in values.items())),
                     len(known))
        seed = plan.sweep_values.get("train.seed", plan.cfg.train.get("seed", 0))
        return index, int(seed) if str(seed).lstrip("-").isdigit() else 0, plan.run_name

    return sorted(plans, key=key)


def collect_rows(plans: list[RunPlan]) -> list[RunRow]:
    """A :class:`RunRow` per plan (each run's costs from the estimate; models traced once per config)."""
    counter, rows = MacCounter(), []
    for plan, element in zip(plans, elements(plans)):
        protocol = Protocol.from_config(plan.cfg) if plan.cfg.get("evaluation") is not None else None
        costs = {c.stage: c for c in estimate_plans([plan], counter)}  # run names may repeat across recipes
        rows.append(RunRow(plan, element, int(plan.cfg.train.seed), read_run(plan), protocol, costs))
    return rows


# -- the figures ---------------------------------------------------------------------------
def curves(rows: list[RunRow], smoothing: float) -> dict[str, list[Curve]]:
    """The loss, metric-vs-step and metric-vs-FLOPs curves of every run that has data."""
    out: dict[str, list[Curve]] = {"loss": [], "step": [], "flops": []}
    seeds = {e: sorted({r.seed for r in rows if r.element == e}) for e in {r.element for r in rows}}
    for r in rows:
        offsets, name = r.offsets(), f"{r.element} seed {r.seed}" if len(seeds[r.element]) > 1 else r.element
        variant = seeds[r.element].index(r.seed)
        for stage, rec in r.stages.items():
            if rec.losses:
                label = name + (f" / {stage}" if len(r.stages) > 1 else "")
                xs = [offsets[stage][0] + s for s, _ in rec.losses]
                out["loss"].append(Curve(label, xs, ema_smooth([v for _, v in rec.losses], smoothing), r.element,
                                         variant))
        metric = r.protocol.primary if r.protocol else None
        for ours in (False, True):  # the stage's own evaluate, then tools/evaluate.py's records of the protocol
            points = sorted((offsets[stage][0] + e["step"], offsets[stage][1] + r.costs[stage].step_tflops * e["step"],
                             e["scores"][metric]) for stage, rec in r.stages.items() for e in rec.evals
                            if metric in e["scores"] and (e["source"] == EVALUATE) == ours
                            and (not ours or _of_protocol(e, r.protocol)))
            if points:
                label = name + (f" ({EVALUATE})" if ours else "")
                out["step"].append(Curve(label, [p[0] for p in points], [p[2] for p in points], r.element, variant,
                                         markers=True))
                out["flops"].append(Curve(label, [p[1] for p in points], [p[2] for p in points], r.element, variant,
                                          markers=True))
    return out


def draw(rows: list[RunRow], out: Path, smoothing: float, log: bool) -> dict:
    """The three PNGs; returns ``{name: {"file", "xlabel", "ylabel", "lines", "curves"}}``."""
    found = curves(rows, smoothing)
    metric = next((r.protocol.primary for r in rows if r.protocol), "metric")
    hlines = {}
    for r in rows:
        value = r.reported().get(metric)
        if value is not None:
            hlines[f"paper: {r.element}"] = (value, r.element)
    specs = {"loss": ("loss.png", found["loss"], "training step (cumulative over the stages it starts from)",
                      f"training loss (EMA {smoothing:g})", "training loss", log, {}),
             "metric_vs_step": ("metric_vs_step.png", found["step"], "training step (cumulative)", metric,
                                f"{metric} vs training step", log, hlines),
             "metric_vs_flops": ("metric_vs_flops.png", found["flops"], "training TFLOPs (cumulative, estimate)",
                                 metric, f"{metric} vs training FLOPs", log, hlines)}
    info = {}
    for name, (file, cs, xlabel, ylabel, title, log_y, lines) in specs.items():
        drawn = line_plot(out / file, cs, xlabel, ylabel, f"{rows[0].plan.recipe_name}: {title}", log_y=log_y,
                          hlines=lines)
        info[name] = {"file": file, "xlabel": xlabel, "ylabel": ylabel, **drawn,
                      "curves": [{"label": c.label, "group": c.group, "x": c.xs, "y": c.ys} for c in cs]}
    return info


def new_folder(parent: Path) -> Path:
    """A new ``parent/<YYYYmmdd-HHMMSS>[-k]`` folder, and ``parent/latest`` pointing at it."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp, k = time.strftime("%Y%m%d-%H%M%S"), 1
    while True:
        out = parent / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            out.mkdir()
            break
        except FileExistsError:
            k += 1
    link = parent / f".{LATEST}.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(out.name, target_is_directory=True)
    os.replace(link, parent / LATEST)  # atomic: a reader sees the old report or the new one
    return out


def write_report(plans: list[RunPlan], out: Path | None = None, device: Device | None = None,
                 smoothing: float = SMOOTHING, log: bool = False, baseline: str | None = None,
                 thresholds: dict[str, float] | None = None) -> Path:
    """Write the report of ``plans`` into a new folder under ``out`` (default ``<output_root>/<recipe>/report``)
    and point ``out/latest`` at it; returns the new folder."""
    import json

    if not plans:
        raise UserError("no runs to report")
    device = device or Device()
    parent = Path(out) if out else plans[0].run_dir.parent / REPORT
    if any(p.run_dir.resolve() == parent.resolve() for p in plans):
        raise UserError(f"{parent} is a run directory; choose another report folder with --out")
    rows = collect_rows(plans)
    first = next((r.protocol for r in rows if r.protocol), None)
    metrics = list(first.metrics) if first else []
    chosen = compare.settings(rows, metrics, baseline, thresholds)
    elsewhere = ("tools/report.py writes beside the runs unless told otherwise: give --out DIR on a writable disk"
                 if out is None else "Give --out a folder on a writable disk")
    with writing_into(parent, "the report", elsewhere):  # e.g. runs on a read-only archive
        out = new_folder(parent)
    table = element_table(rows, metrics, device)
    plots = draw(rows, out, smoothing, log)
    comps = compare.comparisons(rows, metrics, chosen.baseline) if chosen.baseline else []
    crossings = {f"{m}={v:g}": compare.threshold_table(rows, m, v) for m, v in chosen.thresholds.items()}
    sections = comparison_markdown(comps, chosen.baseline) if comps else []
    for (m, v), found in zip(chosen.thresholds.items(), crossings.values()):
        sections += threshold_markdown(found, m, v, chosen.baseline)
    text = markdown(rows, table, metrics, out, device, plots, sections)
    (out / "report.md").write_text(text)
    write_csvs(rows, table, metrics, out, device)
    write_statistics_csv(out, comps, crossings)
    (out / "plots.json").write_text(json.dumps(plots, indent=1) + "\n")
    return out
