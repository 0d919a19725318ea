"""Every tools/*.py is a thin caller of one console entry point (mdreg-launch, ...) that the
installed package declares; both run the same code."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import mdreg.commands.entry

REPO = Path(__file__).resolve().parents[1]


def test_each_tool_calls_a_declared_entry_point():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.value.startswith("mdreg.")}
    for tool in sorted((REPO / "tools").glob("*.py")):
        name = re.search(r"^from mdreg\.commands\.entry import (\w+)$", tool.read_text(), re.M)
        assert name, f"{tool.name} should be 'from mdreg.commands.entry import ENTRY' and call it"
        assert f"mdreg.commands.entry:{name.group(1)}" in scripts.values(), f"{tool.name}: no console script runs {name.group(1)}"
        assert callable(getattr(mdreg.commands.entry, name.group(1)))
    assert "sys.path" not in "".join(t.read_text() for t in (REPO / "tools").glob("*.py"))


def test_a_console_script_and_its_tool_agree():
    bindir = Path(sys.executable).parent
    by_script = subprocess.run([str(bindir / "mdreg-registry"), "list", "metric"], capture_output=True, text=True)
    by_tool = subprocess.run([sys.executable, str(REPO / "tools" / "registry.py"), "list", "metric"],
                             capture_output=True, text=True)
    assert by_script.returncode == by_tool.returncode == 0, by_script.stderr + by_tool.stderr
    assert by_script.stdout == by_tool.stdout and "shape" in by_script.stdout
    bad = subprocess.run([str(bindir / "mdreg-registry"), "show", "pach"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "did you mean 'patch'" in bad.stderr
