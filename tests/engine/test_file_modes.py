"""Every file of a run follows the umask, as a plain ``open()`` would (teams share run directories)."""
from __future__ import annotations

import os
import stat

import pytest

from mdreg.io import atomic_write_text
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from tests.conftest import tiny_recipe


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027])
def test_every_file_of_a_tiny_run_follows_the_umask(tmp_path, umask, mask):
    recipe = tiny_recipe(tmp_path, steps=4, ckpt_every=2, sampler='L("sampler:ddim")(steps=2)')
    umask(mask)
    (plan,) = build_plans(recipe, ["stages.main.sample.every=2"])
    LocalExecutor().run(plan)
    modes = {}
    for folder, dirs, files in os.walk(tmp_path / "runs"):
        for name in dirs + files:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, tmp_path / "runs")] = stat.S_IMODE(os.lstat(path).st_mode)
    names = {os.path.basename(p) for p in modes}
    assert {"config.yaml", "meta.yaml", "last", "step_00000004.pt", "metrics.jsonl", "step_00000002.png"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    wrong = {p: oct(m) for p, m in modes.items()
             if m != (0o777 if os.path.isdir(tmp_path / "runs" / p) else 0o666) & ~mask}
    assert not wrong, f"umask {oct(mask)}: {wrong}"


def test_a_rewritten_file_keeps_the_mode_it_was_given(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "config.yaml"
    atomic_write_text(path, "a: 1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o660)  # e.g. a team member made it group-writable
    atomic_write_text(path, "a: 2\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o660 and path.read_text() == "a: 2\n"
