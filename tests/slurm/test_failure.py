"""A job that fails: its traceback reaches the user through --status, and the stage that
depends on it is cancelled instead of pending forever."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.slurm.slurm_helpers import SMALL_JOB, TINY, recorded_jobs, sacct

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]


def test_failed_job_traceback_in_status(tmp_path, launch):
    # 16 images cannot fill one batch of 64: only the trainer, inside the job, finds out
    code, out = launch("recipes/quickstart.py", *TINY, "data.dataset.num_images=16", f"train.output_root={tmp_path}",
                       "train.run_name=broken", "--cluster", "slurm", *SMALL_JOB, "--wait")
    assert code == 1
    run = tmp_path / "quickstart" / "broken"
    pretrain, finetune = (j["job_id"] for j in recorded_jobs(run))
    assert sacct(pretrain)[-1]["State"] == "FAILED"
    assert sacct(finetune)[-1]["State"].startswith("CANCELLED")  # --kill-on-invalid-dep=yes

    status = subprocess.run([sys.executable, "tools/launch.py", "--status", str(run)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 1, status.stderr
    text = status.stdout
    assert "FAILED: traceback from" in text
    assert "Traceback (most recent call last)" in text
    assert "ConfigError: data.dataset has 16 samples, fewer than one global batch of stages.pretrain.batch_size=64" in text
    assert f"cancelled: its dependency (afterok:{pretrain}) failed or was cancelled" in text
