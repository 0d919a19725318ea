"""``tools/convert.py``: official file -> mdreg checkpoint -> official layout again."""
from __future__ import annotations

import torch

from mdreg.models import load_official
from mdreg.models.convert_cli import main
from mdreg.registry import BACKBONES
from tests.models.official_layouts import official_layout


def test_convert_official_maskdit_and_back(tmp_path, capsys):
    ours = BACKBONES.get("maskdit")(img_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10,
                                    decoder_hidden_size=32, decoder_depth=1, decoder_num_heads=4)
    official = {f"model.{k}": v for k, v in official_layout("maskdit", ours.state_dict()).items()}
    source = tmp_path / "official.pt"
    torch.save({"ema": official, "model": official, "args": {"lr": 1e-4}}, source)

    converted = tmp_path / "mdreg.pt"
    assert main([str(source), str(converted), "--kind", "maskdit", "--arg", "num_heads=4",
                 "--arg", "decoder_num_heads=4"]) == 0
    assert 'model = L("backbone:maskdit")(img_size=8, patch_size=2, in_chans=4' in capsys.readouterr().out
    state = torch.load(converted, weights_only=True)
    rebuilt = BACKBONES.get(state["backbone"])(**state["backbone_kwargs"])
    rebuilt.load_state_dict(state["ema"])
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in ours.state_dict().items())

    back = tmp_path / "back.pt"
    assert main([str(converted), str(back), "--kind", "maskdit", "--to", "official"]) == 0
    again = load_official(back, "maskdit", num_heads=4, decoder_num_heads=4)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in ours.state_dict().items())
