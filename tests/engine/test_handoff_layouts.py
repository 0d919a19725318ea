"""init_from a checkpoint file in another key layout: the known layouts are read (mdreg's own
training checkpoint, a bare state dict, DDP ``module.`` and torch.compile ``_orig_mod.``
prefixes, each official release with ``kind``); any other is one error that says which layout
the file is in and which the model expects, naming a few keys (not 100) with the counts, and,
for an official release read without ``kind``, the kind to add. Every file is written with
torch.save and read by a real trainer's hand-off."""
from __future__ import annotations

import re

import pytest
import torch

from mdreg.errors import UserError
from mdreg.models.official import to_official
from tests.conftest import make_trainer
from tests.models.official_layouts import dit_keys, maskdit_keys


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    from tests.conftest import tiny_recipe

    return tiny_recipe(tmp_path_factory.mktemp("layouts"), steps=1)


@pytest.fixture(scope="module")
def weights(recipe):
    """The tiny U-ViT's own state dict, each tensor filled with a marker value."""
    sd = make_trainer(recipe, ["train.run_name=reference"]).parts.model.state_dict()
    return {k: torch.full_like(v, 0.25) for k, v in sd.items()}


def _start(recipe, path, run: str, extra: str = ""):
    trainer = make_trainer(recipe, [f"train.run_name={run}",
                                    f"+stages.main.init_from={{path: '{path}'{extra}}}"])
    trainer.restore()
    return trainer


def _refused(recipe, path, run: str) -> str:
    with pytest.raises(UserError) as info:
        _start(recipe, path, run)
    message = str(info.value)
    print(message)
    for listed in re.findall(r"(?:missing|unexpected|shape changed): ([^;)]*)", message):
        assert len(listed.split(", ")) <= 5, listed  # a few keys, then "and N more"
    return message


@pytest.mark.parametrize("layout", ["mdreg checkpoint", "bare", "ddp", "compiled ddp"])
def test_known_layouts_load(recipe, weights, tmp_path, layout):
    state = {"mdreg checkpoint": {"model": weights, "ema": weights, "optimizer": {}, "step": 3},
             "bare": weights, "ddp": {f"module.{k}": v for k, v in weights.items()},
             "compiled ddp": {f"module._orig_mod.{k}": v for k, v in weights.items()}}[layout]
    torch.save(state, tmp_path / "source.pt")
    trainer = _start(recipe, tmp_path / "source.pt", layout.replace(" ", "-"))
    assert all(bool((v == 0.25).all()) for v in trainer.parts.model.state_dict().values())


@pytest.mark.parametrize("wrapper", ["", "model."], ids=["bare", "GaussianDiffusion"])
def test_an_official_maskdm_file_without_kind_names_the_kind_and_loads_with_it(recipe, weights, tmp_path, wrapper):
    torch.save({f"{wrapper}{k}": v for k, v in to_official(weights, "maskdm").items()}, tmp_path / "maskdm.pt")
    run = f"maskdm-{wrapper.strip('.') or 'bare'}"
    message = _refused(recipe, tmp_path / "maskdm.pt", run)
    where = f"its network under '{wrapper}'" if wrapper else "keys like encoder."
    assert message.startswith(f"cannot initialise from {tmp_path / 'maskdm.pt'} (ema): the file looks like an official "
                              f"maskdm checkpoint ({where}")
    assert "add kind='maskdm' to init_from (dict(path=..., kind='maskdm')), which reads and renames that layout; " \
           "the model (backbone:uvit) expects mdreg's layout (pos_embed, patch_embed.proj.weight, " in message
    assert re.search(r"\((\d+) of the model's \1 keys missing, \d+ unexpected; missing: ", message)
    trainer = _start(recipe, tmp_path / "maskdm.pt", f"{run}-kind", ", kind: maskdm")
    assert all(bool((v == 0.25).all()) for v in trainer.parts.model.state_dict().values())


def test_an_official_maskdit_file_without_kind_says_kind_maskdit(recipe, tmp_path):
    keys = maskdit_keys(depth=2, decoder_depth=1)
    torch.save({f"model.{k}": torch.zeros(2) for k in sorted(keys)}, tmp_path / "maskdit.pt")  # EDMPrecond's prefix
    message = _refused(recipe, tmp_path / "maskdit.pt", "maskdit")
    assert "the file looks like an official MaskDiT checkpoint (its network under 'model.'): add kind='maskdit'" in message


def test_another_backbone_and_an_unknown_layout_are_named(recipe, tmp_path):
    torch.save({k: torch.zeros(2) for k in sorted(dit_keys(depth=2))}, tmp_path / "dit.pt")
    message = _refused(recipe, tmp_path / "dit.pt", "dit")
    assert "the file holds a DiT network (" in message and \
        "but the model (backbone:uvit) expects mdreg's layout (pos_embed, patch_embed.proj.weight, " in message
    assert message.count("another backbone") == 1

    torch.save({f"net.layer{i}.w": torch.zeros(2) for i in range(100)}, tmp_path / "other.pt")
    message = _refused(recipe, tmp_path / "other.pt", "other")
    assert "the file's keys are a layout mdreg does not know (net.layer0.w, net.layer1.w, net.layer2.w, ...) but the " \
           "model (backbone:uvit) expects" in message
    assert "unexpected: net.layer0.w, net.layer1.w, net.layer2.w, net.layer3.w, net.layer4.w and 95 more" in message


def test_a_container_without_the_weights_entry_says_which_entries_it_has(recipe, weights, tmp_path):
    torch.save({"state_dict": weights, "epoch": 3}, tmp_path / "lightning.pt")
    message = _refused(recipe, tmp_path / "lightning.pt", "container")
    assert "the file holds no weights at its top level but state_dict: choose the entry with init_from weights=..." \
           in message
