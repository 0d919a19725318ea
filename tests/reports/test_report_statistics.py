"""tools/report.py's statistics on a real finished sweep: 2 elements x 2 seeds of a tiny recipe
trained 4 steps, the shape metric at steps 2 and 4. The paired differences, p-values and
compute-to-threshold are recomputed here from the runs' metrics.jsonl; each invocation writes a
new folder; reference values carry no arrow; a one-point loss curve is drawn."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from mdreg.commands.entry import run_cli
from mdreg.commands.report import main
from mdreg.engine.distributed import DistEnv
from mdreg.launch.local import LocalExecutor
from mdreg.reports.estimate import estimate_plans
from mdreg.reports.plots import Curve, line_plot
from mdreg.runs.plan import build_plans
from tests.conftest import tiny_recipe

SWEEP = '''
stages["main"].update(evaluate=L("metric:shape")(_partial_=True, num=16, every=2))
evaluation = dict(metric="shape", stage="main", sampler=L("sampler:ddim")(steps=3), num_samples=16,
                  metrics=["shape_fid", "shape_fid_floor", "confident"])
sweep = [{"_name_": "base"}, {"stages.main.optimizer.lr": 3e-3, "_name_": "arm"}]
report = dict(baseline="base")
'''
SEEDS = ["train.seed=0,1"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(root / "cache"))
        recipe = tiny_recipe(root, name="tinystats", steps=4, log_every=1, sampler="L('sampler:ddim')(steps=3)")
        recipe.write_text(recipe.read_text() + SWEEP)
        plans = build_plans(recipe, SEEDS)
        for plan in plans:
            LocalExecutor(DistEnv()).run(plan)
        yield recipe, plans


def evals(plan) -> dict[int, dict]:
    lines = (plan.run_dir / "main" / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["scores"] for r in map(json.loads, lines) if r.get("event") == "evaluation"}


def test_paired_comparison_against_the_baseline(sweep, tmp_path):
    recipe, plans = sweep
    out = tmp_path / "rep"
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out)]) == 0
    base = [evals(p)[4]["shape_fid"] for p in plans[:2]]   # plans: base seed 0, 1; arm seed 0, 1
    arm = [evals(p)[4]["shape_fid"] for p in plans[2:]]
    rows = {r["metric"]: r for r in csv.DictReader(open(out / "latest" / "comparisons.csv"))}
    assert set(rows) == {"shape_fid"}  # the floor (a reference) and confident (a diagnostic) are not compared
    row = rows["shape_fid"]
    assert (row["arm"], row["baseline"], row["seeds"]) == ("arm", "base", "0 1")
    diffs = [a - b for a, b in zip(arm, base)]
    assert [float(d) for d in row["diffs"].split()] == pytest.approx(diffs)
    assert float(row["mean_diff"]) == pytest.approx(np.mean(diffs))
    assert float(row["p"]) == pytest.approx(stats.ttest_rel(arm, base).pvalue)
    assert float(row["p_holm"]) == pytest.approx(float(row["p"]))      # one arm: Holm changes nothing
    assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((min(diffs), max(diffs)))
    md = (out / "latest" / "report.md").read_text()
    assert "## Against the baseline `base`" in md
    head = next(line for line in md.splitlines() if line.startswith("| element |"))
    assert "| shape_fid ↓ |" in head and "| shape_fid_floor |" in head and "| confident |" in head
    cells = next(line for line in md.splitlines() if line.startswith("| base |")).split(" | ")
    assert cells[1] == "2"  # how many seeds, not their values


def test_compute_to_threshold_is_interpolated(sweep, tmp_path):
    """The threshold halfway between seed 0's two scores: the curve crosses it at 3 steps' FLOPs."""
    recipe, plans = sweep
    first, last = evals(plans[0])[2]["shape_fid"], evals(plans[0])[4]["shape_fid"]
    value = (first + last) / 2
    out = tmp_path / "rep"
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out), "--threshold", f"shape_fid={value!r}"]) == 0
    tflops = {(c.run, c.stage): c.step_tflops for c in estimate_plans(plans)}[(plans[0].run_name, "main")]
    found = {(r["element"], r["seed"]): r for r in csv.DictReader(open(out / "latest" / "threshold.csv"))}
    got = found[("base", "0")]
    if first > last:  # falling: it reaches the midpoint between the two evaluations
        assert float(got["tflops"]) == pytest.approx(3 * tflops) and got["at_first_point"] == "False"
    else:             # rising: it was already there at the first evaluation
        assert float(got["tflops"]) == pytest.approx(2 * tflops) and got["at_first_point"] == "True"
    assert "## Compute to shape_fid ≤" in (out / "latest" / "report.md").read_text()
    # a diagnostic has no direction, and an unknown baseline: refused before anything is written
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out), "--threshold", "confident=0.5"]) == 2
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out), "--baseline", "bse"]) == 2
    assert len([p for p in out.iterdir() if p.name != "latest"]) == 1


def test_every_invocation_writes_a_new_folder(sweep, tmp_path):
    recipe, _ = sweep
    out = tmp_path / "rep"
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out)]) == 0
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(out)]) == 0
    folders = sorted(p for p in out.iterdir() if p.name != "latest")
    assert len(folders) == 2 and all((f / "report.md").is_file() for f in folders)
    assert (out / "latest").is_symlink() and (out / "latest").resolve() == folders[-1].resolve()


def test_a_curve_of_one_point_is_drawn(tmp_path):
    """A run that logged its loss once: a marker (read back from matplotlib's line), not an invisible
    zero-length line."""
    drawn = line_plot(tmp_path / "one.png", [Curve("one", [5], [0.3], "g")], "step", "loss", "one point")
    assert drawn["points"] == [1] and drawn["markers"] == [True]
    two = line_plot(tmp_path / "two.png", [Curve("two", [5, 6], [0.3, 0.2], "g")], "step", "loss", "two points")
    assert two["markers"] == [False]


def test_a_folder_of_runs_is_reported_in_the_recipes_order(sweep, tmp_path):
    """The recipe declares base before arm; their run folders sort the other way round."""
    recipe, plans = sweep
    folder = plans[0].run_dir.parent
    assert sorted(p.name for p in folder.iterdir() if (p / "config.yaml").is_file())[0].startswith("arm")
    out = tmp_path / "rep"
    assert run_cli(main, [str(folder), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "latest" / "runs.csv")))
    assert [(r["element"], r["seed"]) for r in rows] == [("base", "0"), ("base", "1"), ("arm", "0"), ("arm", "1")]
    comparisons = list(csv.DictReader(open(out / "latest" / "comparisons.csv")))
    assert [(c["arm"], c["baseline"]) for c in comparisons] == [("arm", "base")]
