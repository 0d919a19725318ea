"""The reproduction report's tables (tools/report.py, :mod:`mdreg.reports.reproduction`): one row
per sweep element (seeds aggregated), one per run, as Markdown and CSV.

The rows are :class:`mdreg.reports.reproduction.RunRow` objects (status, measurement, reported
numbers, spend, estimate, grid); numbers are shown with 4 significant digits (3 for costs), wall
times as seconds or H:MM:SS. Only runs whose evaluated stage is done enter an element's mean ± std
and its 95% bootstrap interval (metrics with a direction: :func:`mdreg.reports.compare.direction`;
reference values and diagnostics get no arrow and no interval). The statistics sections (arms
against the baseline, compute to a threshold: :mod:`mdreg.reports.compare`) are written here too.
"""
from __future__ import annotations

import csv
import os
import statistics
import time
from pathlib import Path

from mdreg.reports.compare import arrow, direction
from mdreg.reports.estimate import Device
from mdreg.reports.statistics import bootstrap_ci


def num(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def wall(h: float) -> str:
    """Wall time: ``12.3 s`` under a minute, else ``H:MM:SS``."""
    s = h * 3600
    return f"{s:.3g} s" if s < 60 else f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def spent_text(spend: dict) -> str:
    if spend["gpu_h"] > 0:
        return f"{num(spend['gpu_h'], 3)} GPU-h ({wall(spend['wall_h'])} wall)"
    if spend["wall_h"] > 0:
        return f"{num(spend['core_h'], 3)} core-h ({wall(spend['wall_h'])} wall)"
    return ""


def element_table(rows: list, metrics: list[str], device: Device) -> list[dict]:
    """One dict per element (in plan order): seeds, states, metrics mean/std/n, paper, spend, estimate."""
    out = []
    for element in dict.fromkeys(r.element for r in rows):
        mine = [r for r in rows if r.element == element]
        states = [r.status for r in mine]
        done = sum(s == "done" for s in states)
        status = "not run" if all(s == "not run" for s in states) else ", ".join(
            [f"done {done}/{len(mine)}"] * bool(done) + [f"seed {r.seed}: {r.status}" for r in mine
                                                        if r.status not in ("done",)])
        entry = {"element": element, "seeds": [r.seed for r in mine], "status": status,
                 "paper": next((r.reported() for r in mine if r.reported()), {}),
                 "grids": [(r.seed, r.grid()) for r in mine if r.grid()]}
        final = [r for r in mine if r.protocol and r.stages[r.protocol.stage].state == "done"]
        for m in metrics:  # runs whose evaluated stage is done; the runs table shows the others' interim scores
            values = [r.measurement()[0][m] for r in final if m in r.measurement()[0]]
            entry[m] = (*mean_std(values), len(values))
            entry[f"{m}_ci"] = bootstrap_ci(values) if direction(m) else None
        for key in ("gpu_h", "core_h", "wall_h"):
            entry[key] = sum(r.spend()[key] for r in mine)
        for key in ("est_gpu_h", "tflops_total", "tflops_done"):
            entry[key] = sum(r.estimate(device)[key] for r in mine)
        out.append(entry)
    return out


def link(path: Path | None, out: Path, text: str) -> str:
    return f"[{text}]({os.path.relpath(path, out)})" if path else ""


def markdown(rows: list, table: list[dict], metrics: list[str], out: Path, device: Device,
             plots: dict, sections: list[str] = ()) -> str:
    """The report: the element table, the runs table, ``sections`` (the statistics), the paper rows, the plots."""
    first = next((r for r in rows if r.protocol), None)
    paper_cols = [m for m in metrics if any(m in e["paper"] for e in table)]
    lines = [f"# {rows[0].plan.recipe_name}: reproduction report", "",
             f"{len(rows)} run(s) under `{rows[0].plan.run_dir.parent}`, read {time.strftime('%Y-%m-%d %H:%M')}.",
             f"Protocol: {first.protocol.describe()}." if first else "No evaluation section: no metrics.",
             "Measured: mean ± std across the seeds whose evaluated stage is done (n: how many, when fewer than "
             "the seeds); the runs table also shows interim scores. "
             + ("" if paper_cols else "The paper reports no number for this protocol."),
             f"Estimate: {device.describe()}; training TFLOPs = 3 x 2 x forward MACs x global batch x steps.", ""]
    references = [m for m in metrics if not direction(m)]
    if references:
        lines[-1:-1] = [f"No arrow ({', '.join(references)}): a reference value of real data or a diagnostic, not a "
                        "score to optimise (docs/reports.md). [lo, hi]: 95% bootstrap interval of the mean over "
                        "the seeds (with 3 seeds it is their range)."]
    head = ["element", "seeds", "status"]
    for m in metrics:
        head += [f"{m}{arrow(m)}"] + ([f"{m} (paper)"] if m in paper_cols else [])
    head += ["spent", "est. GPU-h", "TFLOPs done / total", "latest samples"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["element"], str(len(e["seeds"])), e["status"]]
        for m in metrics:
            mean, std, n = e[m]
            text = "" if mean is None else f"{num(mean)} ± {num(std, 2)}" if n > 1 else num(mean)
            if e[f"{m}_ci"]:
                text += " [{}, {}]".format(*(num(v) for v in e[f"{m}_ci"]))
            if mean is not None and n < len(e["seeds"]):
                text += f" (n={n})"
            cells += [text or "—"] + ([num(e["paper"].get(m)) or "—"] if m in paper_cols else [])
        cells += [spent_text(e) or "—", num(e["est_gpu_h"], 3),
                  f"{num(e['tflops_done'], 3)} / {num(e['tflops_total'], 3)}",
                  " ".join(link(g, out, f"seed {s}") for s, g in e["grids"]) or "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| run | seed | status | steps | measured by | "
              + " | ".join(metrics) + " | wall | spent | est. GPU-h |", "|" + "---|" * (8 + len(metrics))]
    for r in rows:
        scores, how, _ = r.measurement()
        steps = ", ".join(f"{n} {s.done}/{s.total}" for n, s in r.stages.items())
        spend = r.spend()
        lines.append("| " + " | ".join([link(r.plan.run_dir, out, r.plan.run_name) if r.ran else r.plan.run_name,
                                         str(r.seed), r.status, steps, how or "—",
                                         *[num(scores.get(m)) or "—" for m in metrics],
                                         wall(spend["wall_h"]) if spend["wall_h"] else "—", spent_text(spend) or "—",
                                         num(r.estimate(device)["est_gpu_h"], 3)]) + " |")
    lines += list(sections)
    papers = dict.fromkeys(r.protocol.paper for r in rows if r.protocol and r.protocol.paper)
    if papers:
        lines += ["", "## Paper rows", ""] + [f"* {text}" for text in papers]
    lines += ["", "## Plots", ""] + [f"![{name}]({info['file']})" for name, info in plots.items()]
    return "\n".join(lines) + "\n"


def write_csvs(rows: list, table: list[dict], metrics: list[str], out: Path, device: Device) -> None:
    with open(out / "table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["element", "seeds", "n_seeds", "status",
                    *[f"{m}_{k}" for m in metrics for k in ("mean", "std", "n", "ci_low", "ci_high")],
                    *[f"paper_{m}" for m in metrics], "gpu_h", "core_h", "wall_h", "est_gpu_h", "tflops_done",
                    "tflops_total"])
        for e in table:
            w.writerow([e["element"], " ".join(map(str, e["seeds"])), len(e["seeds"]), e["status"],
                        *[v if v is not None else "" for m in metrics
                          for v in (*e[m], *(e[f"{m}_ci"] or (None, None)))],
                        *[e["paper"].get(m, "") for m in metrics], e["gpu_h"], e["core_h"], e["wall_h"],
                        e["est_gpu_h"], e["tflops_done"], e["tflops_total"]])
    stages = list(dict.fromkeys(s for r in rows for s in r.stages))
    with open(out / "runs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["element", "seed", "run_dir", "status", *[f"{s}_steps" for s in stages], "measured_by",
                    *metrics, *[f"paper_{m}" for m in metrics], "gpu_h", "core_h", "wall_h", "est_gpu_h",
                    "tflops_done", "tflops_total", "grid"])
        for r in rows:
            scores, how, _ = r.measurement()
            paper, spend, est = r.reported(), r.spend(), r.estimate(device)
            w.writerow([r.element, r.seed, r.plan.run_dir, r.status,
                        *[r.stages[s].done if s in r.stages else "" for s in stages], how,
                        *[scores.get(m, "") for m in metrics], *[paper.get(m, "") for m in metrics],
                        spend["gpu_h"], spend["core_h"], spend["wall_h"], est["est_gpu_h"], est["tflops_done"],
                        est["tflops_total"], r.grid() or ""])


