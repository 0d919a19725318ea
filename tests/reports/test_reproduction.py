"""tools/report.py on a real partial sweep: 2 elements x 2 seeds of a tiny recipe trained here
for 4 steps with the shape metric every 2 steps; one element stopped at step 2 (seed 0) and
not run (seed 1). Markdown and CSV cells, PNGs and the data behind them."""
from __future__ import annotations

import csv
import json
import re
import statistics

import numpy as np
import pytest
from PIL import Image

from mdreg.commands.entry import run_cli
from mdreg.engine.distributed import DistEnv
from mdreg.engine.trainer import Trainer
from mdreg.evaluation.protocol_job import evaluate_run
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from mdreg.runs.rundir import prepare, write_stage_config
from mdreg.reports.estimate import estimate_plans
from mdreg.reports.plots import SMOOTHING, ema_smooth
from mdreg.commands.report import main
from tests.conftest import trainer_for, tiny_recipe

SWEEP = '''
stages["main"].update(evaluate=L("metric:shape")(_partial_=True, num=16, every=2))
evaluation = dict(metric="shape", stage="main", sampler=L("sampler:ddim")(steps=3), num_samples=16,
                  metrics=["shape_fid", "confident"])
sweep = [{"_name_": "lr1e-3"}, {"stages.main.optimizer.lr": 3e-3, "_name_": "lr3e-3"}]
'''
SEEDS = ["train.seed=0,1"]
TAB10 = {(31, 119, 180), (255, 127, 14)}  # matplotlib's first two tab10 colours: elements 1 and 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """lr1e-3 x seeds 0, 1 trained; lr3e-3 seed 0 stopped at step 2 of 4; lr3e-3 seed 1 not run."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(root / "cache"))
        recipe = tiny_recipe(root, name="tinysweep", steps=4, log_every=1, sampler="L('sampler:ddim')(steps=3)")
        recipe.write_text(recipe.read_text() + SWEEP)
        plans = build_plans(recipe, SEEDS)
        for plan in plans[:2]:
            LocalExecutor(DistEnv()).run(plan)
        stopped = plans[2]
        prepare(stopped)
        write_stage_config(stopped, "main")
        trainer = trainer_for(stopped, "main", DistEnv())
        step = trainer.train_step

        def stop_after_two(x, y):
            out = step(x, y)
            if trainer.step >= 2:
                trainer.request_stop()
            return out

        trainer.train_step = stop_after_two
        trainer.fit()
        yield recipe, plans, root / "cache"


def jsonl(run_dir):
    return [json.loads(line) for line in (run_dir / "main" / "metrics.jsonl").read_text().splitlines()]


def final_scores(run_dir) -> dict:
    return [r for r in jsonl(run_dir) if r.get("event") == "evaluation"][-1]["scores"]


def test_markdown_and_csv_cells(sweep, tmp_path, capsys):
    recipe, plans, _ = sweep
    out = tmp_path / "rep"
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(tmp_path / "rep")]) == 0
    out = (tmp_path / "rep" / "latest").resolve()
    md = (out / "report.md").read_text()
    assert md in capsys.readouterr().out
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.splitlines() if line.startswith("| lr")}
    fids = [final_scores(p.run_dir)["shape_fid"] for p in plans[:2]]
    done = rows["lr1e-3"]
    assert done[1:3] == ["2", "done 2/2"]  # how many seeds
    low, high = sorted(fids)  # 2 seeds: the 95% bootstrap interval of the mean is their range
    assert done[3] == f"{statistics.fmean(fids):.4g} ± {statistics.stdev(fids):.2g} [{low:.4g}, {high:.4g}]"
    assert "core-h" in done[5] and "wall" in done[5]
    links = re.findall(r"\[seed (\d)\]\(([^)]+)\)", done[-1])
    assert [s for s, _ in links] == ["0", "1"]
    assert all((out / target).resolve() == (plans[int(s)].run_dir / "main/samples/step_00000004.png").resolve()
               for s, target in links)
    partial = rows["lr3e-3"]
    assert partial[2] == "seed 0: stopped (main 2/4), seed 1: not run" and partial[3] == partial[4] == "—"
    runs = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.split("## Runs")[1].splitlines()
            if line.startswith("| ")}
    (stopped,) = [v for k, v in runs.items() if "lr3e-3+seed-0" in k]
    assert stopped[2:4] == ["stopped (main 2/4)", "main 2/4"] and stopped[4].endswith("@ step 2")
    assert float(stopped[5]) == pytest.approx(final_scores(plans[2].run_dir)["shape_fid"], rel=1e-3)  # interim
    assert runs["lr3e-3+seed-1"][2:5] == ["not run", "main 0/4", "—"]
    table = list(csv.DictReader(open(out / "table.csv")))
    assert [r["element"] for r in table] == ["lr1e-3", "lr3e-3"]
    assert float(table[0]["shape_fid_mean"]) == pytest.approx(statistics.fmean(fids))
    assert table[0]["shape_fid_n"] == "2" and table[1]["shape_fid_n"] == "0" and table[1]["shape_fid_mean"] == ""
    per_run = list(csv.DictReader(open(out / "runs.csv")))
    assert [(r["seed"], r["status"], r["main_steps"]) for r in per_run] == [
        ("0", "done", "4"), ("1", "done", "4"), ("0", "stopped (main 2/4)", "2"), ("1", "not run", "0")]
    assert float(per_run[1]["shape_fid"]) == pytest.approx(fids[1]) and per_run[3]["shape_fid"] == ""
    costs = {(c.run, c.stage): c for c in estimate_plans(plans)}
    step_tflops = costs[(plans[0].run_name, "main")].step_tflops
    assert float(per_run[2]["tflops_done"]) == pytest.approx(2 * step_tflops)
    assert float(per_run[3]["tflops_total"]) == pytest.approx(4 * step_tflops) and float(per_run[3]["core_h"]) == 0
    assert float(per_run[0]["core_h"]) > 0 and float(per_run[0]["gpu_h"]) == 0  # a CPU run


