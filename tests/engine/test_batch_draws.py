"""What each micro-batch sees: label dropout, flips, mask-ratio schedules, RNG streams."""
from __future__ import annotations

import pytest
import torch

from mdreg.rng import stream_seed
from mdreg.errors import ConfigError
from tests.conftest import make_trainer
from tests.engine import objectives


def _run(recipe, overrides=()):
    objectives.CALLS.clear()
    trainer = make_trainer(recipe, list(overrides))
    trainer.fit()
    return trainer, list(objectives.CALLS)


def test_label_dropout_replaces_labels_with_the_null_class(recipe_factory):
    recipe = recipe_factory(backbone="test_uvit_cfg", objective="test_spy", label_dropout=0.3, steps=12,
                            batch_size=16)
    trainer, calls = _run(recipe)
    labels = torch.cat([c["y"] for c in calls])
    null = trainer.parts.model.null_label
    frac = (labels == null).float().mean().item()
    assert 0.15 < frac < 0.45, frac  # 192 draws at p = 0.3
    assert set(labels[labels != null].tolist()) <= set(range(4))
    _, again = _run(recipe, ["train.run_name=again"])
    assert torch.equal(labels, torch.cat([c["y"] for c in again]))  # deterministic


def test_label_dropout_needs_a_null_class(recipe_factory):
    with pytest.raises(ConfigError, match=r"stages\.main\.label_dropout=0\.1 needs .*null_label"):
        make_trainer(recipe_factory(label_dropout=0.1))


def test_hflip_is_deterministic_and_flips_about_p(recipe_factory):
    recipe = recipe_factory(objective="test_spy", hflip=0.5, steps=8, batch_size=16)
    trainer, calls = _run(recipe)
    _, again = _run(recipe, ["train.run_name=again"])
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(calls, again))
    flipped = total = 0
    for step, call in enumerate(calls):
        from mdreg.engine.step import batch_indices
        idx = batch_indices(len(trainer.parts.dataset), 16, step, trainer.parts.stage.seed)
        originals = trainer.parts.dataset.images[idx]
        same = (call["x"] == originals).flatten(1).all(1)
        mirrored = (call["x"] == originals.flip(-1)).flatten(1).all(1)
        assert bool((same | mirrored).all())
        flipped += int((mirrored & ~same).sum())
        total += len(idx)
    assert 0.3 < flipped / total < 0.7


def test_mask_ratio_follows_the_stage_schedule(recipe_factory):
    """The trainer asks the stage for each step's ratio (a schedule registered by the test
    falls from 0.75 to 0 over 4 steps): the objective sees 16 - floor(r*16) visible tokens."""
    recipe = recipe_factory(objective="test_spy", masker="patch", ratio=0.75, steps=4)
    _, calls = _run(recipe, ["+stages.main.mask_schedule={_target_: 'mask_schedule:test_linear_down'}"])
    keeps = [c["keep"] for c in calls]
    assert keeps == [4, 8, 12, None]  # ratios 0.75, 0.5, 0.25, 0 (None: no masking)


def test_streams_differ_per_step_and_micro_batch():
    seeds = {stream_seed(7, step, micro) for step in range(50) for micro in range(8)}
    assert len(seeds) == 400 and all(0 <= s < 2 ** 63 for s in seeds)
    assert stream_seed(7, 3, 1) == stream_seed(7, 3, 1) != stream_seed(8, 3, 1)
