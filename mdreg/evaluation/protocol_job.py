"""``python tools/evaluate.py RUN_DIR``: a run's evaluation protocol, sampled and scored as ONE
resumable job.

The protocol is the run's ``evaluation`` section (mdreg/evaluation/protocol.py; ``KEY=VALUE``
overrides of ``evaluation.*`` and ``--stage`` change it without renaming the run). For each
checkpoint asked for (``--checkpoint``: ``last``, a step, or ``all-milestones``: every kept
``train.milestone_every`` checkpoint and the last, the points of a metric-vs-step curve):

1. sample ``max(num_samples)`` images with :func:`~mdreg.evaluation.sample_folder.sample_run`
   into ``RUN/STAGE/eval/<protocol folder>/step_<N>/`` (PNGs + ``samples.npz``; an
   interrupted job resumes at the first missing batch and draws the same images);
2. score each N of ``num_samples`` on the first N images: ``metric: fid`` with
   :func:`~mdreg.evaluation.inception_metrics.compute_metrics` (``--inception-weights`` or
   ``$MDREG_INCEPTION_WEIGHTS``), ``shape`` with :class:`~mdreg.evaluation.shape_metric.ShapeMetric`,
   ``toy`` with tools/toy_report.py's sampling and distances (the last checkpoint only);
3. write the record beside the samples (``result-n<N>-<digest>.json``) and append it to the
   stage's ``metrics.jsonl``: ``event: evaluation``, ``source: tools/evaluate.py``,
   ``checkpoint_step``, ``scores``, the paper's ``reported`` numbers for it, the full
   ``protocol`` and this process's ``provenance``.

Each record has an ``eval_id`` (protocol digest, step, N) and is written once: a rerun skips
what is recorded, so the same command resumes a curve or does nothing. ``--cluster slurm``
submits the same as a Slurm job after the stage's training job (mdreg/launch/slurm/evaluate_job.py).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from mdreg.config.overrides import apply_overrides, parse_overrides
from mdreg.engine.checkpoint import CheckpointManager, checkpoint_name
from mdreg.errors import UserError
from mdreg.evaluation.protocol import Protocol, metric_class, sampler_cli
from mdreg.evaluation.sample_folder import npz_count, sample_run
from mdreg.io import append_jsonl, atomic_write_text
from mdreg.provenance import collect
from mdreg.runs.lock import hold, slurm_job_id
from mdreg.runs.records import SOURCE, evaluation_records
from mdreg.runs.rundir import read_run_config


def run_protocol(run_dir: Path, overrides: list[str] = (), stage: str | None = None):
    """(the run's config, its protocol) after ``evaluation.*`` ``overrides`` and ``stage``."""
    cfg = read_run_config(run_dir)  # its plugins imported: a metric or a sampler may be the user's own
    texts = list(overrides) + ([f"evaluation.stage={stage}"] if stage else [])
    bad = [t for t in texts if not t.lstrip("+~").startswith("evaluation.")]
    if bad:
        raise UserError(f"{bad[0]}: tools/evaluate.py changes only evaluation.* keys (the run's training is fixed "
                        f"by its config.yaml)")
    if texts:
        apply_overrides(cfg, parse_overrides(texts).overrides)
    return cfg, Protocol.from_config(cfg)


def checkpoints(cfg, stage_dir: Path, which: str | None) -> list[tuple[int, Path]]:
    """``[(step, file)]`` to score: ``last`` (default), a step number, or ``all-milestones``."""
    manager = CheckpointManager(stage_dir / "checkpoints")
    latest = manager.latest()
    if latest is None:
        raise UserError(f"stage {stage_dir.name!r} of {stage_dir.parent} has no checkpoint yet; train it first")
    steps = manager.steps()
    which = which or "last"
    if which == "last":
        return [(int(latest.stem.split("_")[1]), latest)]
    if which == "all-milestones":
        every = cfg.train.get("milestone_every")
        if not every:
            raise UserError(f"--checkpoint all-milestones: train.milestone_every is not set for {stage_dir.parent}, "
                            f"so no milestone checkpoints were kept; score --checkpoint last or a step of "
                            f"{', '.join(map(str, steps))}")
        chosen = [s for s in steps if s % int(every) == 0 or s == steps[-1]]
        return [(s, manager.folder / checkpoint_name(s)) for s in chosen]
    if not which.isdigit():
        raise UserError(f"--checkpoint {which}: give last, all-milestones or a step number")
    if int(which) not in steps:
        raise UserError(f"--checkpoint {which}: stage {stage_dir.name!r} keeps the checkpoints of steps "
                        f"{', '.join(map(str, steps))}")
    return [(int(which), manager.folder / checkpoint_name(int(which)))]


def build_metric(cfg, protocol: Protocol, inception_weights: str | None = None, device: str = "cpu"):
    """The protocol's ``metric:<name>`` built for scoring (a missing weights file or reference is
    refused here)."""
    return metric_class(protocol.metric).for_protocol(cfg, protocol, inception_weights, device)


def preflight(cfg, inception_weights: str | None = None) -> Protocol:
    """The run's checked protocol, refused before anything runs or waits in a queue: a bad
    key, a missing weights file or reference (``cfg``: the run's config, overrides applied)."""
    protocol = Protocol.from_config(cfg)
    if protocol.weights != "ema":
        raise UserError(f"evaluation.weights={protocol.weights}: tools/evaluate.py samples the EMA weights (as both "
                        f"papers and tools/sample.py do); set evaluation.weights=ema")
    build_metric(cfg, protocol, inception_weights)
    return protocol


def evaluate_run(run_dir: str | Path, stage: str | None = None, checkpoint: str | None = None,
                 overrides: list[str] = (), inception_weights: str | None = None, device: str = "auto",
                 echo=print) -> list[dict]:
    """Sample and score ``run_dir``'s protocol at the chosen checkpoints (see the module
    docstring); returns one record per checkpoint and sample count, new or already recorded."""
    from mdreg.engine.distributed import pick_device

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg, p = run_protocol(run_dir, list(overrides), stage)
    preflight(cfg, inception_weights)
    stage_dir = run_dir / p.stage
    chosen = checkpoints(cfg, stage_dir, checkpoint)
    dev = str(pick_device(device, 0))
    metric = build_metric(cfg, p, inception_weights, dev)
    if not metric.needs_samples and chosen[-1][1] != CheckpointManager(stage_dir / "checkpoints").latest():
        raise UserError(f"evaluation.metric={p.metric} samples the last checkpoint itself; drop --checkpoint")
    with hold(run_dir, job_id=slurm_job_id(), say=echo):  # one writer per run directory (metrics.jsonl)
        return score_checkpoints(run_dir, p, metric, chosen, dev, echo)


def score_checkpoints(run_dir: Path, p: Protocol, metric, chosen: list[tuple[int, Path]], dev: str,
                      echo) -> list[dict]:
    """Each chosen checkpoint's scores at each sample count, recorded once (resumable)."""
    stage_dir = run_dir / p.stage
    metrics, done, out = stage_dir / "metrics.jsonl", evaluation_records(stage_dir), []
    for step, path in chosen:
        folder = stage_dir / "eval" / p.folder_name() / f"step_{step:08d}"
        todo = {n: f"{p.digest()}-step{step}-n{n}" for n in p.num_samples}
        for n, eval_id in todo.items():
            if eval_id in done:
                echo(f"[evaluate] {p.stage} step {step} N={n}: already recorded ({_shown(done[eval_id]['scores'])})")
                out.append(done[eval_id])
                continue
            result_file = folder / f"result-n{n}-{p.digest()}.json"
            if result_file.is_file():  # scored, but the job ended before the record was appended
                record = json.loads(result_file.read_text())
            else:
                record = measure(run_dir, p, metric, folder, step, path, n, dev)
                record["eval_id"] = eval_id
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(result_file, json.dumps(record, indent=1, default=str) + "\n")
            append_jsonl(metrics, record)
            done[eval_id] = record
            echo(f"[evaluate] {p.stage} step {step} N={n}: {_shown(record['scores'])} -> {result_file}")
            out.append(record)
    return out


def measure(run_dir: Path, p: Protocol, metric, folder: Path, step: int, checkpoint: Path, n: int,
            device: str) -> dict:
    """The record of the first ``n`` samples of ``checkpoint`` (sampling what is missing first)."""
    t0 = time.time()
    if not metric.needs_samples:
        scores, details = metric.score_run(run_dir, n)
    else:
        if npz_count(folder / "samples.npz", ("arr_0",)) != max(p.num_samples):
            name, args = sampler_cli(p.sampler)
            sample_run(run_dir, p.stage, max(p.num_samples), folder, p.batch_size, p.seed, name, args,
                       p.guidance_scale, str(checkpoint), device)
        scores, details = metric.score(folder / "samples.npz", n)
    return {"event": "evaluation", "source": SOURCE, "stage": p.stage, "time": time.time(), "checkpoint_step": step,
            "checkpoint": str(checkpoint), "metric": p.metric, "num_samples": n, "scores": scores,
            "reported": p.reported_for(n, step), "details": details, "samples": str(folder),
            "protocol": p.as_record(), "protocol_digest": p.digest(), "wall_s": round(time.time() - t0, 3),
            "provenance": collect()}


def _shown(scores: dict) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, (int, float)))

