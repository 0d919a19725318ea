"""Evaluating a run trained with sample grids off: the stage's ``sample.sampler`` null, or its
whole ``sample`` section null. tools/evaluate.py builds its sampler from the protocol (it used to
end in ``stages.main.sample.sampler is a value ('ddim'), not a group of keys``, and, with the
section null, in omegaconf's ValueError); tools/sample.py --sampler NAME KEY=VALUE does the same."""
from __future__ import annotations

import json

import pytest

from mdreg.commands.entry import run_cli
from mdreg.commands.evaluate import main as evaluate_main
from mdreg.commands.sample import main as sample_main
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from tests.conftest import tiny_recipe

PROTOCOL = '''
evaluation = dict(metric="shape", stage="main", sampler=L("sampler:ddim")(steps=3), num_samples=8, seed=3,
                  metrics=["shape_fid"])
'''


@pytest.fixture(scope="module", params=["sampler-null", "sample-null"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        recipe = tiny_recipe(root, steps=2, ckpt_every=2)  # sampler=None: no sample grids
        recipe.write_text(recipe.read_text() + PROTOCOL)
        (plan,) = build_plans(recipe, ["stages.main.sample=null"] if request.param == "sample-null" else [])
        LocalExecutor().run(plan)
        assert not (plan.run_dir / "main" / "samples").exists()
        yield plan.run_dir


def test_evaluate_samples_with_the_protocols_sampler(run, monkeypatch, tmp_path_factory, capsys):
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    assert run_cli(evaluate_main, [str(run)]) == 0, capsys.readouterr().err
    (record,) = [json.loads(line) for line in (run / "main" / "metrics.jsonl").read_text().splitlines()
                 if '"tools/evaluate.py"' in line]
    assert record["protocol"]["sampler"] == {"_target_": "sampler:ddim", "steps": 3}
    assert record["num_samples"] == 8 and record["scores"]["shape_fid"] > 0
    settings = json.loads((run / "main" / "eval" / record["samples"].split("/eval/")[1] / "sampling.json").read_text())
    assert settings["sampler_config"] == {"_target_": "sampler:ddim", "steps": 3}


def test_sample_tool_takes_a_sampler_name_and_its_arguments(run, tmp_path, capsys):
    assert run_cli(sample_main, [str(run), "--sampler", "ddim", "steps=2", "--num", "2", "--out",
                                 str(tmp_path / "s")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "s" / "sampling.json").read_text())["sampler_config"] == \
        {"_target_": "sampler:ddim", "steps": 2}
    assert run_cli(sample_main, [str(run), "--sampler", "dim", "--num", "2", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --sampler dim: unknown sampler 'dim'") and "Traceback" not in err
    assert run_cli(sample_main, [str(run), "--num", "2", "--out", str(tmp_path / "u")]) == 2
    assert "error: stages.main.sample.sampler is null: name a sampler with --sampler NAME" in capsys.readouterr().err
