"""A recipe in any folder inherits from a paper recipe with one plain import, from any working
directory; what it imports has attribute access."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mdreg.config import load_recipe
from mdreg.errors import ConfigError
from tests.conftest import REPO

MINE = '''
from recipes.quickstart import *
from recipes.common.optim import adamw

stages.pretrain.masker = L("masker:block")(ratio=0.5, block_size=2)
stages.finetune.optimizer = adamw(lr=2e-4)
train.seed = 7
'''


def test_a_recipe_elsewhere_inherits_a_paper_recipe(tmp_path):
    (tmp_path / "mine.py").write_text(MINE)
    cfg = load_recipe(tmp_path / "mine.py")
    assert cfg.stages.pretrain.masker._target_ == "masker:block" and cfg.stages.pretrain.masker.block_size == 2
    assert cfg.stages.finetune.optimizer.lr == 2e-4 and cfg.train.seed == 7
    assert cfg.model._target_ == "backbone:uvit"  # the rest is the quickstart's
    assert load_recipe(REPO / "recipes" / "quickstart.py").stages.pretrain.masker._target_ == "masker:patch"


def test_it_loads_from_any_working_directory(tmp_path):
    """A fresh process in another folder: the import does not depend on the cwd or the clone's name."""
    (tmp_path / "mine.py").write_text(MINE)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    out = subprocess.run([sys.executable, str(REPO / "tools" / "launch.py"), str(tmp_path / "mine.py"), "--dry-run",
                          f"train.output_root={tmp_path / 'runs'}"], cwd=elsewhere, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "_target_: masker:block" in out.stdout and "seed: 7" in out.stdout


def test_imports_of_your_own_files_stay_relative(tmp_path):
    (tmp_path / "base.py").write_text("from recipes.quickstart import *\ntrain.seed = 3\n")
    (tmp_path / "child.py").write_text("from .base import *\nstages.finetune.steps = 5\n")
    cfg = load_recipe(tmp_path / "child.py")
    assert cfg.train.seed == 3 and cfg.stages.finetune.steps == 5


@pytest.mark.parametrize("line, message", [
    ("from recipes.quickstrat import *", "import recipes.quickstrat: no recipe file .*quickstrat.py "
                                         r"\(did you mean 'quickstart'\?\)"),
    ("from recipes.common import optm", "cannot import 'optm' from .*common: no file .*optm.py "
                                        r"\(did you mean 'optim'\?\)"),
])
def test_a_wrong_name_is_one_error_with_the_closest(tmp_path, line, message):
    (tmp_path / "bad.py").write_text(line + "\n")
    with pytest.raises(ConfigError, match=message):
        load_recipe(tmp_path / "bad.py")
