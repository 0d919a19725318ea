"""Provenance on every run and result: git state (or why there is none), versions, hosts, Slurm ids,
in meta.yaml and in each launch's start and end events; --diff of two runs shows it."""
from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
import torch
from omegaconf import OmegaConf

from mdreg import provenance
from mdreg.engine.distributed import DistEnv
from tests.conftest import trainer_for
from mdreg.runs.plan import build_plans
from mdreg.runs.rundir import prepare
from mdreg.reports.diff import diff_runs, format_run_diff


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_state_of_a_checkout_clean_dirty_and_absent(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a")
    clean = provenance.git_state(repo)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False and clean["diff_bytes"] == 0
    (repo / "a.py").write_text("x = 2\n")
    dirty = provenance.git_state(repo)
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True and dirty["diff_sha256"] != clean["diff_sha256"]
    assert provenance.git_state(repo)["diff_sha256"] == dirty["diff_sha256"]  # the same diff, the same hash
    (repo / "new.py").write_text("")
    assert provenance.git_state(repo)["untracked_files"] == 1
    (repo / "sub").mkdir()
    inside = provenance.git_state(repo / "sub")
    assert inside["available"] is False and "not a git checkout of mdreg" in inside["reason"]
    outside = provenance.git_state(tmp_path / "site-packages")  # an installed package
    assert outside["available"] is False and "not a git checkout" in outside["reason"]


def test_collect_describes_this_process(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    info = provenance.collect()
    assert info["slurm"] == {"job_id": "77", "array_task_id": "3"} and info["host"] == socket.gethostname()
    assert info["torch"] == torch.__version__ and info["python"].count(".") == 2 and info["mdreg"] == "0.1.0"
    assert info["gpus"]["count"] == torch.cuda.device_count() and info["cpu_threads"] == torch.get_num_threads()
    json.dumps(info)  # plain data
    from mdreg.engine.monitor import with_ranks

    assert with_ranks(info)["hosts"] == [socket.gethostname()]
    assert provenance.flatten({"a": {"b": 1}, "c": [1, 2]}) == {"a.b": 1, "c": [1, 2]}


@pytest.fixture
def two_runs(recipe_factory):
    """Run A trained in two launches (stopped after 1 step, then resumed); run B in one, other lr."""
    recipe = recipe_factory(steps=2)
    runs = []
    for overrides, stop in ((["train.run_name=a"], True), (["train.run_name=b", "stages.main.optimizer.lr=0.002"],
                                                           False)):
        (plan,) = build_plans(recipe, overrides)
        prepare(plan)
        for launch in range(2 if stop else 1):
            trainer = trainer_for(plan, "main", DistEnv())
            if stop and launch == 0:
                trainer.request_stop()
            trainer.fit()
        runs.append(plan.run_dir)
    return runs


def test_meta_start_and_end_events_carry_provenance_and_diff_shows_it(two_runs):
    a, b = two_runs
    meta = OmegaConf.to_container(OmegaConf.load(a / "meta.yaml"))["provenance"]
    assert meta["host"] == socket.gethostname() and meta["torch"] == torch.__version__ and "git" in meta
    events = [json.loads(line) for line in (a / "main" / "metrics.jsonl").read_text().splitlines()]
    starts = [e for e in events if e.get("event") == "start"]
    ends = [e for e in events if e.get("event") == "end"]
    assert [e["step"] for e in starts] == [0, 1] and len(ends) == 1  # each launch adds its own start
    assert all(e["provenance"]["hosts"] == [socket.gethostname()] for e in starts)
    assert ends[0]["provenance"]["time"] >= starts[1]["provenance"]["time"]
    config, prov = diff_runs(a, b)
    assert ("stages.main.optimizer.lr", 0.001, 0.002) in config and ("train.run_name", "a", "b") in config
    keys = {k for k, _, _ in prov}
    assert "main.start.1.host" in keys  # B has no second launch (times differ only when a second apart)
    assert "main.start.0.git.commit" not in keys  # the same code made both
    text = format_run_diff(a, b)
    assert text.startswith("# config\n") and "# provenance" in text and "main.start.1.hosts" in text


def test_diff_of_two_runs_from_the_command_line(two_runs, capsys):
    from mdreg.commands.entry import run_cli
    from mdreg.commands.launch import main

    a, b = two_runs
    assert run_cli(main, ["--diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "stages.main.optimizer.lr" in out and "main.start.1.time" in out
    assert run_cli(main, ["--diff", str(a), str(b), "train.seed=1"]) == 2
    assert "--diff RUN_DIR_A RUN_DIR_B compares two run directories" in capsys.readouterr().err


def _rank(rank: int, recipe: str, port: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), MDREG_FAKE_HOST=f"host{rank}")
    from mdreg.engine import distributed as ddp
    from mdreg.engine.distributed import setup

    socket.gethostname = lambda: os.environ["MDREG_FAKE_HOST"]  # each rank its own "node"
    env = setup("cpu")
    (plan,) = build_plans(recipe, ["train.run_name=ddp"])
    if env.is_main:
        prepare(plan)
    ddp.barrier()
    trainer_for(plan, "main", env).fit()
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch and mdreg: ~25 s on 2 busy cores
def test_the_start_event_names_every_ranks_host(recipe_factory):
    import torch.multiprocessing as mp

    recipe = recipe_factory(steps=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(str(recipe), port), nprocs=2, join=True)
    (plan,) = build_plans(recipe, ["train.run_name=ddp"])
    events = [json.loads(line) for line in (plan.run_dir / "main" / "metrics.jsonl").read_text().splitlines()]
    (start,) = [e for e in events if e.get("event") == "start"]
    assert start["world_size"] == 2 and start["provenance"]["hosts"] == ["host0", "host1"]
    assert start["provenance"]["host"] == "host0"  # rank 0 writes the log
