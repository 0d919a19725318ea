"""The Figure-1 toy report (``python tools/toy_report.py RECIPE [overrides]``).
For every run the same launch command made (sweep elements x swept seeds) and every
finished stage: sample ``evaluation.num_samples`` points from the stage's EMA weights with
``evaluation.sampler`` (all coordinates visible: MaskDM sec. 3.3, "we sample ... by setting
M as 1"), compare them with ``evaluation.reference`` (held-out points, another seed) by
sliced Wasserstein-2 and MMD^2 (:mod:`mdreg.evaluation.formulas`), and write

* ``<run>/<stage>/toy_eval.json``: the two distances and how they were measured;
* ``<run>/scatter.png``: the data next to each stage's samples (Fig. 1: the pre-trained
  proxy p_phi_S covering the data, then the fine-tuned joint);
* ``<output_root>/<recipe>/toy_report.json``: mean and std over seeds per (run, stage),
  printed as a table;
* with a baseline (``--baseline ELEMENT``, else the recipe's ``report.baseline``): each element's
  last stage against the baseline's, paired by seed (mean difference, 95% bootstrap interval,
  paired t-test, Holm over the arms of each distance: :mod:`mdreg.reports.statistics`), printed
  and written to ``<output_root>/<recipe>/toy_comparisons.json``.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch

from mdreg.config import instantiate
from mdreg.errors import UserError, did_you_mean
from mdreg.evaluation.toy import measure, stage_samples
from mdreg.reports.statistics import holm, paired
from mdreg.runs.plan import build_plans


def scatter(path: Path, reference: torch.Tensor, panels: dict[str, torch.Tensor], title: str) -> None:
    """Data (red) under each stage's samples (blue), one column per stage. 2-D points: one row;
    3-D points: one row per pair of coordinates (x-y, x-z, y-z), the 2-D marginals that
    masked pre-training with S = 2 learns."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dim = reference.shape[1]
    pairs = [(0, 1)] if dim == 2 else [(0, 1), (0, 2), (1, 2)]
    names = "xyz"
    columns = [("data (held out)", None), *panels.items()]
    fig, axes = plt.subplots(len(pairs), len(columns), figsize=(3.6 * len(columns), 3.6 * len(pairs)), squeeze=False)
    for row, (i, j) in enumerate(pairs):
        for col, (label, points) in enumerate(columns):
            ax = axes[row][col]
            ax.scatter(reference[:, i], reference[:, j], s=1, c="tab:red", alpha=0.5 if points is None else 0.15,
                       linewidths=0)
            if points is not None:
                ax.scatter(points[:, i], points[:, j], s=1, c="tab:blue", alpha=0.35, linewidths=0)
            ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xlabel=names[i], ylabel=names[j])
            if row == 0:
                ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(recipe: str, overrides: list[str], baseline: str | None = None) -> tuple[dict, list[dict]]:
    """(the table, the comparisons with the baseline: [] without one)."""
    plans = build_plans(recipe, overrides)
    if plans[0].cfg.get("evaluation", {}).get("metric") != "toy":
        raise UserError(f"{recipe}: evaluation.metric is not 'toy'; tools/toy_report.py measures the toy recipes "
                        f"(recipes/toy_swissroll.py, recipes/toy_rose.py)")
    summary: dict[str, dict[str, list[dict]]] = {}
    for plan in plans:
        ev = plan.cfg.evaluation
        reference = instantiate(ev.reference, key="evaluation.reference").points
        seed = int(plan.cfg.train.seed)
        panels = {}
        for stage in plan.stages:
            samples = stage_samples(plan, stage.name, int(ev.num_samples), seed=seed + 1)
            if samples is None:
                print(f"{plan.run_name}/{stage.name}: no checkpoint yet (train it with tools/launch.py {recipe})")
                continue
            result = {**measure(samples, reference, int(ev.get("projections", 512)), seed), "seed": seed,
                      "num_samples": int(ev.num_samples), "sampler": str(ev.sampler._target_),
                      "sampler_steps": int(ev.sampler.get("steps", 0))}
            (plan.run_dir / stage.name / "toy_eval.json").write_text(json.dumps(result, indent=2))
            panels[f"{stage.name}: SWD {result['swd']:.4f}, MMD {result['mmd']:.4f}"] = samples
            element = str(plan.sweep_values.get("_name_", plan.run_name))
            summary.setdefault(element, {}).setdefault(stage.name, []).append(result)
        if panels:
            scatter(plan.run_dir / "scatter.png", reference, panels, f"{plan.recipe_name} / {plan.run_name}")
    table = {element: {stage: _stats(rows) for stage, rows in stages.items()} for element, stages in summary.items()}
    root = plans[0].run_dir.parent
    (root / "toy_report.json").write_text(json.dumps(table, indent=2))
    declared = (plans[0].cfg.get("report") or {}).get("baseline")
    if not baseline and declared and declared not in table:  # a half-done sweep still gets its table
        print(f"report.baseline {declared!r} is not measured yet: no comparisons")
    baseline = baseline or (declared if declared in table else None)
    comparisons = against_baseline(table, baseline) if baseline else []
    if comparisons:
        (root / "toy_comparisons.json").write_text(json.dumps(comparisons, indent=2))
    return table, comparisons