def test_pngs_hold_the_plotted_curves(sweep, tmp_path):
    recipe, plans, _ = sweep
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(tmp_path / "rep"), "--log"]) == 0
    out = (tmp_path / "rep" / "latest").resolve()
    plots = json.loads((out / "plots.json").read_text())
    for name in ("loss", "metric_vs_step", "metric_vs_flops"):
        with Image.open(out / plots[name]["file"]) as img:
            assert img.format == "PNG" and img.size == (800, 500)
            pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
        colours = {tuple(c) for c in np.unique(pixels, axis=0)}
        assert len(colours) > 50 and TAB10 <= colours  # both elements' line colours, not a blank canvas
        assert plots[name]["lines"] == ["lr1e-3 seed 0", "lr1e-3 seed 1", "lr3e-3 seed 0"]
    loss = {c["label"]: c for c in plots["loss"]["curves"]}
    logged = [(r["step"], r["loss"]) for r in jsonl(plans[1].run_dir) if "loss" in r]
    assert loss["lr1e-3 seed 1"]["x"] == [s for s, _ in logged] == [1, 2, 3, 4]
    assert loss["lr1e-3 seed 1"]["y"] == pytest.approx(ema_smooth([v for _, v in logged], SMOOTHING))
    assert plots["loss"]["points"] == [4, 4, 2]
    step = {c["label"]: c for c in plots["metric_vs_step"]["curves"]}
    evals = [(r["step"], r["scores"]["shape_fid"]) for r in jsonl(plans[0].run_dir) if r.get("event") == "evaluation"]
    assert list(zip(step["lr1e-3 seed 0"]["x"], step["lr1e-3 seed 0"]["y"])) == evals and len(evals) == 2
    tflops = {(c.run, c.stage): c.step_tflops for c in estimate_plans(plans)}[(plans[0].run_name, "main")]
    flops = {c["label"]: c for c in plots["metric_vs_flops"]["curves"]}
    assert flops["lr3e-3 seed 0"]["x"] == pytest.approx([2 * tflops])
    assert run_cli(main, [str(recipe), *SEEDS, "--out", str(tmp_path / "rep"), "--smoothing", "0"]) == 0
    assert (tmp_path / "rep" / "latest").resolve() != out.resolve()  # a new report; the first one is kept
    raw = {c["label"]: c for c in json.loads((tmp_path / "rep" / "latest" / "plots.json").read_text())["loss"]["curves"]}
    assert raw["lr1e-3 seed 1"]["y"] == pytest.approx([v for _, v in logged])


def test_run_dirs_default_folder_and_an_evaluate_record(sweep, tmp_path, monkeypatch, capsys):
    """From the recipe folder instead of the recipe; tools/evaluate.py's record is what is measured."""
    recipe, plans, cache = sweep
    monkeypatch.setenv("MDREG_CACHE", str(cache))
    import shutil

    folder = tmp_path / "tinysweep"
    shutil.copytree(plans[0].run_dir.parent, folder, symlinks=True, ignore=shutil.ignore_patterns("report"))
    (record,) = evaluate_run(folder / plans[0].run_name, echo=lambda *_: None)
    assert run_cli(main, [str(folder)]) == 0
    md = (folder / "report" / "latest" / "report.md").read_text()
    runs = md.split("## Runs")[1]
    assert f"tools/evaluate.py, N=16 @ step 4 | {record['scores']['shape_fid']:.4g}" in runs
    lines = json.loads((folder / "report" / "latest" / "plots.json").read_text())["metric_vs_step"]["lines"]
    assert "lr1e-3 seed 0 (tools/evaluate.py)" in lines and len(lines) == 4
    assert "| lr3e-3 | 1 | seed 0: stopped (main 2/4) |" in md  # the run never created is not in the folder
    capsys.readouterr()
    assert run_cli(main, [str(tmp_path / "nothing")]) == 2
    assert "neither a recipe (.py) nor a run directory" in capsys.readouterr().err
