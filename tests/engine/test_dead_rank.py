"""A rank that dies, or hangs, in a 2-process gloo run launched as torchrun would
(``RANK``/``WORLD_SIZE``/``MASTER_*``; each rank a forked process running the CLI).

What gloo does (checked here): a killed peer's sockets close, so the survivor's collective
fails at once ("Connection closed by peer"), not after the timeout; a stopped (hung) peer
keeps its sockets open and the survivor fails after ``train.collective_timeout_s``. Either
way the survivor exits 1 with one ``error:`` line naming the lost rank, the checkpoint on
disk stays readable, and relaunching resumes to the weights of an uninterrupted run.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import torch

from tests.conftest import make_trainer

STEPS = 60
TIMEOUT_S = 10  # train.collective_timeout_s for these runs (the default is 600 s)
RUN = ["train.run_name=ddp", f"+train.collective_timeout_s={TIMEOUT_S}"]


def _rank(rank: int, argv: list[str], port: int, log: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
    from mdreg.commands.entry import run_cli
    from mdreg.commands.launch import main

    os._exit(run_cli(main, argv))


def launch_ranks(recipe: Path, logs: Path, name: str) -> list[multiprocessing.Process]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_rank, args=(r, [str(recipe), *RUN], port, str(logs / f"{name}.rank{r}.log")))
             for r in range(2)]
    for p in procs:
        p.start()
    return procs


def wait_for_checkpoint(path: Path, procs, logs: Path, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.is_file():
        assert all(p.is_alive() for p in procs), "a rank ended early:\n" + "\n".join(
            f.read_text() for f in sorted(logs.glob("*.log")))
        assert time.time() < end, f"no {path.name} after {timeout} s"
        time.sleep(0.02)


def survivor_exit(proc, started: float, limit: float) -> tuple[int, float]:
    proc.join(limit)
    elapsed = time.time() - started
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
        raise AssertionError(f"rank 0 still running {limit} s after its peer was lost")
    return proc.exitcode, elapsed


def error_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("error: ")]


def readable_last(stage: Path) -> int:
    """The step of the checkpoint ``last`` names, loading it fully (it must be intact)."""
    name = (stage / "checkpoints" / "last").read_text().strip()
    return torch.load(stage / "checkpoints" / name, weights_only=True)["step"]


def test_killed_rank_stops_the_survivor_at_once_and_the_relaunch_resumes_bit_exactly(recipe_factory, tmp_path):
    recipe = recipe_factory(steps=STEPS, batch_size=8, log_every=5, ckpt_every=10)
    reference = make_trainer(recipe, ["train.run_name=single", "stages.main.grad_accum=2", *RUN[1:]])
    reference.fit()
    stage = tmp_path / "runs" / "tiny" / "ddp" / "main"

    ranks = launch_ranks(recipe, tmp_path, "first")
    wait_for_checkpoint(stage / "checkpoints" / "step_00000020.pt", ranks, tmp_path)
    os.kill(ranks[1].pid, signal.SIGKILL)
    code, elapsed = survivor_exit(ranks[0], time.time(), limit=3 * TIMEOUT_S)
    ranks[1].join(5)
    print(f"survivor exit {code} after {elapsed:.2f} s")
    errors = error_lines(tmp_path / "first.rank0.log")
    assert code == 1 and len(errors) == 1, (tmp_path / "first.rank0.log").read_text()
    print(errors[0])
    assert elapsed < TIMEOUT_S  # gloo saw the closed connection: no need to wait out the timeout
    assert re.match(rf"error: rank 0 of 2 stopped: a collective failed because rank 1 \(pid {ranks[1].pid} on "
                    rf"{re.escape(socket.gethostname())}\) is gone \(killed", errors[0]), errors[0]
    # gloo's words vary, and it may add the peer's address: "... by peer [127.0.0.1]:64712]"
    assert re.search(r"\[RuntimeError: .*Connection (closed|reset) by peer( \[[^\]]*\]:\d+)?\] Every rank stops",
                     errors[0]), errors[0]
    assert errors[0].endswith("the last checkpoint is intact: relaunch the same command to resume from it")
    stopped_at = readable_last(stage)
    assert 20 <= stopped_at < STEPS

    relaunched = launch_ranks(recipe, tmp_path, "relaunch")
    for p in relaunched:
        p.join(180)
    assert [p.exitcode for p in relaunched] == [0, 0], (tmp_path / "relaunch.rank0.log").read_text()
    assert f"resumed from {stage / 'checkpoints' / f'step_{stopped_at:08d}.pt'}" in \
        (tmp_path / "relaunch.rank0.log").read_text()
    final = torch.load(stage / "checkpoints" / f"step_{STEPS:08d}.pt", weights_only=True)["model"]
    want = reference.parts.model.state_dict()
    assert all(torch.equal(final[k], want[k]) for k in want)  # 2 ranks, killed and resumed == 1 process x 2
    resumes = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in resumes if e.get("event") == "resume"] == [stopped_at]


def test_hung_rank_stops_the_survivor_after_the_collective_timeout(recipe_factory, tmp_path):
    recipe = recipe_factory(steps=STEPS, batch_size=8, log_every=5, ckpt_every=10)
    stage = tmp_path / "runs" / "tiny" / "ddp" / "main"
    ranks = launch_ranks(recipe, tmp_path, "hung")
    wait_for_checkpoint(stage / "checkpoints" / "step_00000010.pt", ranks, tmp_path)
    os.kill(ranks[1].pid, signal.SIGSTOP)
    try:
        code, elapsed = survivor_exit(ranks[0], time.time(), limit=3 * TIMEOUT_S)
    finally:
        os.kill(ranks[1].pid, signal.SIGKILL)
        ranks[1].join(5)
    errors = error_lines(tmp_path / "hung.rank0.log")
    print(f"survivor exit {code} after {elapsed:.2f} s\n{errors}")
    assert code == 1 and len(errors) == 1, (tmp_path / "hung.rank0.log").read_text()
    assert TIMEOUT_S - 1 <= elapsed < 2 * TIMEOUT_S
    assert errors[0].startswith(f"error: rank 0 of 2 stopped: a collective failed because no answer from the other "
                                f"ranks within train.collective_timeout_s={TIMEOUT_S} s; rank 1 (pid {ranks[1].pid}) "
                                f"still running but silent")
    assert "Timed out waiting" in errors[0]
    assert readable_last(stage) >= 10
