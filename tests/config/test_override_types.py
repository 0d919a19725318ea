"""Override edge cases: paths through values, lists, declared types, raw strings, deletions,
interpolations, ``++`` checks and containers replaced by scalars."""
import pytest
from omegaconf import OmegaConf

from mdreg.config import L, node
from mdreg.config.overrides import apply_overrides, parse_overrides
from mdreg.errors import ConfigError


@pytest.fixture
def cfg():
    tree = node({
        "train": {"steps": 800, "lr": 1e-4, "name": "x", "betas": [0.9, 0.99], "other": 5, "ema": {"decay": 0.9}},
        "m": {"ms": [L("masker:patch")(ratio=0.5), L("masker:block")(ratio=0.5, block_size=2)]},
        "s": {"masker": L("masker:patch")(ratio=0.5), "sched": L("mask_schedule:cosine")(power=4),
              "stage": L("stage:train")(init_from={"stage": "pretrain", "weights": "model"})},
    })
    OmegaConf.set_struct(tree, True)
    return tree


def _error(cfg, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, [text])
    return str(info.value)


@pytest.mark.parametrize("text,where", [
    ("train.steps.x=5", "train.steps is a value (800)"),
    ("+train.steps.x=5", "train.steps is a value (800)"),
    ("train.betas.0.foo=1", "train.betas.0 is a value (0.9)"),
])
def test_a_path_through_a_value_is_one_clear_error(cfg, text, where):
    assert f"{where}, not a group of keys" in _error(cfg, text)


def test_interval_sweeps_are_refused_with_the_alternatives():
    with pytest.raises(ConfigError, match=r"interval\(\) sweeps are not supported.*range\(\.\.\.\).*choice"):
        parse_overrides(["train.lr=interval(0,1)"])


def test_list_elements_are_set_checked_and_swapped_by_name(cfg):
    notes = apply_overrides(cfg, ["train.betas.1=0.999", "m.ms.0._target_=masker:block", "m.ms.1=patch"])
    assert cfg.train.betas == [0.9, 0.999]
    assert cfg.m.ms[0]._target_ == "masker:block" and cfg.m.ms[0].ratio == 0.5
    assert cfg.m.ms[1]._target_ == "masker:patch" and "block_size" not in cfg.m.ms[1]
    assert any("m.ms.1" in n and "dropped block_size" in n for n in notes)
    assert "expects a number" in _error(cfg, "train.betas.0=abc")


@pytest.mark.parametrize("text", ["+train.betas.5=1", "++train.betas.2=1", "train.betas.2=1"])
def test_lists_cannot_grow_by_index(cfg, text):
    msg = _error(cfg, text)
    assert "lists cannot grow by index" in msg and "train.betas=[...]" in msg and "To add a new key" not in msg


def test_declared_type_wins_over_the_current_value(cfg):
    apply_overrides(cfg, ["s.sched.power=2.5"])  # power: float, recipe value 4 (an int)
    assert cfg.s.sched.power == 2.5
    apply_overrides(cfg, ["s.sched.power=3"])
    assert isinstance(cfg.s.sched.power, float) and cfg.s.sched.power == 3.0
    assert "expects a number" in _error(cfg, "s.sched.power=high")


@pytest.mark.parametrize("typed", ["2.10", "2e3", "7", "1_000"])
def test_string_slots_keep_the_text_as_typed(cfg, typed):
    apply_overrides(cfg, [f"train.name={typed}"])
    assert cfg.train.name == typed


def test_delete_with_a_value_needs_the_current_value(cfg):
    assert "its current value is 0.0001, not 5.0" in _error(cfg, "~train.lr=5.0")
    assert "lr" in cfg.train
    apply_overrides(cfg, ["~train.lr=1e-4", "~train.betas=[0.9,0.99]", "~train.steps"])
    assert not {"lr", "betas", "steps"} & set(cfg.train)


def test_deleting_a_missing_key_does_not_suggest_adding_it(cfg):
    msg = _error(cfg, "~train.stepz")
    assert "nothing to delete" in msg and "train.steps" in msg and "To add a new key" not in msg


def test_interpolations_pass_the_type_check(cfg):
    apply_overrides(cfg, ["train.steps=${train.other}"])
    assert cfg.train.steps == 5


def test_force_add_on_an_existing_key_is_type_checked(cfg):
    assert "train.steps expects an integer" in _error(cfg, "++train.steps=abc")
    apply_overrides(cfg, ["++train.steps=7", "++train.new=abc"])
    assert cfg.train.steps == 7 and cfg.train.new == "abc"


@pytest.mark.parametrize("text,msg", [
    ("s.masker=5", "s.masker is a component (masker:patch): give a registry name (s.masker=block) "
                   "or set its arguments (s.masker.ratio=...)"),
    ("train.betas=0.9", "train.betas is a list ([0.9, 0.99]): set the whole list (train.betas=[...])"),
    ("train.ema=true", "train.ema is a group of keys (decay): set one of them (train.ema.decay=...)"),
])
def test_a_container_is_not_replaced_by_a_scalar(cfg, text, msg):
    assert msg in _error(cfg, text)


def test_containers_take_containers_null_and_any_annotated_names(cfg):
    apply_overrides(cfg, ["train.betas=[0.5,0.6]", "train.ema={decay:0.5}", "s.masker=null",
                          "s.stage.init_from=previous"])  # init_from is annotated Any
    assert cfg.train.betas == [0.5, 0.6] and cfg.train.ema.decay == 0.5 and cfg.s.masker is None
    assert cfg.s.stage.init_from == "previous"
