"""One run directory, one writer: real local launches (forked processes running the CLI, so
that they start in milliseconds), a real SIGKILL, and the record a killed launch leaves.

(A Slurm job holding a run is tested in tests/slurm/test_run_lock_slurm.py.)
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from pathlib import Path

import torch

from tests.conftest import tiny_recipe

STEPS = 300  # ~4 s of training on one CPU: the second launch comes long before the end


def _child(argv: list[str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
    from mdreg.commands.entry import run_cli
    from mdreg.commands.launch import main

    os._exit(run_cli(main, argv))


def start(argv: list, log: Path) -> multiprocessing.Process:
    """``tools/launch.py ARGV`` as its own process (forked: the modules are already imported)."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=([str(a) for a in argv], str(log)))
    proc.start()
    return proc


def record(run: Path) -> dict | None:
    text = (run / ".lock").read_text() if (run / ".lock").is_file() else ""
    return json.loads(text) if text.strip() else None


def wait_for(condition, what: str, proc: multiprocessing.Process, log: Path, timeout: float = 60) -> None:
    end = time.time() + timeout
    while not condition():
        assert proc.is_alive(), f"the launch ended (exit {proc.exitcode}) before {what}:\n{log.read_text()}"
        assert time.time() < end, f"no {what} after {timeout} s:\n{log.read_text()}"
        time.sleep(0.02)


def steps_done(run: Path) -> int:
    path = run / "main" / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return max([r.get("step", 0) for r in rows if "loss" in r] or [0])


def final_weights(run: Path) -> dict:
    return torch.load(run / "main" / "checkpoints" / f"step_{STEPS:08d}.pt", weights_only=True)["model"]


def test_second_launch_refused_while_the_first_runs_and_a_killed_launch_is_taken_over(tmp_path, launch):
    recipe = tiny_recipe(tmp_path, steps=STEPS, log_every=10, ckpt_every=20)
    host = socket.gethostname()

    # 1. the first launch runs; the second (same run, a changed run setting) is refused
    first_run, first_log = tmp_path / "runs" / "tiny" / "first", tmp_path / "first.log"
    first = start([recipe, "train.run_name=first"], first_log)
    wait_for(lambda: steps_done(first_run) >= 10, "training", first, first_log)
    held = record(first_run)
    assert held["pid"] == first.pid and held["host"] == host and held["job_id"] is None
    config, meta = (first_run / "config.yaml").read_bytes(), (first_run / "meta.yaml").read_bytes()
    code, out = launch(recipe, "train.run_name=first", "train.keep_last=3")  # would rewrite config.yaml
    assert code == 2, out
    error = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and f"is in use by pid {first.pid} on host {host} since" in error[0], out
    assert f"kill {first.pid} on {host}" in error[0]
    assert first.is_alive()  # refused while the first one trains
    assert (first_run / "config.yaml").read_bytes() == config and (first_run / "meta.yaml").read_bytes() == meta
    first.join(120)
    assert first.exitcode == 0, first_log.read_text()
    assert record(first_run) is None  # a normal exit empties the record
    print(error[0])

    # 2. a launch killed with SIGKILL leaves its record; the next launch takes it over
    killed_run, killed_log = tmp_path / "runs" / "tiny" / "killed", tmp_path / "killed.log"
    killed = start([recipe, "train.run_name=killed"], killed_log)
    wait_for(lambda: (killed_run / "main" / "checkpoints" / "step_00000040.pt").is_file(), "a checkpoint", killed,
             killed_log)
    os.kill(killed.pid, signal.SIGKILL)
    killed.join(30)
    assert killed.exitcode == -signal.SIGKILL
    assert record(killed_run)["pid"] == killed.pid  # stale: the process is gone, its record is not
    code, out = launch(recipe, "train.run_name=killed")
    assert code == 0, out
    notes = [line for line in out.splitlines() if "taking over the lock" in line]
    assert len(notes) == 1 and f"of pid {killed.pid} on host {host} since" in notes[0], out
    assert notes[0].endswith("which is no longer running (killed?)")
    assert "resumed from" in out
    print(notes[0])
    want, got = final_weights(first_run), final_weights(killed_run)
    assert all(torch.equal(want[k], got[k]) for k in want)  # the killed run resumed to the same weights


def test_a_lock_held_on_another_host_is_refused_naming_the_file_to_delete(tmp_path, launch):
    recipe = tiny_recipe(tmp_path)
    run = tmp_path / "runs" / "tiny" / "elsewhere"
    run.mkdir(parents=True)
    (run / ".lock").write_text(json.dumps({"pid": 4242, "host": "node-17", "started": "2024-01-01 00:00:00",
                                           "job_id": None, "command": "tools/launch.py tiny.py"}))
    code, out = launch(recipe, "train.run_name=elsewhere")
    assert code == 2
    assert (f"is locked by pid 4242 on host node-17 since 2024-01-01 00:00:00 (tools/launch.py tiny.py), which "
            f"runs on another host and cannot be checked from {socket.gethostname()}. Nothing was written") in out
    assert f"delete {run / '.lock'} and launch again" in out
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing was written
