"""``python tools/launch.py RECIPE --eval-commands``: the paper's evaluation of each run, as commands.

A recipe's ``evaluation`` section pins how the paper measured its number (stage, EMA
weights, sampler and its settings, sample count, guidance, reference, metrics; see
recipes/common/evaluation.py and mdreg/evaluation/protocol.py). This prints, per run of the
plan (sweep elements included), the two commands that measure FID by hand, then the one
resumable job that samples and scores the whole protocol:

    python tools/sample.py RUN --stage STAGE --sampler NAME ARG=VALUE... --num N [--guidance W] \
        --out RUN/STAGE/eval/fidN
    python tools/fid.py RUN/STAGE/eval/fidN/samples.npz REFERENCE --inception-weights $INCEPTION_WEIGHTS \
        [--reference-resolution R]
    # the whole protocol (metrics ..., resumable): python tools/evaluate.py RUN --inception-weights $INCEPTION_WEIGHTS

The reference is resolved (``${paths.celeba}`` -> ``/data/celeba``); the Inception weights
file is the user's (``$INCEPTION_WEIGHTS``). An image-folder reference (not an ``.npz``) gets
``--reference-resolution`` = the evaluated stage's training resolution, so it is centre-cropped
and resized like the training data. With several sample counts the sample command draws the
largest. The CPU-scale protocols (``metric: shape``, ``metric: toy``) are measured by
tools/evaluate.py (the toys also by tools/toy_report.py).
"""
from __future__ import annotations

import shlex

from mdreg.errors import UserError
from mdreg.evaluation.protocol import Protocol, sampler_cli
from mdreg.runs.plan import RunPlan

WEIGHTS = "$INCEPTION_WEIGHTS"


def _join(args: list[str]) -> str:
    return " ".join(shlex.quote(a) if a != WEIGHTS else a for a in args)


def eval_commands(plan: RunPlan) -> list[str]:
    """The commands that measure ``plan``'s evaluation section (see the module docstring)."""
    if "evaluation" not in plan.cfg:
        raise UserError(f"{plan.recipe}: the recipe has no evaluation section (see recipes/common/evaluation.py)")
    p = Protocol.from_config(plan.cfg)
    evaluate = ["python", "tools/evaluate.py", str(plan.run_dir)]
    if p.metric == "toy":
        return [f"python tools/toy_report.py {shlex.quote(str(plan.recipe))}", _join(evaluate)]
    if p.metric == "shape":
        return [_join(evaluate)]
    n = max(p.num_samples)
    name, args = sampler_cli(p.sampler)
    out = plan.run_dir / p.stage / "eval" / f"fid{n}"
    sample = ["python", "tools/sample.py", str(plan.run_dir), "--stage", p.stage, "--sampler", name, *args,
              "--num", str(n), "--out", str(out)]
    if p.guidance_scale != 1.0:
        sample += ["--guidance", f"{p.guidance_scale:g}"]
    fid = ["python", "tools/fid.py", str(out / "samples.npz"), str(p.reference), "--inception-weights", WEIGHTS]
    if p.reference_resolution is not None:  # an image folder: preprocess it like the training data
        fid += ["--reference-resolution", str(p.reference_resolution)]
    whole = _join([*evaluate, "--inception-weights", WEIGHTS])
    return [_join(sample), _join(fid), f"# the whole protocol ({', '.join(p.metrics)}; resumable): {whole}"]


def describe(plans: list[RunPlan]) -> str:
    lines = []
    for plan in plans:
        paper = plan.cfg.get("evaluation", {}).get("paper", "")
        lines.append(f"# {plan.run_name}" + (f": {paper}" if paper else ""))
        lines += eval_commands(plan)
    return "\n".join(lines)
