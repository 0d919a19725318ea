"""Exact resume after SIGKILL: the launcher is killed at random points and relaunched with
the same command until the stage completes; the final checkpoint (model, EMA, optimizer)
must be bit-identical to an uninterrupted run's. Both runs are subprocesses with one
thread (identical CPU kernels); the uninterrupted one runs beside the first kill."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import torch

from tests.conftest import REPO

STEPS = 24
PROGRESS = re.compile(r"\] (\d+)/(\d+)")


def _launch(recipe, run_name):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "tools" / "launch.py"), str(recipe), f"train.run_name={run_name}"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _kill_after(proc, step: int, delay: float) -> tuple[str, str]:
    """SIGKILL ``proc`` ``delay`` s after it reports step >= ``step`` (or let it finish)."""
    out = []
    for line in proc.stdout:
        out.append(line)
        m = PROGRESS.search(line)
        if m and int(m.group(1)) >= step:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed", "".join(out)
    proc.wait()
    return f"exit {proc.returncode}", "".join(out)


def test_sigkill_and_relaunch_is_bit_identical(recipe_factory):
    seed = int(time.time()) % 10_000
    rng = random.Random(seed)
    recipe = recipe_factory(steps=STEPS, batch_size=8, log_every=1, ckpt_every=2, masker="patch", ratio=0.5,
                            objective="mdsm", hflip=0.5)
    reference = _launch(recipe, "uninterrupted")
    kills = sorted(rng.sample(range(2, STEPS - 1), 3))
    history = []
    for target in kills:
        status, out = _kill_after(_launch(recipe, "killed"), target, rng.uniform(0.0, 0.03))
        history.append((target, status, re.findall(r"resumed from .*?(step_\d+)", out)))
    for _ in range(3):  # relaunch the same command until complete
        status, out = _kill_after(_launch(recipe, "killed"), STEPS + 1, 0)
        history.append(("-", status, re.findall(r"resumed from .*?(step_\d+)", out)))
        if status == "exit 0":
            break
    print(f"seed {seed}: (kill target, outcome, resumed from) {history}")
    assert reference.wait() == 0, reference.stdout.read()
    assert status == "exit 0", (seed, history, out)
    assert sum(h[1] == "killed" for h in history) == 3, (seed, history)

    runs = recipe.parent / "runs" / recipe.stem
    final = [torch.load(runs / name / "main" / "checkpoints" / f"step_{STEPS:08d}.pt", weights_only=True)
             for name in ("uninterrupted", "killed")]
    for part in ("model", "ema"):
        for key, value in final[0][part].items():
            assert torch.equal(value, final[1][part][key]), (seed, history, part, key)
    opt = [f["optimizer"]["state"] for f in final]
    assert all(torch.equal(opt[0][i][k], opt[1][i][k]) for i in opt[0] for k in opt[0][i]), (seed, history)
    for line in (runs / "killed" / "main" / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # a line cut by the kill was repaired
    assert not list((runs / "killed" / "main" / "checkpoints").glob(".*.tmp"))
