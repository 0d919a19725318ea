"""Recipe loading: top-level dicts become the tree, relative imports between files, errors with file:line."""
import textwrap

import pytest
from omegaconf import OmegaConf

from mdreg.config import load_recipe
from mdreg.errors import ConfigError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def recipes(tmp_path):
    write(tmp_path / "common" / "base.py", """
        from mdreg.config import L
        model = L("backbone:uvit")(img_size=32, depth=5)
        train = dict(seed=0, max_steps=None)
        HELPER_CONSTANT = 3          # scalars are helpers, not config
        def helper():                # functions too
            return 1
    """)
    write(tmp_path / "child.py", """
        from .common.base import model, train
        model.depth = 7
        train["seed"] = 1
        stages = dict(a=dict(steps=2))
    """)
    write(tmp_path / "grandchild" / "deep.py", """
        from ..child import model, stages
        from ..common import base
        model.img_size = 64
        other = dict(base_depth=base.model.depth)
    """)
    return tmp_path


def test_top_level_dicts_form_the_tree(recipes):
    cfg = load_recipe(recipes / "child.py")
    assert set(cfg.keys()) == {"model", "train", "stages"}
    assert cfg.model.depth == 7 and cfg.train.seed == 1


def test_relative_imports_load_fresh_copies(recipes):
    cfg = load_recipe(recipes / "grandchild" / "deep.py")
    assert cfg.model.img_size == 64 and cfg.model.depth == 7
    assert cfg.other.base_depth == 5  # base imported afresh: child's mutation is not seen
    assert load_recipe(recipes / "common" / "base.py").model.depth == 5


def test_tree_is_in_struct_mode(recipes):
    cfg = load_recipe(recipes / "child.py")
    assert OmegaConf.is_struct(cfg)
    with pytest.raises(Exception):
        cfg.train.max_itr = 5


def test_missing_recipe_suggests_close_names(recipes):
    with pytest.raises(ConfigError, match=r"does not exist \(did you mean 'child.py'\?\)"):
        load_recipe(recipes / "chld.py")


def test_syntax_error_reports_file_and_line(tmp_path):
    path = write(tmp_path / "bad.py", "model = dict(\n  depth=3,,\n)\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: syntax error"):
        load_recipe(path)


def test_runtime_error_reports_the_recipe_line(recipes):
    path = write(recipes / "broken.py", """
        from .common.base import model
        model.depth = undefined_name
    """)
    with pytest.raises(ConfigError, match=rf"{path}:3: NameError"):
        load_recipe(path)


def test_import_of_missing_sibling_names_the_file(recipes):
    path = write(recipes / "orphan.py", "from .nowhere import model\n")
    with pytest.raises(ConfigError, match="no recipe file"):
        load_recipe(path)


def test_import_cycle_is_reported(tmp_path):
    write(tmp_path / "a.py", "from .b import x\ny = dict()\n")
    write(tmp_path / "b.py", "from .a import y\nx = dict()\n")
    with pytest.raises(ConfigError, match="import cycle"):
        load_recipe(tmp_path / "a.py")
