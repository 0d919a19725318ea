"""tools/toy_report.py on tiny toy runs: distances per stage, JSON, scatter PNGs, seeds pooled."""
import json

import pytest
from PIL import Image

from mdreg.errors import UserError
from mdreg.launch.local import LocalExecutor
from mdreg.reports.statistics import paired_t
from mdreg.reports.toy import format_comparisons, format_table, report
from mdreg.runs.plan import build_plans
from tests.tiny import REPO

TINY = ["train.max_steps=3", "model.embed_dim=16", "model.depth=1", "model.num_heads=2",
        "data.dataset.num_points=256", "stages.pretrain.batch_size=16", "stages.finetune.batch_size=16",
        "evaluation.num_samples=64", "evaluation.sampler.steps=4", "evaluation.reference.num_points=64",
        "evaluation.projections=16"]


@pytest.mark.parametrize("recipe", ["toy_swissroll.py", "toy_rose.py"])
def test_report_measures_every_stage_of_every_run_and_seed(recipe, tmp_path):
    args = [f"train.output_root={tmp_path}", *TINY, "train.seed=0,1"]
    for plan in build_plans(REPO / "recipes" / recipe, args):
        LocalExecutor().run(plan)
    table, comparisons = report(str(REPO / "recipes" / recipe), args)
    assert set(table) == {"masked", "scratch", "scratch_short"}
    assert set(table["masked"]) == {"pretrain", "finetune"}
    assert set(table["scratch"]) == set(table["scratch_short"]) == {"finetune"}
    cell = table["masked"]["finetune"]
    assert cell["seeds"] == [0, 1] and len(cell["swd"]["values"]) == 2 and cell["swd"]["mean"] > 0
    runs = tmp_path / recipe[:-3]
    assert json.loads((runs / "toy_report.json").read_text()) == table
    pngs = sorted(runs.glob("*/scatter.png"))
    assert len(pngs) == 6
    with Image.open(pngs[0]) as img:
        assert img.format == "PNG" and img.width > 400
    measured = [json.loads(f.read_text()) for f in sorted(runs.glob("masked*/finetune/toy_eval.json"))]
    assert sorted(m["seed"] for m in measured) == [0, 1]
    assert all(m["num_samples"] == 64 and m["sampler_steps"] == 4 and {"swd", "mmd"} <= set(m) for m in measured)
    assert "masked" in format_table(table) and "±" in format_table(table)

    # the recipe's report.baseline (scratch): each arm's last stage against scratch's, paired by seed
    assert [(c["distance"], c["arm"]) for c in comparisons] == [
        ("swd", "masked"), ("swd", "scratch_short"), ("mmd", "masked"), ("mmd", "scratch_short")]
    for c in comparisons:
        arm, base = table[c["arm"]]["finetune"], table["scratch"]["finetune"]
        diffs = [a - b for a, b in zip(arm[c["distance"]]["values"], base[c["distance"]]["values"])]
        assert c["seeds"] == [0, 1] and c["diff"] == pytest.approx(sum(diffs) / 2)
        assert c["p"] == pytest.approx(paired_t(diffs)[1]) and c["p"] <= c["p_holm"] <= 1
    assert json.loads((runs / "toy_comparisons.json").read_text()) == json.loads(json.dumps(comparisons))
    assert "scratch_short" in format_comparisons(comparisons)
    with pytest.raises(UserError, match="'scrach' is not a measured element.*scratch"):
        report(str(REPO / "recipes" / recipe), args, baseline="scrach")


def test_report_refuses_image_recipes():
    with pytest.raises(UserError, match="evaluation.metric is not 'toy'"):
        report(str(REPO / "recipes" / "maskdm_celebahq256_l.py"), [])
