"""tools/evaluate.py: a run's protocol sampled and scored as one resumable job, each record
written once (beside the samples and in the stage's metrics.jsonl) with protocol and provenance."""
from __future__ import annotations

import json
import shutil

import pytest

from omegaconf import OmegaConf

from mdreg.commands.entry import run_cli
from mdreg.config import load_config
from mdreg.commands.evaluate import main
from mdreg.evaluation.protocol_job import evaluate_run
from mdreg.runs.records import SOURCE
from mdreg.evaluation.inception_metrics import compute_metrics
from mdreg.evaluation.shape_metric import ShapeMetric, to_images
from mdreg.reports.toy import report
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from tests.conftest import tiny_recipe
from tests.evaluation.test_fid import _folder, random_inception  # noqa: F401  (fixture)
from tests.tiny import REPO

SHAPE = '''
evaluation = dict(metric="shape", stage="main", sampler=L("sampler:ddim")(steps=3), num_samples=[8, 12], seed=3,
                  metrics=["shape_fid", "confident"], reported=[{"num_samples": 12, "step": 4, "shape_fid": 1.5}])
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny 8 px run, 4 steps, a milestone checkpoint every 2 (trained once for the module)."""
    root = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(root / "cache"))
        recipe = tiny_recipe(root, steps=4, ckpt_every=2, sampler="L('sampler:ddim')(steps=3)")
        recipe.write_text(recipe.read_text().replace("milestone_every=None", "milestone_every=2") + SHAPE)
        (plan,) = build_plans(recipe, [])
        LocalExecutor().run(plan)
        yield plan.run_dir, root / "cache"


def records(stage_dir):
    lines = (stage_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("source") == SOURCE]


def test_milestones_scored_once_each_beside_the_samples_and_in_metrics_jsonl(run, monkeypatch, capsys):
    run_dir, cache = run
    monkeypatch.setenv("MDREG_CACHE", str(cache))
    assert run_cli(main, [str(run_dir), "--checkpoint", "2"]) == 0  # one point first, as if the job had stopped
    assert [(r["checkpoint_step"], r["num_samples"]) for r in records(run_dir / "main")] == [(2, 8), (2, 12)]
    assert run_cli(main, [str(run_dir), "--checkpoint", "all-milestones"]) == 0
    got = records(run_dir / "main")
    assert [(r["checkpoint_step"], r["num_samples"]) for r in got] == [(2, 8), (2, 12), (4, 8), (4, 12)]
    out = capsys.readouterr().out
    assert "step 2 N=8: already recorded" in out and "step 4 N=12: shape_fid" in out
    # the scores are the shape metric of exactly the first N images of the sampled folder
    folder = run_dir / "main" / "eval" / got[2]["samples"].split("/eval/")[1]
    assert sorted(p.name for p in folder.iterdir()) == ["images", "result-n12-" + got[3]["protocol_digest"] + ".json",
                                                         "result-n8-" + got[2]["protocol_digest"] + ".json",
                                                         "samples.npz", "sampling.json"]
    assert len(list((folder / "images").glob("*.png"))) == 12
    dataset = OmegaConf.to_container(load_config(run_dir / "config.yaml").data.dataset)
    expected = ShapeMetric.for_dataset(dataset).score(to_images(folder / "samples.npz")[:8])
    assert got[2]["scores"]["shape_fid"] == pytest.approx(expected["shape_fid"])
    assert json.loads((folder / f"result-n8-{got[2]['protocol_digest']}.json").read_text())["scores"] == got[2]["scores"]
    # what a record carries: the protocol, the paper's number where it applies, provenance
    last = got[3]
    assert last["protocol"]["sampler"] == {"_target_": "sampler:ddim", "steps": 3} and last["protocol"]["seed"] == 3
    assert last["reported"] == {"shape_fid": 1.5} and got[2]["reported"] == {}
    prov = last["provenance"]
    assert prov["python"] and prov["torch"] and prov["host"] and prov["mdreg"] == "0.1.0"
    assert "commit" in prov["git"] or prov["git"]["available"] is False
    assert json.loads((folder / "sampling.json").read_text())["seed"] == 3
    # a rerun does nothing: no new line, no new image
    stamp = (folder / "images" / "000000.png").stat().st_mtime_ns
    assert run_cli(main, [str(run_dir), "--checkpoint", "all-milestones"]) == 0
    assert len(records(run_dir / "main")) == 4 and (folder / "images" / "000000.png").stat().st_mtime_ns == stamp


def test_a_record_lost_from_metrics_jsonl_comes_back_from_its_result_file(run, monkeypatch, tmp_path):
    run_dir, cache = run
    monkeypatch.setenv("MDREG_CACHE", str(cache))
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, symlinks=True)
    first = evaluate_run(copy, checkpoint="4", echo=lambda *_: None)
    path = copy / "main" / "metrics.jsonl"
    kept = [line for line in path.read_text().splitlines() if SOURCE not in line]
    path.write_text("\n".join(kept) + "\n" + '{"stage": "main", "cut off')  # and a line cut off by a kill
    (copy / "main" / "eval" / first[0]["samples"].split("/eval/")[1] / "samples.npz").unlink()  # no resampling
    again = evaluate_run(copy, checkpoint="4", echo=lambda *_: None)
    assert [r["scores"] for r in again] == [r["scores"] for r in first]
    assert [r["eval_id"] for r in records(copy / "main")] == [r["eval_id"] for r in first]


@pytest.mark.parametrize("args,message", [
    (["--checkpoint", "3"], "--checkpoint 3: stage 'main' keeps the checkpoints of steps 2, 4"),
    (["--checkpoint", "best"], "--checkpoint best: give last, all-milestones or a step number"),
    (["train.seed=1"], "train.seed=1: tools/evaluate.py changes only evaluation.* keys"),
    (["--stage", "pretrain"], "evaluation.stage='pretrain' is not a stage of this run"),
    (["evaluation.metric=fid", "evaluation.metrics=[fid]", "evaluation.reported=[]"],
     "evaluation.metric=fid needs the FID Inception weights"),
    (["evaluation.metric=toy"], "evaluation.metrics: 'shape_fid' is not a toy metric"),
    (["+evaluation.weights=model"], "evaluation.weights=model: tools/evaluate.py samples the EMA weights"),
])
def test_bad_requests_are_one_error_line(run, capsys, monkeypatch, args, message):
    monkeypatch.delenv("MDREG_INCEPTION_WEIGHTS", raising=False)
    assert run_cli(main, [str(run[0]), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_untrained_runs_and_non_runs_are_refused(tmp_path, capsys):
    from mdreg.runs.rundir import prepare

    bare = build_plans(tiny_recipe(tmp_path, name="bare", steps=2), [])[0]
    recipe = tiny_recipe(tmp_path, steps=2, sampler="L('sampler:ddim')(steps=3)")
    recipe.write_text(recipe.read_text() + SHAPE)
    (plan,) = build_plans(recipe, [])
    for run in (bare, plan):
        prepare(run)
    assert run_cli(main, [str(bare.run_dir)]) == 2
    assert "error: the run has no evaluation section" in capsys.readouterr().err
    assert run_cli(main, [str(plan.run_dir)]) == 2
    assert f"stage 'main' of {plan.run_dir} has no checkpoint yet; train it first" in capsys.readouterr().err
    assert run_cli(main, [str(tmp_path)]) == 2
    assert f"{tmp_path} is not a run directory (no config.yaml)" in capsys.readouterr().err


def test_fid_protocol_with_several_sample_counts(run, tmp_path, random_inception, monkeypatch):  # noqa: F811
    """metric fid: compute_metrics on the first N samples, the reference an image folder."""
    run_dir, cache = run
    monkeypatch.setenv("MDREG_CACHE", str(cache))
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, symlinks=True)
    _folder(tmp_path / "ref", seed=2, count=5, res=8)
    overrides = ["evaluation.metric=fid", f"+evaluation.reference={tmp_path / 'ref'}", "evaluation.metrics=[fid,is]",
                 "evaluation.reported=[{num_samples: 4, fid: 3.0}]"]
    cfg = OmegaConf.load(copy / "config.yaml")  # num_samples [4, 5]: a list is set in the file, not by override
    cfg.evaluation.num_samples = [4, 5]
    (copy / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    got = evaluate_run(copy, checkpoint="4", overrides=overrides, inception_weights=str(random_inception),
                       echo=lambda *_: None)
    assert [r["num_samples"] for r in got] == [4, 5] and all(set(r["scores"]) == {"fid", "is"} for r in got)
    assert got[0]["details"]["num_samples"] == 4 and got[1]["details"]["num_reference"] == 5
    assert got[0]["details"]["reference_resolution"] == 8 and got[0]["reported"] == {"fid": 3.0}
    folder = copy / "main" / "eval" / got[0]["samples"].split("/eval/")[1]
    direct = compute_metrics(folder / "samples_n4.npz", tmp_path / "ref", random_inception, ["fid"],
                             reference_resolution=8)
    assert got[0]["scores"]["fid"] == pytest.approx(direct["fid"]) and got[0]["scores"]["fid"] != got[1]["scores"]["fid"]


def test_toy_protocol_gives_tools_toy_report_numbers(tmp_path):
    from tests.evaluation.test_toy_report import TINY

    args = [f"train.output_root={tmp_path}", *TINY]
    (plan,) = build_plans(REPO / "recipes" / "toy_swissroll.py", args, only=["masked"])
    LocalExecutor().run(plan)
    report(str(REPO / "recipes" / "toy_swissroll.py"), args)  # measures the runs that have checkpoints
    expected = json.loads((plan.run_dir / "finetune" / "toy_eval.json").read_text())
    (record,) = evaluate_run(plan.run_dir, echo=lambda *_: None)
    assert record["metric"] == "toy" and record["scores"]["swd"] == pytest.approx(expected["swd"])
    assert record["scores"]["mmd"] == pytest.approx(expected["mmd"])


def test_launch_evaluate_trains_then_scores_and_refuses_a_bad_protocol_first(tmp_path, monkeypatch, capsys):
    from mdreg.commands.launch import main as launch_main

    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MDREG_INCEPTION_WEIGHTS", raising=False)
    recipe = tiny_recipe(tmp_path, steps=2, sampler="L('sampler:ddim')(steps=3)")
    recipe.write_text(recipe.read_text() + SHAPE)
    bad = ["evaluation.metric=fid", "evaluation.metrics=[fid]", "evaluation.reported=[]"]
    assert run_cli(launch_main, [str(recipe), "--evaluate", *bad]) == 2
    assert "needs the FID Inception weights" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any training
    assert run_cli(launch_main, [str(recipe), "--evaluate"]) == 0
    got = records(tmp_path / "runs" / "tiny" / "default" / "main")
    assert [(r["checkpoint_step"], r["num_samples"]) for r in got] == [(2, 8), (2, 12)]  # every N of the protocol
