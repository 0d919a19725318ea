"""Override values with non-ASCII characters, unquoted (``train.output_root=/tmp/rés``): Hydra's
lexer alone takes them only inside quotes and called the override invalid syntax; mdreg parses
them as written, keeping types, lists and sweeps."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mdreg.config import load_config
from mdreg.config.overrides import parse_overrides
from mdreg.errors import ConfigError
from tests.conftest import REPO, tiny_recipe


@pytest.mark.parametrize("text, value", [
    ("train.output_root=/tmp/rés", "/tmp/rés"),
    ("train.output_root=/tmp/数据/runs", "/tmp/数据/runs"),
    ("train.output_root='/tmp/rés'", "/tmp/rés"),     # quoted, as Hydra always allowed
    ("train.output_root=/tmp/r és", "/tmp/r és"),
    ("train.run_name=café-1", "café-1"),
    ("a.b=[é,b,3]", ["é", "b", 3]),
    ("a.b={x: ü, y: 2}", {"x": "ü", "y": 2}),
])
def test_non_ascii_values_parse_as_written(text, value):
    (override,) = parse_overrides([text]).overrides
    assert override.value == value and override.text == text


def test_a_non_ascii_sweep_keeps_each_value():
    (sweep,) = parse_overrides(["train.run_name=é,ü,x"]).sweeps
    assert sweep.values == ["é", "ü", "x"]


def test_a_non_ascii_key_is_still_one_error():
    with pytest.raises(ConfigError, match=r"override 'a\.é=1' is not valid override syntax"):
        parse_overrides(["a.é=1"])


def test_a_run_under_a_non_ascii_output_root_trains_and_resumes(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=2, ckpt_every=2)
    root = tmp_path / "résultats 数据"
    command = [sys.executable, str(REPO / "tools" / "launch.py"), str(recipe), f"train.output_root={root}"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    run = root / "tiny" / "default"
    assert (run / "main" / "checkpoints" / "step_00000002.pt").is_file()
    assert load_config(run / "config.yaml").train.output_root == str(root)
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already complete (2/2 steps)" in again.stdout, again.stderr
