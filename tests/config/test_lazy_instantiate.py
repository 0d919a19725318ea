"""L(...) lazy calls and instantiate: signature checks with full dotted keys."""
import functools

import pytest
import torch

from mdreg.config import L, instantiate, node
from mdreg.errors import ConfigError
from mdreg.masking import PatchMasker


def test_registered_target_is_stored_as_a_ref_and_built():
    cfg = L(PatchMasker)(ratio=0.25)
    assert cfg._target_ == "masker:patch"
    masker = instantiate(cfg)
    assert isinstance(masker, PatchMasker) and masker.ratio == 0.25


def test_dotted_path_targets_and_partial():
    cfg = L(torch.optim.AdamW)(_partial_=True, lr=1e-3, betas=[0.9, 0.99])
    assert cfg._target_ == "torch.optim.AdamW"
    factory = instantiate(cfg)
    assert isinstance(factory, functools.partial)
    opt = factory([torch.nn.Parameter(torch.zeros(2))])
    assert opt.param_groups[0]["lr"] == 1e-3 and tuple(opt.param_groups[0]["betas"]) == (0.9, 0.99)


def test_nested_nodes_are_built_children_first():
    tree = node({"a": {"masker": L("masker:patch")(ratio=0.5), "items": [L("masker:none")(), 3]}})
    built = instantiate(tree)
    assert isinstance(built["a"]["masker"], PatchMasker)
    assert built["a"]["items"][1] == 3


def test_unknown_argument_error_names_the_full_key_and_close_names():
    tree = node({"stages": {"pretrain": {"masker": L("masker:patch")(ratoi=0.5)}}})
    with pytest.raises(ConfigError) as info:
        instantiate(tree)
    msg = str(info.value)
    assert "stages.pretrain.masker.ratoi" in msg and "did you mean 'ratio'" in msg


def test_missing_required_argument_is_reported_before_the_call():
    calls = []

    tree = node({"stage": L("stage:train")(batch_size=4, objective=None)})
    with pytest.raises(ConfigError, match=r"stage: .*needs 'steps'"):
        instantiate(tree)
    assert calls == []


def test_unknown_registry_name_in_target():
    with pytest.raises(ConfigError, match=r"model\._target_: unknown backbone 'maskdm_xs'"):
        instantiate(node({"model": {"_target_": "backbone:maskdm_xs"}}), )


def test_bad_value_error_carries_the_key():
    with pytest.raises(ConfigError, match=r"masker: .*mask ratio must be in \[0, 1\]"):
        instantiate(L("masker:patch")(ratio=1.5), key="masker")


def test_positional_arguments_are_refused():
    with pytest.raises(ConfigError, match="keyword arguments only"):
        L("masker:patch")(0.5)
