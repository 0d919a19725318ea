"""tools/bench.py at tiny size on the CPU: the numbers it reports hang together.

Speed itself is never asserted here (DEVELOPERS.md: targets are shown by the benchmark's
output, not by timed tests); what is checked is that each case runs the trainer's real step
and that FLOPs, TFLOP/s, MFU and the data loader's rate are derived as documented.
"""
from __future__ import annotations

import json
import math

import pytest

from mdreg.commands.bench import main
from mdreg.errors import UserError
from tests.tiny import REPO

FAST = ["--device", "cpu", "--warmup", "1", "--windows", "2", "--window-steps", "1"]
TINY_UVIT = ["--model", "uvit", "--model-arg", "embed_dim=32", "depth=2", "num_heads=2", "--img-size", "16",
             "--in-chans", "3", "--objective", "mdsm", "--masker", "patch"]


def test_named_model_cases_and_derived_numbers(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main([*TINY_UVIT, "--mask-ratio", "0", "0.75", "--batch", "4", "--precision", "fp32", *FAST,
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "images/s" in table and "MFU" in table
    report = json.loads(out.read_text())
    unmasked, masked = report["results"]
    assert (unmasked["mask_ratio"], masked["mask_ratio"]) == (0.0, 0.75)
    assert masked["gmacs_per_image"] < 0.5 * unmasked["gmacs_per_image"]  # masked tokens are dropped
    peak = report["info"]["matmul_peak_tflops"]
    for case in (unmasked, masked):
        assert case["images_per_s"] > 0 and case["batch"] == 4 and case["ema"] is True
        assert case["tflops"] == pytest.approx(case["images_per_s"] * case["gmacs_per_image"] * 6 / 1e3, rel=1e-6)
        assert case["mfu"] == pytest.approx(case["tflops"] / peak, rel=1e-6)
        assert case["peak_memory_gb"] is None  # CPU: no allocator statistics
        assert math.isfinite(case["loss"])  # a real training loss


def test_recipe_stage_and_its_data_loader(tmp_path, capsys):
    out = tmp_path / "bench.json"
    tiny = ["model.img_size=8", "model.embed_dim=32", "model.depth=2", "data.dataset.num_images=64",
            "data.dataset.resolution=8", "train.num_workers=1"]  # read as the trainer reads: 1 worker
    assert main(["--recipe", str(REPO / "recipes" / "quickstart.py"), "--stage", "finetune", *tiny, "--batch", "8",
                 "--precision", "fp32", *FAST, "--data-batches", "3", "--no-ema", "--json", str(out)]) == 0
    assert "data loader (Shapes, num_workers=1)" in capsys.readouterr().out
    report = json.loads(out.read_text())
    (case,) = report["results"]
    assert case["name"] == "quickstart:finetune" and case["ema"] is False and case["mask_ratio"] == 0.0
    assert case["precision"] == "fp32"  # set on a stage that leaves precision at its default
    assert report["data"]["samples_per_s"] > 0 and report["data"]["batches"] == 3 and report["data"]["num_workers"] == 1


def test_recipe_or_model_not_both():
    with pytest.raises(UserError, match="give either --recipe"):
        main(["--recipe", "recipes/quickstart.py", "--model", "uvit"])
