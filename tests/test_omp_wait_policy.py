"""``import mdreg`` lets idle OpenMP threads sleep unless the environment says otherwise
(docs/performance.md, "CPU threads"): the variable must be set before torch loads libgomp."""
import os
import subprocess
import sys

import pytest

PROBE = "import os, mdreg, torch; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("given,expect", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE"), ("passive", "passive")])
def test_default_is_passive_and_a_user_setting_wins(given, expect):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expect


def test_mdreg_sets_it_before_importing_torch():
    """Importing mdreg must not import torch before the variable is set (first lines of mdreg/__init__.py)."""
    probe = ("import os, sys; os.environ.pop('OMP_WAIT_POLICY', None); import builtins; real = builtins.__import__\n"
             "def spy(name, *a, **k):\n"
             "    if name == 'torch' and 'torch' not in sys.modules:\n"
             "        print('torch with', os.environ.get('OMP_WAIT_POLICY'))\n"
             "    return real(name, *a, **k)\n"
             "builtins.__import__ = spy\nimport mdreg.rng")  # a module that needs torch
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "torch with PASSIVE"
