"""--estimate: fvcore MACs per stage at the recipe's batch and mask ratio, totals and GPU-hours."""
from collections import Counter

import pytest
from omegaconf import OmegaConf

from mdreg.errors import UserError
from mdreg.reports.estimate import Device, MacCounter, StageCost, cost_table, estimate_plans
from mdreg.runs.plan import build_plans
from tests.tiny import REPO, launch

TABLE1 = REPO / "recipes" / "maskdm_celeba64_table1.py"


def test_table1_costs_at_full_size_follow_the_mask_ratio():
    plans = build_plans(TABLE1, [], only=["scratch", "m10_patch", "m50_patch", "m90_patch"])
    costs = {(c.run, c.stage): c for c in estimate_plans(plans)}
    full = costs[("scratch", "finetune")]
    assert full.gmacs == pytest.approx(12.2, rel=0.03)  # MaskDM-S, 64px, 256 tokens + time token
    assert full.mean_ratio == 0.0 and full.steps == 250_000 and full.batch == 128
    ratios = [costs[(f"m{r}_patch", "pretrain")].mean_ratio for r in (10, 50, 90)]
    assert ratios == [25 / 256, 128 / 256, 230 / 256]  # floor(r * 256) tokens hidden, as the trainer draws
    g10, g50, g90 = (costs[(f"m{r}_patch", "pretrain")].gmacs for r in (10, 50, 90))
    assert full.gmacs > g10 > g50 > g90 > 0 and g50 == pytest.approx(full.gmacs / 2, rel=0.08)
    c = costs[("m90_patch", "pretrain")]
    assert c.batch == 512 and c.step_tflops == pytest.approx(6 * c.gmacs * 512 / 1e3)
    assert c.total_pflops == pytest.approx(c.step_tflops * 50_000 / 1e3)
    assert costs[("m90_patch", "finetune")].gmacs == pytest.approx(full.gmacs)


def test_a_ratio_histogram_is_averaged_exactly_through_three_traces(tmp_path):
    model = OmegaConf.create({"_target_": "backbone:uvit", "img_size": 8, "patch_size": 2, "embed_dim": 32,
                              "depth": 3, "num_heads": 2})
    counter = MacCounter()
    keeps = Counter({16: 3.0, 13: 1.0, 11: 2.0, 8: 5.0, 4: 1.0})
    exact = sum(counter.at(model, k) * w for k, w in keeps.items()) / sum(keeps.values())
    fitted = MacCounter()
    assert fitted.mean(model, keeps) == pytest.approx(exact, rel=1e-6)
    assert len(fitted._gmacs) == 3  # min, middle and max token counts only


def test_gpu_hours_from_peak_and_mfu_or_from_throughput():
    cost = StageCost("r", "s", steps=1000, batch=100, precision="bf16", mean_ratio=0.0, gmacs=10.0)
    flops = cost.total_pflops * 1e15
    assert flops == pytest.approx(3 * 2 * 10e9 * 100 * 1000)
    assert Device(100.0, 0.5).gpu_hours(flops, 1e5) == pytest.approx(flops / 50e12 / 3600)
    assert Device(images_per_s=50.0).gpu_hours(flops, 1e5) == pytest.approx(1e5 / 50 / 3600)
    table = cost_table([cost, StageCost("q", "s", 10, 1, "fp32", 0.5, 1.0)], Device(100.0, 0.5))
    assert "(run total)" in table and "TOTAL" in table and "2 run(s)" in table
    with pytest.raises(UserError, match="--mfu"):
        Device(100.0, 1.5)


def test_estimate_from_the_command_line():
    out = launch(TABLE1, "--estimate", "--only", "m90_patch", "--images-per-s", "400", check=True).stdout
    assert "m90_patch" in out and "pretrain" in out and "finetune" in out and "400 training images/s" in out
