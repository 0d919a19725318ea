"""Edges of the config core: component references, unresolvable interpolations, unsaveable
values, concurrent and repeated recipe loads."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from omegaconf import OmegaConf

from mdreg.config import instantiate, load_recipe
from mdreg.errors import ConfigError
from mdreg.runs.plan import build_plans
from mdreg.registry import MASKERS, lookup
from tests.tiny import REPO, write_two_stage_recipe


def test_a_registered_component_passed_as_a_value_is_built():
    assert instantiate(OmegaConf.create({"_ref_": "masker:patch"}), "a.fn") is lookup("masker:patch")
    with pytest.raises(ConfigError, match="a.fn._ref_: unknown masker 'pach' \\(did you mean 'patch'"):
        instantiate(OmegaConf.create({"_ref_": "masker:pach"}), "a.fn")


def test_an_unresolvable_interpolation_names_its_key(tmp_path):
    cfg = OmegaConf.create({"masker": {"_target_": "masker:patch", "ratio": "${nope.r}"}})
    with pytest.raises(ConfigError, match="^stages.pretrain.masker.ratio: cannot resolve it: Interpolation key"):
        instantiate(cfg.masker, "stages.pretrain.masker")
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    with pytest.raises(ConfigError, match="^stages.pretrain.masker.ratio: cannot resolve it"):
        build_plans(recipe, ["++stages.pretrain.masker.ratio=${nope.x}"])  # found at planning, dry runs too


def test_a_value_config_yaml_cannot_hold_fails_at_planning(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    recipe.write_text(recipe.read_text() + "\ndata['fn'] = lambda x: x\n")
    with pytest.raises(ConfigError, match="data.fn"):
        build_plans(recipe, [])


def test_two_threads_loading_recipes_that_share_a_base_see_no_false_cycle(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.py").write_text("import time\ntime.sleep(0.3)\ndepth = 3\n")
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text("from .common.base import depth\nmodel = dict(depth=depth)\n")
    results, errors = {}, []

    def load(name):
        try:
            results[name] = load_recipe(tmp_path / f"{name}.py").model.depth
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == {"a": 3, "b": 3}


def test_a_recipe_that_registers_a_component_loads_twice(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "comp.py").write_text(textwrap.dedent("""
        from mdreg.masking import PatchMasker
        from mdreg.registry import MASKERS

        @MASKERS.register("test_twice_masker")
        class TwiceMasker(PatchMasker):
            pass
    """))
    (tmp_path / "r.py").write_text("from .common import comp\nfrom .common.comp import TwiceMasker\nmodel = {}\n")
    try:
        load_recipe(tmp_path / "r.py")
        load_recipe(tmp_path / "r.py")  # executed again: the same definition replaces itself
        assert MASKERS.entry("test_twice_masker").obj.__name__ == "TwiceMasker"
    finally:
        MASKERS._remove("test_twice_masker")


@pytest.mark.parametrize("args,message", [
    (["--img-size", "7"], "patch_size=4 does not divide img_size=7"),
    (["--mask-ratio", "1.5"], "need a batch >= 1 and 0 <= ratio < 1"),
    (["--arg", "patch_size=0"], "cannot be built or counted"),
])
def test_registry_flops_bad_values_exit_2(args, message):
    out = subprocess.run([sys.executable, "tools/registry.py", "show", "uvit", "--flops", *args], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_a_config_holding_nan_matches_itself():
    from mdreg.config.diff import diff_trees

    a = OmegaConf.create({"x": float("nan"), "y": 1})
    assert diff_trees(a, OmegaConf.create({"x": float("nan"), "y": 1})) == []
    assert [k for k, *_ in diff_trees(a, OmegaConf.create({"x": 1.0, "y": 1}))] == ["x"]