def p_text(p: float | None) -> str:
    return "—" if p is None else "<0.001" if p < 0.001 else f"{p:.3f}"


def interval(ci) -> str:
    return "—" if not ci else f"[{num(ci[0])}, {num(ci[1])}]"


def comparison_markdown(comps: list[dict], baseline: str) -> list[str]:
    """The arms against ``baseline``, paired by seed (:func:`mdreg.reports.compare.comparisons`)."""
    lines = ["", f"## Against the baseline `{baseline}`", "",
             "Paired by seed: per seed the arm's value minus the baseline's (runs whose evaluated stage is done, "
             "seeds both have); mean, 95% bootstrap interval of the mean difference, two-sided paired t-test, "
             "and Holm's adjustment over the arms of each metric. Negative is better for ↓ metrics.", "",
             "| metric | arm | pairs | arm − baseline | 95% CI | per seed | p (paired t) | p (Holm) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in comps:
        t = c["test"]
        per_seed = ", ".join(f"{s}: {num(d)}" for s, d in zip(t.seeds, t.diffs)) or "—"
        lines.append(f"| {c['metric']}{arrow(c['metric'])} | {c['arm']} | {len(t.seeds)} | "
                     f"{num(t.mean) or '—'} | {interval(t.ci)} | {per_seed} | {p_text(t.p)} | {p_text(t.p_holm)} |")
    return lines


def threshold_markdown(table: list[dict], metric: str, value: float, baseline: str | None) -> list[str]:
    """Training TFLOPs to reach ``metric`` ``value`` (:func:`mdreg.reports.compare.threshold_table`)."""
    sign = "≤" if direction(metric) == "lower" else "≥"
    base = next((e["mean"] for e in table if e["element"] == baseline), None)
    lines = ["", f"## Compute to {metric} {sign} {value:g}", "",
             "Cumulative training TFLOPs (estimate) at which each run's evaluation curve first reaches the value, "
             "interpolated between the evaluations around it; `≤`: already at the first evaluation. Mean ± std "
             "and 95% bootstrap interval over the runs that reached it.", "",
             "| element | reached | TFLOPs | 95% CI | per seed |" + (" / baseline |" if base else ""),
             "|---|---|---|---|---|" + ("---|" if base else "")]
    for e in table:
        mean = "—" if e["mean"] is None else num(e["mean"], 3) + (f" ± {num(e['std'], 2)}" if e["std"] else "")
        seeds = ", ".join(f"{s}: " + ("not reached" if c is None else ("≤" if c.at_first_point else "") + num(c.x, 3))
                          for s, c in e["seeds"].items()) or "—"
        ratio = [("—" if e["mean"] is None else f"{e['mean'] / base:.2f}x")] if base else []
        lines.append("| " + " | ".join([e["element"], f"{e['reached']}/{e['runs']}", mean,
                                         interval(e["ci"]), seeds, *ratio]) + " |")
    return lines


def write_statistics_csv(out: Path, comps: list[dict], thresholds: dict[str, list[dict]]) -> None:
    """``comparisons.csv`` (one row per metric and arm) and ``threshold.csv`` (per threshold, element, seed)."""
    with open(out / "comparisons.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["metric", "arm", "baseline", "seeds", "diffs", "mean_diff", "ci_low", "ci_high", "t", "p",
                    "p_holm"])
        for c in comps:
            t = c["test"]
            w.writerow([c["metric"], c["arm"], c["baseline"], " ".join(map(str, t.seeds)),
                        " ".join(map(repr, t.diffs)), t.mean, *(t.ci or ("", "")), t.t, t.p, t.p_holm])
    with open(out / "threshold.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["metric", "threshold", "element", "seed", "tflops", "at_first_point"])
        for key, table in thresholds.items():
            metric, value = key.split("=")
            for e in table:
                for seed, c in e["seeds"].items():
                    w.writerow([metric, value, e["element"], seed, "" if c is None else c.x,
                                "" if c is None else c.at_first_point])
