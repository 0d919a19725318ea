"""Tests against a real single-node Slurm (tests/slurm/start-local-slurm.sh).

The session fixture starts the cluster if it is not running (as root it installs the
Debian packages it needs) with LOCAL_SLURM_FAKE_GPUS=2 unless set, and stops it at the end
if it started it. If the cluster cannot be started every test here FAILS with the
script's output: these tests are never skipped silently.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_runner import launch  # noqa: F401  (a fixture)

HERE = Path(__file__).parent


def _ours_running(env: dict) -> bool:
    pid_file = Path(env.get("LOCAL_SLURM_DIR", "/tmp/local-slurm")) / "run" / "slurmctld.pid"
    try:
        return Path(f"/proc/{pid_file.read_text().strip()}/comm").read_text().strip() == "slurmctld"
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def local_slurm():
    env = {**os.environ, "LOCAL_SLURM_FAKE_GPUS": os.environ.get("LOCAL_SLURM_FAKE_GPUS", "2")}
    was_running = _ours_running(env)
    try:
        proc = subprocess.run(["bash", str(HERE / "start-local-slurm.sh")], env=env, capture_output=True,
                              text=True, timeout=900)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"tests/slurm/start-local-slurm.sh did not finish in 900 s:\n{exc.stdout}\n{exc.stderr}",
                    pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"cannot start the local Slurm cluster: tests/slurm/start-local-slurm.sh exited "
                    f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    yield env
    if not was_running:
        subprocess.run(["bash", str(HERE / "stop-local-slurm.sh")], env=env, capture_output=True, timeout=120)
