"""A stage's ``evaluate`` metric: scored from fresh EMA samples every N steps and at the end,
into metrics.jsonl and tensorboard (the quality curve of a run, with no download)."""
from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mdreg.errors import ConfigError
from tests.conftest import make_trainer

EVALUATE = "+stages.main.evaluate={_target_: 'metric:shape', _partial_: true, num: 16, every: 2}"
SAMPLER = "stages.main.sample.sampler={_target_: 'sampler:ddim', steps: 3}"


def test_shape_metric_is_logged_every_n_steps_and_at_the_end(recipe_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))  # the 8 px classifier is trained once in here
    trainer = make_trainer(recipe_factory(steps=5), [EVALUATE, SAMPLER])
    result = trainer.fit()
    records = [json.loads(line) for line in (trainer.dir / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "eval/shape_fid" in r]
    assert [r["step"] for r in scored] == [2, 4, 5]
    assert all(r["eval/shape_fid"] > r["eval/shape_fid_floor"] > 0 for r in scored)  # 5 steps learn nothing
    assert 0 <= scored[-1]["eval/confident"] <= 1 and result["eval/shape_fid"] == scored[-1]["eval/shape_fid"]
    events = EventAccumulator(str(trainer.dir)).Reload()
    assert [e.step for e in events.Scalars("main/eval/shape_fid")] == [2, 4, 5]


def test_the_metric_must_fit_the_dataset(recipe_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="metric:shape needs num >= 2"):
        make_trainer(recipe_factory(steps=1), [EVALUATE.replace("num: 16", "num: 1"), SAMPLER])


def test_the_quickstart_scores_the_fine_tuned_model_at_its_end():
    """Issue 13: the quickstart logs the shape metric of 256 EMA samples when fine-tuning ends;
    issue 20: the pre-trained model is not scored (MaskDM scores the fine-tuned one; 7 s of the
    2-minute budget)."""
    from mdreg.config import load_recipe
    from mdreg.config.lazy import target_ref
    from tests.tiny import REPO

    cfg = load_recipe(REPO / "recipes" / "quickstart.py")
    assert list(cfg.stages) == ["pretrain", "finetune"]
    assert cfg.stages.pretrain.evaluate is None
    finetune = cfg.stages.finetune.evaluate
    assert target_ref(finetune) == "metric:shape" and (finetune.num, finetune.every) == (256, None)
