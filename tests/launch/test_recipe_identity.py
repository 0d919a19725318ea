"""Two recipe files with the same name share <output_root>/<name>/: the second may not resume the
first one's run, even with an equal config; a copy of the same file (another clone) may."""
from __future__ import annotations

import shutil

import pytest

from mdreg.errors import UserError
from mdreg.runs.plan import build_plans
from mdreg.runs.rundir import prepare, read_meta
from tests.tiny import write_two_stage_recipe


def _prepare(recipe, root):
    plan = build_plans(recipe, [f"train.output_root={root}"])[0]
    prepare(plan)
    return plan


def test_another_recipe_with_the_same_name_is_refused_and_a_copy_is_not(tmp_path):
    (tmp_path / "mine").mkdir()
    first = write_two_stage_recipe(tmp_path / "mine")
    plan = _prepare(first, tmp_path / "runs")
    meta = read_meta(plan.run_dir)
    assert meta["recipe_path"] == str(first.resolve()) and len(meta["recipe_sha256"]) == 64
    before = {p: p.read_bytes() for p in plan.run_dir.rglob("*") if p.is_file()}

    other = tmp_path / "theirs" / first.name  # same name, same config, other text
    other.parent.mkdir()
    other.write_text(first.read_text() + "# their own notes\n")
    with pytest.raises(UserError, match=r"was made by the recipe .*mine/tiny_two_stage.py, not by .*theirs/"
                                        r"tiny_two_stage.py: two recipe files named tiny_two_stage.py share"):
        _prepare(other, tmp_path / "runs")
    assert {p: p.read_bytes() for p in plan.run_dir.rglob("*") if p.is_file()} == before  # nothing written

    copy = tmp_path / "clone" / first.name  # the same file elsewhere (another clone): the same run
    copy.parent.mkdir()
    shutil.copy(first, copy)
    assert _prepare(copy, tmp_path / "runs").run_dir == plan.run_dir
    first.write_text(first.read_text() + "# a comment at its own path changes nothing\n")
    assert _prepare(first, tmp_path / "runs").run_dir == plan.run_dir
