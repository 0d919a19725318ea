"""A component whose constructor raises (tests/engine/broken_components.py): one error naming
the config key, the component and the exception, at plan time (a masker, built when the run is
planned) and when built for real (a backbone that builds on the meta device for the planner's
check but raises on the training device); the traceback only with --verbose."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tests.engine.broken_components  # noqa: F401  (registers the raising components)
from tests.cli_runner import launch  # noqa: F401  (a fixture)
from tests.conftest import REPO, tiny_recipe

RAISED = {"runtime": "RuntimeError", "assertion": "AssertionError", "key": "KeyError"}


def _one_error(code: int, out: str) -> str:
    assert code == 2 and "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("error: ")]
    return line


@pytest.mark.parametrize("error", RAISED)
def test_a_masker_that_raises_when_planned_is_one_error_naming_its_key(tmp_path, launch, error):
    recipe = tiny_recipe(tmp_path, steps=2)
    for extra in (["--dry-run"], []):
        line = _one_error(*launch(recipe, "stages.main.masker=test_raises", f"stages.main.masker.error={error}",
                                  *extra))
        assert line == (f"error: stages.main.masker: building masker:test_raises failed: {RAISED[error]}: the mask "
                        f"table could not be built")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))


@pytest.mark.parametrize("error", RAISED)
def test_a_backbone_that_raises_when_built_for_real_is_one_error_naming_its_key(tmp_path, launch, error):
    recipe = tiny_recipe(tmp_path, steps=2)
    overrides = ["model=test_raises_off_meta", f"model.error={error}"]
    code, out = launch(recipe, *overrides, "--dry-run")  # the planner builds it on the meta device: fine
    assert code == 0, out
    line = _one_error(*launch(recipe, *overrides))
    assert line == (f"error: model: building backbone:test_raises_off_meta failed: {RAISED[error]}: no kernel for "
                    f"this device")


def test_verbose_shows_the_components_own_traceback(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "tools" / "launch.py"), str(recipe), "--import", "tests.engine.broken_components",
               "stages.main.masker=test_raises", "--dry-run"]
    quiet = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr, quiet.stderr
    assert quiet.stderr.strip().endswith("error: stages.main.masker: building masker:test_raises failed: "
                                         "RuntimeError: the mask table could not be built")
    loud = subprocess.run([*command, "--verbose"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert loud.returncode != 0 and "Traceback" in loud.stderr, loud.stderr
    assert 'broken_components.py", line' in loud.stderr  # where the component raised
    assert "RuntimeError: the mask table could not be built" in loud.stderr
