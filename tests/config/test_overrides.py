"""Overrides in Hydra's grammar: change / add / delete, struct errors, types, sweeps, target swaps."""
import re

import pytest

from mdreg.config import L, load_recipe, node
from mdreg.config.overrides import apply_overrides, parse_overrides
from mdreg.errors import ConfigError
from tests.tiny import REPO


@pytest.fixture
def cfg():
    from omegaconf import OmegaConf
    tree = node({
        "train": {"max_steps": 100, "lr": 1e-4, "name": "x", "flag": True, "maybe": None},
        "stages": {"pretrain": {"masker": L("masker:patch")(ratio=0.5),
                                "objective": L("objective:mdsm")(schedule=L("noise_schedule:ddpm_linear")())}},
    })
    OmegaConf.set_struct(tree, True)
    return tree


def test_change_add_delete(cfg):
    apply_overrides(cfg, ["train.max_steps=50", "+train.extra=2", "~train.flag", "train.lr=3e-4"])
    assert cfg.train.max_steps == 50 and cfg.train.extra == 2 and "flag" not in cfg.train
    assert cfg.train.lr == pytest.approx(3e-4)


def test_unknown_key_lists_closest_keys_and_the_plus_fix(cfg):
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, ["train.max_step=5"])
    msg = str(info.value)
    assert "unknown config key 'train.max_step'" in msg
    assert "train.max_steps" in msg and "+train.max_step=" in msg


def test_adding_an_existing_key_and_deleting_a_missing_one_fail(cfg):
    with pytest.raises(ConfigError, match="already exists"):
        apply_overrides(cfg, ["+train.lr=1"])
    with pytest.raises(ConfigError, match="unknown config key"):
        apply_overrides(cfg, ["~train.nothing"])


@pytest.mark.parametrize("text,match", [
    ("train.max_steps=abc", "expects an integer"),
    ("train.max_steps=1.5", "expects an integer"),
    ("train.lr=fast", "expects a number"),
    ("train.flag=3", "expects true or false"),
    ("stages.pretrain.masker.ratio=half", "expects a number"),
])
def test_wrong_value_types_are_refused(cfg, text, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(cfg, [text])


def test_int_promoted_to_float_and_null_accepted(cfg):
    apply_overrides(cfg, ["train.lr=1", "train.maybe=7", "train.max_steps=null"])
    assert isinstance(cfg.train.lr, float) and cfg.train.maybe == 7 and cfg.train.max_steps is None


def test_lazy_node_accepts_target_arguments_without_plus(cfg):
    apply_overrides(cfg, ["stages.pretrain.objective.schedule.beta_end=0.01"])
    assert cfg.stages.pretrain.objective.schedule.beta_end == 0.01


def test_swapping_a_component_by_name_drops_unaccepted_kwargs(cfg):
    from mdreg.masking import Masker
    apply_overrides(cfg, ["stages.pretrain.objective.schedule=ddpm_cosine"])
    node_ = cfg.stages.pretrain.objective.schedule
    assert node_._target_ == "noise_schedule:ddpm_cosine"
    apply_overrides(cfg, ["+stages.pretrain.objective.schedule.s=0.01"])
    notes = apply_overrides(cfg, ["stages.pretrain.objective.schedule=ddpm_linear"])
    assert "s" not in cfg.stages.pretrain.objective.schedule
    assert any("dropped s" in n for n in notes)
    assert issubclass(type(__import__("mdreg").config.instantiate(cfg.stages.pretrain.masker)), Masker)


def test_swap_to_unknown_name_is_an_error_with_suggestions(cfg):
    with pytest.raises(ConfigError, match=r"unknown masker 'pach' \(did you mean 'patch'"):
        apply_overrides(cfg, ["stages.pretrain.masker=pach"])


def test_sweeps_are_parsed_and_kept_for_the_launcher():
    parsed = parse_overrides(["a.b=1", "a.c=1,2,3", "a.d=range(0,6,2)", "+a.e=x,y"])
    assert [o.key for o in parsed.overrides] == ["a.b"]
    assert [(s.key, s.values) for s in parsed.sweeps] == [("a.c", [1, 2, 3]), ("a.d", [0, 2, 4]), ("a.e", ["x", "y"])]
    assert parsed.sweeps[2].kind == "add"


def test_invalid_syntax_is_one_clear_error():
    with pytest.raises(ConfigError, match="not valid override syntax"):
        parse_overrides(["a.b=[1,2"])


def test_a_python_dict_in_an_override_gets_the_command_line_form_which_parses():
    text = "stages.finetune.init_from=dict(path=runs/q/pretrain/checkpoints/last, weights=model)"
    hint = "'stages.finetune.init_from={path: runs/q/pretrain/checkpoints/last, weights: model}'"
    with pytest.raises(ConfigError, match=re.escape(hint)):
        parse_overrides([text])
    (ov,) = parse_overrides([hint.strip("'")]).overrides
    assert ov.value == {"path": "runs/q/pretrain/checkpoints/last", "weights": "model"}


def test_quickstart_overrides_apply():
    cfg = load_recipe(REPO / "recipes" / "quickstart.py")
    apply_overrides(cfg, ["train.max_steps=50", "stages.pretrain.masker.ratio=0.75"])
    assert cfg.train.max_steps == 50 and cfg.stages.pretrain.masker.ratio == 0.75
