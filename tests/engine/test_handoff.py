"""Stage hand-off: which keys are adapted (and logged) and which mismatches are errors."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mdreg.engine.handoff import load_matching, resize_pos_embed
from mdreg.errors import UserError
from tests.conftest import make_trainer


class Tiny(nn.Module):
    def __init__(self, grid=4, mask_token=False, fixed_pos=False, width=8):
        super().__init__()
        self.proj = nn.Linear(width, width)
        if fixed_pos:
            self.register_buffer("pos_embed", torch.full((1, grid * grid, width), float(grid)))
        else:
            self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, width))
            self.num_prefix_tokens = 1  # a time token before the grid, as U-ViT has
        if mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, width))


def test_mask_token_on_one_side_is_skipped_and_logged():
    src = Tiny(mask_token=True)
    dst = Tiny(mask_token=False)
    notes = load_matching(dst, src.state_dict(), "src")
    assert any("mask_token" in n and "skipped" in n for n in notes)
    assert torch.equal(dst.proj.weight, src.proj.weight)
    back = Tiny(mask_token=True)
    token = back.mask_token.detach().clone()
    notes = load_matching(back, dst.state_dict(), "dst")
    assert any("mask_token" in n and "kept" in n for n in notes) and torch.equal(back.mask_token, token)


def test_learned_pos_embed_is_interpolated_bicubic_keeping_extra_tokens():
    src, dst = Tiny(grid=4), Tiny(grid=8)
    notes = load_matching(dst, {"_orig_mod." + k: v for k, v in src.state_dict().items()}, "src")
    assert notes == ["pos_embed: learned table interpolated (bicubic, first 1 token(s) kept) (1, 17, 8) -> (1, 65, 8)"]
    assert torch.equal(dst.pos_embed[:, :1], src.pos_embed[:, :1])  # the time token is kept
    grid = src.pos_embed[0, 1:].reshape(4, 4, 8).permute(2, 0, 1)[None]
    want = torch.nn.functional.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    torch.testing.assert_close(dst.pos_embed[0, 1:], want[0].permute(1, 2, 0).reshape(64, 8))
    assert resize_pos_embed(torch.zeros(1, 17, 8), torch.Size([1, 65, 4]), 1) is None  # width differs
    assert resize_pos_embed(torch.zeros(1, 17, 8), torch.Size([1, 65, 8]), 2) is None  # 15 is not a square grid


def test_fixed_pos_embed_keeps_the_recomputed_table():
    dst = Tiny(grid=8, fixed_pos=True)
    notes = load_matching(dst, Tiny(grid=4, fixed_pos=True).state_dict(), "src")
    assert "recomputed" in notes[0] and bool((dst.pos_embed == 8.0).all())


def test_other_mismatches_list_the_keys():
    src = Tiny(width=8)
    dst = Tiny(width=6)
    with pytest.raises(UserError, match=r"shape changed: pos_embed \(1, 17, 8\) -> \(1, 17, 6\), proj\.weight \(8, 8\) -> \(6, 6\), proj\.bias"):
        load_matching(dst, src.state_dict(), "src")
    extra = {**Tiny().state_dict(), "head.weight": torch.zeros(1)}
    del extra["proj.bias"]
    with pytest.raises(UserError, match=r"missing: proj\.bias; unexpected: head\.weight"):
        load_matching(Tiny(), extra, "src")


def test_init_from_an_mdreg_checkpoint_at_a_new_resolution(recipe_factory):
    """Train at 8px, start a 16px stage from the checkpoint's EMA weights: every weight is
    taken over, the position table is interpolated, and the adaptation is logged."""
    recipe = recipe_factory(steps=2)
    source = make_trainer(recipe, ["train.run_name=source"])
    source.fit()
    ema = source.parts.ema.state_dict()
    target = make_trainer(recipe, ["train.run_name=target", "model.img_size=16", "data.dataset.resolution=16",
                                   f"+stages.main.init_from={{path: '{source.last_good}', weights: ema}}"])
    target.restore()
    got = target.parts.model.state_dict()
    assert torch.equal(got["mid_block.attn.qkv.weight"], ema["mid_block.attn.qkv.weight"])
    assert got["pos_embed"].shape == (1, 1 + 64, 32)
    assert torch.equal(target.parts.ema.model.state_dict()["pos_embed"], got["pos_embed"])
    target.fit()
    event = [json.loads(line) for line in (target.dir / "metrics.jsonl").read_text().splitlines()][0]
    assert event["event"] == "init_from" and "interpolated" in event["adapted"][0]


def test_official_checkpoints_are_read_renamed_and_their_weights_entry_honoured(recipe_factory, tmp_path):
    """An official maskdm training file ({"ema": ..., "model": ...} in the official key layout,
    wrapped as its GaussianDiffusion saves it) initialises the stage from the entry asked for."""
    from mdreg.models.official import to_official

    recipe = recipe_factory(steps=1)
    reference = make_trainer(recipe, ["train.run_name=ref"]).parts.model.state_dict()
    entries = {name: {f"model.{k}": torch.full_like(v, fill) for k, v in to_official(reference, "maskdm").items()}
               for name, fill in (("ema", 0.5), ("model", -0.25))}
    torch.save({**entries, "step": 7}, tmp_path / "official.pt")
    for weights, fill in (("ema", 0.5), ("model", -0.25)):
        override = f"+stages.main.init_from={{path: '{tmp_path / 'official.pt'}', kind: maskdm, weights: {weights}}}"
        trainer = make_trainer(recipe, [f"train.run_name={weights}", override])
        trainer.restore()
        assert bool((trainer.parts.model.patch_embed.proj.weight == fill).all())
        trainer.fit()
        event = json.loads((trainer.dir / "metrics.jsonl").read_text().splitlines()[0])
        assert event["event"] == "init_from" and f"official maskdm checkpoint, {weights}" in event["source"]
    with pytest.raises(UserError, match="not an official checkpoint kind"):  # at planning, before any I/O
        make_trainer(recipe, ["train.run_name=bad", f"+stages.main.init_from={{path: '{tmp_path / 'official.pt'}', "
                                                    f"kind: dalle}}"])