def against_baseline(table: dict, baseline: str) -> list[dict]:
    """Each element's last stage minus the baseline's last stage, per distance, over their common
    seeds (the end of training, where Fig. 1 compares); Holm's correction over the arms of a distance."""
    if baseline not in table:
        raise UserError(f"--baseline {baseline!r} is not a measured element{did_you_mean(baseline, list(table))} "
                        f"(measured: {', '.join(table) or 'none'})")
    last = {element: list(stages.values())[-1] for element, stages in table.items()}

    def by_seed(element: str, distance: str) -> dict[int, float]:
        return dict(zip(last[element]["seeds"], last[element][distance]["values"]))

    rows = []
    for distance in ("swd", "mmd"):
        arms = [(e, paired(by_seed(e, distance), by_seed(baseline, distance))) for e in table if e != baseline]
        for (element, result), p_holm in zip(arms, holm([r.p for _, r in arms])):
            rows.append({"distance": distance, "arm": element, "baseline": baseline, "seeds": result.seeds,
                         "diff": result.mean, "ci": result.ci, "t": result.t, "p": result.p, "p_holm": p_holm})
    return rows


def _stats(rows: list[dict]) -> dict:
    out = {"seeds": [r["seed"] for r in rows]}
    for key in ("swd", "mmd"):
        values = [r[key] for r in rows]
        out[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "values": values}
    return out


def format_table(table: dict) -> str:
    from tabulate import tabulate

    rows = []
    for element, stages in table.items():
        for stage, s in stages.items():
            rows.append([element, stage, len(s["seeds"]), f"{s['swd']['mean']:.4f} ± {s['swd']['std']:.4f}",
                         f"{s['mmd']['mean']:.4f} ± {s['mmd']['std']:.4f}"])
    return tabulate(rows, headers=["run", "stage", "seeds", "sliced W2 (mean ± std)", "MMD^2 (mean ± std)"],
                    disable_numparse=True)


def format_comparisons(rows: list[dict]) -> str:
    from tabulate import tabulate

    def number(x, fmt=".4f"):
        return "-" if x is None else format(x, fmt)

    table = [[r["distance"], r["arm"], r["baseline"], len(r["seeds"]), number(r["diff"]),
              "-" if r["ci"] is None else f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]", number(r["p"], ".3g"),
              number(r["p_holm"], ".3g")] for r in rows]
    return tabulate(table, headers=["distance", "arm", "baseline", "seeds", "arm - baseline", "95% CI", "p (paired t)",
                                    "p (Holm)"], disable_numparse=True)
