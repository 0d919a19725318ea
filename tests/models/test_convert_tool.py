"""``tools/convert.py``: official file -> mdreg checkpoint -> official layout again; the printed model line
builds a model the converted weights load into; bad files and missing arguments are one ``error:`` line."""
from __future__ import annotations

import argparse

import torch

from mdreg.commands.entry import run_cli
from mdreg.config import L, instantiate
from mdreg.models.official import load_official
from mdreg.commands.convert import main
from mdreg.registry import BACKBONES
from tests.models.official_layouts import official_layout


def test_convert_official_maskdit_and_back(tmp_path, capsys):
    ours = BACKBONES.get("maskdit")(img_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10,
                                    decoder_hidden_size=32, decoder_depth=1, decoder_num_heads=4)
    official = {f"model.{k}": v for k, v in official_layout("maskdit", ours.state_dict()).items()}
    source = tmp_path / "official.pt"
    torch.save({"ema": official, "model": official, "args": argparse.Namespace(lr=1e-4)}, source)

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


def built_from_printed_line(out: str):
    """Execute the printed ``model = L(...)`` line and instantiate it, as a recipe would."""
    line = next(line for line in out.splitlines() if line.startswith("model = L("))
    scope = {"L": L}
    exec(line, scope)  # noqa: S102 - the line the tool printed for the user to paste into a recipe
    return instantiate(scope["model"], key="model")


def test_uvit_without_null_class_round_trips_through_the_printed_line(tmp_path, capsys):
    ours = BACKBONES.get("uvit")(img_size=8, patch_size=2, embed_dim=64, depth=3, num_heads=4, num_classes=10,
                                 null_class=False)
    assert ours.label_emb.num_embeddings == 10  # e.g. U-ViT ImageNet-64: 1000 rows, no null row
    source, converted = tmp_path / "nnet_ema.pth", tmp_path / "uvit.pt"
    torch.save(official_layout("uvit", ours.state_dict()), source)
    assert main([str(source), str(converted), "--kind", "uvit", "--arg", "null_class=False",
                 "--arg", "num_heads=4"]) == 0
    model = built_from_printed_line(capsys.readouterr().out)
    assert model.num_classes == 10 and model.null_label is None
    model.load_state_dict(torch.load(converted, weights_only=True)["ema"])  # strict: sizes match
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ours.state_dict().items())


def test_maskdit_without_mask_token_prints_mask_token_false(tmp_path, capsys):
    ours = BACKBONES.get("maskdit")(img_size=8, patch_size=2, hidden_size=64, depth=1, num_heads=4, num_classes=10,
                                    decoder_hidden_size=32, decoder_depth=1, decoder_num_heads=4, mask_token=False)
    official = {f"model.{k}": v for k, v in official_layout("maskdit", ours.state_dict()).items()}
    source, converted = tmp_path / "official.pt", tmp_path / "mdreg.pt"
    torch.save({"ema": official, "model": official, "args": argparse.Namespace(mae_loss_coef=0.0)}, source)
    assert main([str(source), str(converted), "--kind", "maskdit", "--arg", "num_heads=4"]) == 0
    out = capsys.readouterr().out
    assert "mask_token=False" in out
    model = built_from_printed_line(out)
    model.load_state_dict(torch.load(converted, weights_only=True)["ema"])
    assert model.mask_token is None


def run_tool(argv, capsys):
    code = run_cli(main, argv)
    return code, capsys.readouterr().err.strip().splitlines()


def test_cli_advice_names_the_option(tmp_path, capsys):
    ours = BACKBONES.get("dit")(img_size=8, patch_size=2, hidden_size=64, depth=1, num_heads=4, num_classes=10)
    source = tmp_path / "dit.pt"
    torch.save(official_layout("dit", ours.state_dict()), source)  # width 64: no published head count
    code, err = run_tool([str(source), str(tmp_path / "out.pt"), "--kind", "dit"], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: cannot infer num_heads") and "pass --arg num_heads=... to tools/convert.py" in err[0]
    assert "load_official" not in err[0]
    code, err = run_tool([str(source), str(tmp_path / "out.pt"), "--kind", "dit", "--arg", "num_heads=4",
                          "--arg", "depth=2"], capsys)
    assert code == 2 and "Check --kind and the --arg values" in err[0] and "kind=" not in err[0]


def test_garbage_file_is_one_error_line_naming_it(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint\n" * 8)
    for direction in ("mdreg", "official"):
        code, err = run_tool([str(garbage), str(tmp_path / "out.pt"), "--kind", "dit", "--to", direction], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: cannot read {garbage}: not a PyTorch")
    assert not (tmp_path / "out.pt").exists()


def test_maskdit_without_decoder_is_one_clear_error_line(tmp_path, capsys):
    ours = BACKBONES.get("maskdit")(img_size=8, patch_size=2, hidden_size=64, depth=1, num_heads=4, num_classes=10,
                                    decoder_hidden_size=32, decoder_depth=1, decoder_num_heads=4)
    encoder = {f"model.{k}": v for k, v in official_layout("maskdit", ours.state_dict()).items()
               if not k.startswith(("decoder", "mask_token"))}
    source = tmp_path / "no_decoder.pt"
    torch.save({"ema": encoder, "model": encoder, "args": argparse.Namespace(use_decoder=False)}, source)
    code, err = run_tool([str(source), str(tmp_path / "out.pt"), "--kind", "maskdit", "--arg", "num_heads=4"], capsys)
    assert code == 2 and len(err) == 1
    assert "has no decoder" in err[0] and "use_decoder=False" in err[0] and "Supported:" in err[0]
