"""config.yaml: every run's tree dumps to YAML and reloads identically; unnameable values are refused."""
import pytest
import torch
from omegaconf import OmegaConf

from mdreg.config import L, dump_yaml, load_config, load_recipe, node
from mdreg.config.serialize import save_config
from mdreg.config.tree import to_plain
from mdreg.errors import ConfigError
from tests.tiny import REPO

RECIPES = sorted((REPO / "recipes").glob("*.py"))
assert RECIPES, f"no recipes found under {REPO / 'recipes'}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_round_trips(recipe, tmp_path):
    cfg = load_recipe(recipe)
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert to_plain(again) == to_plain(cfg)
    assert OmegaConf.is_struct(again)


def test_interpolations_are_kept_not_resolved(tmp_path):
    cfg = node({"a": 1, "b": "${a}"})
    save_config(cfg, tmp_path / "c.yaml")
    assert "${a}" in (tmp_path / "c.yaml").read_text()
    assert load_config(tmp_path / "c.yaml").b == 1


def test_lambda_is_refused_with_its_key():
    cfg = node({"model": L("backbone:uvit")(img_size=8), "data": {"fn": L(lambda x: x)()}})
    with pytest.raises(ConfigError) as info:
        dump_yaml(cfg)
    assert "data.fn._target_ holds a lambda" in str(info.value)
    assert "register" in str(info.value)


def test_local_function_and_objects_are_refused_with_their_keys():
    def local_act(x):
        return x

    cfg = node({"model": L("backbone:uvit")(act=local_act), "tensor": {"t": torch.zeros(1)}})
    with pytest.raises(ConfigError) as info:
        dump_yaml(cfg)
    msg = str(info.value)
    assert "model.act holds the local function" in msg and "tensor.t holds a Tensor object" in msg


def test_importable_callables_become_refs():
    cfg = L("backbone:uvit")(act=torch.nn.GELU)
    assert cfg.act == {"_ref_": "torch.nn.GELU"}
    assert "_ref_" in dump_yaml(cfg)
