"""A local launch imports nothing Slurm-only: no submitit, no mdreg.launch.slurm (issue 20)."""
from __future__ import annotations

import subprocess
import sys

from tests.tiny import QUICKSTART_TINY, REPO

SCRIPT = """
import sys
from mdreg.commands.entry import run_cli
from mdreg.commands.launch import main
code = run_cli(main, sys.argv[1:])
slurm_only = sorted(m for m in sys.modules if m == "submitit" or m.startswith(("submitit.", "mdreg.launch.slurm")))
print("SLURM_ONLY", ",".join(slurm_only) or "-", "TRAINED", code)
"""


def test_a_local_run_imports_no_slurm_module(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, "recipes/quickstart.py", *QUICKSTART_TINY, "train.max_steps=1",
                          "stages.pretrain.sample=null", "stages.finetune.sample=null",
                          f"train.output_root={tmp_path}", "train.run_name=local"], cwd=REPO, capture_output=True, text=True, timeout=300)
    line = next(line for line in out.stdout.splitlines() if line.startswith("SLURM_ONLY"))
    assert line == "SLURM_ONLY - TRAINED 0", out.stdout[-2000:] + out.stderr[-2000:]
    assert (tmp_path / "quickstart" / "local" / "finetune" / "checkpoints" / "step_00000001.pt").is_file()
