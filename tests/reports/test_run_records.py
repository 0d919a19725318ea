"""What the report reads from a stage's metrics.jsonl: launches, time and devices spent, state."""
from __future__ import annotations

import json

import pytest

from mdreg.runs.records import read_stage


def write(stage_dir, records):
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def start(t, step, world, gpus=0, threads=1):
    return {"event": "start", "time": t, "step": step, "world_size": world,
            "provenance": {"gpus": {"count": gpus, "models": ["H100"] * gpus}, "cpu_threads": threads}}


def test_a_killed_launch_then_a_resume_on_gpus(tmp_path):
    stage = tmp_path / "main"
    write(stage, [start(100.0, 0, world=8, gpus=8), {"time": 160.0, "step": 10, "loss": 1.0},
                  {"time": 220.0, "step": 20, "loss": 0.9},  # killed here: no end event
                  {"event": "resume", "time": 5000.0, "step": 20}, start(5001.0, 20, world=8, gpus=8),
                  {"time": 5061.0, "step": 30, "loss": 0.8}, {"event": "end", "time": 5101.0, "step": 30},
                  {"event": "evaluation", "source": "tools/evaluate.py", "time": 9000.0, "checkpoint_step": 30,
                   "scores": {"fid": 3.0}}])
    rec = read_stage(stage, total=30)
    assert [(l.start, l.end, l.closed_by) for l in rec.launches] == [(100.0, 220.0, None), (5001.0, 5101.0, "end")]
    assert rec.seconds(gpu=True) == pytest.approx((120 + 100) * 8) and rec.core_seconds() == 0
    assert rec.state == "done" and rec.done == 30 and rec.losses == [(10, 1.0), (20, 0.9), (30, 0.8)]
    assert [(e["step"], e["source"]) for e in rec.evals] == [(30, "tools/evaluate.py")]


def test_running_stopped_and_cpu_core_seconds(tmp_path):
    write(tmp_path / "a", [start(0.0, 0, world=2, threads=4), {"time": 30.0, "step": 5, "loss": 1.0}])
    running = read_stage(tmp_path / "a", total=10)
    assert running.state == "running" and running.done == 5
    assert running.seconds(gpu=False) == 60 and running.core_seconds() == 240 and running.wall_seconds() == 30
    write(tmp_path / "b", [start(0.0, 0, world=1), {"time": 3.0, "step": 2, "loss": 1.0},
                           {"event": "stopped", "time": 4.0, "step": 2}])
    assert read_stage(tmp_path / "b", total=10).state == "stopped"
    assert read_stage(tmp_path / "never", total=10).state == "not started"
    # a GPU machine running train.device=cpu is a CPU run
    write(tmp_path / "c", [start(0.0, 0, world=1, gpus=1, threads=2), {"event": "end", "time": 10.0, "step": 1}])
    assert read_stage(tmp_path / "c", total=1, cpu_only=True).core_seconds() == 20
    assert read_stage(tmp_path / "c", total=1).seconds(gpu=True) == 10
