"""What a run directory says about itself: its plan, and per stage the steps done, the state,
the launches (time and devices spent), the loss curve and the evaluation records.

Everything comes from files the run writes (``config.yaml``, ``meta.yaml``, each stage's
``metrics.jsonl`` and ``checkpoints/``), so it works on finished, running, stopped and
never-started runs alike, and on any machine. Evaluation records are the trainer's
(``stages.NAME.evaluate``: ``event: evaluation`` at ``step``) and tools/evaluate.py's
(``source: tools/evaluate.py`` at ``checkpoint_step``).

Time spent: each ``start`` event opens a launch that closes at the next ``end``, ``stopped``
or ``diverged`` event, else at its last record (a killed or still running process; the next
launch's ``resume``/``init_from`` lines are not its own). Device-seconds = wall x world size
(GPU-seconds when the launch saw GPUs and ``train.device`` is not ``cpu``); CPU launches also
count core-seconds = wall x world size x torch threads (``provenance.cpu_threads``, 1 when the
run predates provenance).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mdreg.engine.checkpoint import CheckpointManager, checkpoint_step
from mdreg.io import read_jsonl
from mdreg.runs.plan import RunPlan

SOURCE = "tools/evaluate.py"  # the ``source`` of tools/evaluate.py's evaluation records
CLOSING = ("end", "stopped", "diverged")
OPENING = ("resume", "init_from", "skipped_checkpoint")  # written by the next launch, before its start


@dataclass
class Launch:
    """One process start of a stage (a launch, resume or requeue)."""

    start: float
    end: float
    step_from: int
    step_to: int
    world_size: int
    gpu: bool
    threads: int
    closed_by: str | None  # end | stopped | diverged | None (killed, or still running)
    provenance: dict = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class StageRecord:
    name: str
    total: int
    done: int = 0
    state: str = "not started"   # done | running | stopped | diverged | not started
    launches: list[Launch] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)   # {step, scores, source, record}
    checkpoint: Path | None = None                     # the newest checkpoint (what a resume would take first)
    skipped: list[dict] = field(default_factory=list)  # skipped_checkpoint events: path, reason, kept_as
    damaged: list[Path] = field(default_factory=list)  # checkpoints/step_*.pt.damaged[.N] on disk
    updated: float | None = None                       # time of the stage's newest record

    def seconds(self, gpu: bool | None = None) -> float:
        """Device-seconds (wall x world size) of the launches on GPUs (True), CPUs (False) or all."""
        return sum(l.wall_s * l.world_size for l in self.launches if gpu is None or l.gpu == gpu)

    def core_seconds(self) -> float:
        return sum(l.wall_s * l.world_size * l.threads for l in self.launches if not l.gpu)

    def wall_seconds(self) -> float:
        return sum(l.wall_s for l in self.launches)

    @property
    def progress(self) -> str:
        """``done/total`` steps (``-`` for a stage that wrote nothing yet)."""
        return f"{self.done}/{self.total}" if self.launches or self.checkpoint else "-"


def read_stage(stage_dir: Path, total: int | None = None, cpu_only: bool = False) -> StageRecord:
    """The record of the stage in ``stage_dir`` (``total``: its planned steps; None: the total its
    newest ``start`` event names)."""
    events = read_jsonl(stage_dir / "metrics.jsonl")
    if total is None:
        total = next((int(e["total_steps"]) for e in reversed(events) if isinstance(e.get("total_steps"), int)), 0)
    rec = StageRecord(stage_dir.name, total)
    manager = CheckpointManager(stage_dir / "checkpoints")
    ckpt_steps = manager.steps()
    rec.checkpoint, rec.damaged = manager.latest(), manager.damaged()
    rec.skipped = [e for e in events if e.get("event") == "skipped_checkpoint"]
    rec.updated = max((float(e["time"]) for e in events if isinstance(e.get("time"), (int, float))), default=None)
    trainer = [e for e in events if e.get("source") != SOURCE]  # the trainer's own lines
    rec.done = max([*ckpt_steps, *(int(e["step"]) for e in trainer if isinstance(e.get("step"), int))], default=0)
    current: Launch | None = None
    last_time = None
    for e in trainer:
        kind, t = e.get("event"), float(e.get("time", 0.0))
        if kind == "start":
            if current is not None:
                current.end = last_time or current.start
                rec.launches.append(current)
            prov = e.get("provenance") or {}
            current = Launch(t, t, int(e.get("step", 0)), int(e.get("step", 0)), int(e.get("world_size", 1)),
                             not cpu_only and int((prov.get("gpus") or {}).get("count", 0)) > 0,
                             int(prov.get("cpu_threads", 1) or 1), None, prov)
        elif kind in OPENING:
            continue
        elif current is not None:
            current.end = t
            current.step_to = int(e.get("step", current.step_to))
            if kind in CLOSING:
                current.closed_by = kind
                rec.launches.append(current)
                current = None
        last_time = t
        if "loss" in e and isinstance(e.get("step"), int):
            rec.losses.append((int(e["step"]), float(e["loss"])))
    for e in events:
        if e.get("event") == "evaluation" and isinstance(e.get("scores"), dict):
            ours = e.get("source") == SOURCE
            rec.evals.append({"step": int(e["checkpoint_step"] if ours else e["step"]), "scores": e["scores"],
                              "source": SOURCE if ours else "stage evaluate", "record": e})
    if current is not None:
        rec.launches.append(current)
    last = rec.launches[-1] if rec.launches else None
    if rec.done >= total and (last is None or last.closed_by in ("end", None)) and (last or ckpt_steps):
        rec.state = "done"
    elif last is not None:
        rec.state = {"stopped": "stopped", "diverged": "diverged"}.get(last.closed_by or "", "running")
    elif ckpt_steps:
        rec.state = "stopped"
    return rec


def read_run(plan: RunPlan) -> dict[str, StageRecord]:
    """``{stage: StageRecord}`` of every planned stage of ``plan`` (in order)."""
    cpu_only = str(plan.cfg.train.get("device", "auto")) == "cpu"
    return {s.name: read_stage(plan.run_dir / s.name, s.steps, cpu_only) for s in plan.stages}


def latest_grid(stage_dir: Path) -> Path | None:
    """The newest sample grid PNG of a stage (``samples/step_*.png``), or None."""
    grids = sorted((stage_dir / "samples").glob("step_*.png"))
    return grids[-1] if grids else None


def evaluation_records(stage_dir: Path) -> dict[str, dict]:
    """``{eval_id: record}`` of tools/evaluate.py's records in a stage's metrics.jsonl."""
    return {r["eval_id"]: r for r in read_jsonl(Path(stage_dir) / "metrics.jsonl")
            if r.get("source") == SOURCE and r.get("eval_id")}


def whole(path: Path) -> bool:
    """``path`` opens as a zip archive (its central directory is intact: what ``torch.save`` writes;
    a truncated or emptied file has none). Only the directory is read, not the tensors."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def stage_complete(stage_dir: Path, steps: int) -> bool:
    """The stage's newest checkpoint (the one ``last`` names, else the newest step file) is of
    step ``steps`` or later, and whole. Damage inside an archive's members is not seen here: a
    resume finds it, sets the file aside and falls back (:func:`mdreg.engine.checkpoint.resume_point`)."""
    latest = CheckpointManager(stage_dir / "checkpoints").latest()
    return latest is not None and checkpoint_step(latest) >= steps and whole(latest)
