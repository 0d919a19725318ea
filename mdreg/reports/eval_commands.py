"""``python tools/launch.py RECIPE --eval-commands``: the paper's evaluation of each run, as commands.

A recipe's ``evaluation`` section records how the paper measured its number (stage, EMA
weights, sampler and its settings, sample count, guidance, reference; see
recipes/common/evaluation.py). This turns it into the two commands that measure it with the
sampling and FID tools, per run of the plan (sweep elements included):

    python tools/sample.py RUN --stage STAGE --sampler NAME ARG=VALUE... --num N [--guidance W] --out RUN/STAGE/eval/fidN
    python tools/fid.py RUN/STAGE/eval/fidN/samples.npz REFERENCE --inception-weights $INCEPTION_WEIGHTS \
        [--reference-resolution R]

The reference is resolved (``${paths.celeba}`` -> ``/data/celeba``); the Inception weights
file is the user's (``$INCEPTION_WEIGHTS``). An image-folder reference (not an ``.npz``) gets
``--reference-resolution`` = the evaluated stage's training resolution, so it is centre-cropped
and resized like the training data. Toy recipes (``metric: toy``) are measured by
tools/toy_report.py instead.
"""
from __future__ import annotations

import shlex

from omegaconf import OmegaConf

from mdreg.config.lazy import META_KEYS, target_ref
from mdreg.errors import UserError
from mdreg.launch.plan import RunPlan


def _value(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def training_resolution(plan: RunPlan, stage: str) -> int:
    """The image resolution ``stage`` trains at (its own ``dataset`` or ``data.dataset``)."""
    for key in (f"stages.{stage}.dataset", "data.dataset"):
        node = OmegaConf.select(plan.cfg, key)
        if node is not None:
            if node.get("resolution") is None:
                raise UserError(f"{key} of run {plan.run_name} has no resolution: set {key}.resolution, or give "
                                f"evaluation.reference as a statistics .npz")
            return int(node.resolution)
    raise UserError(f"run {plan.run_name} has no data.dataset: give evaluation.reference as a statistics .npz")


def eval_commands(plan: RunPlan) -> list[str]:
    """``[sample command, fid command]`` for ``plan``'s evaluation section."""
    if "evaluation" not in plan.cfg:
        raise UserError(f"{plan.recipe}: the recipe has no evaluation section (see recipes/common/evaluation.py)")
    ev = OmegaConf.to_container(plan.cfg.evaluation, resolve=True)
    if ev.get("metric") == "toy":
        return [f"python tools/toy_report.py {shlex.quote(str(plan.recipe))}"]
    stage = ev["stage"]
    if stage not in plan.cfg.stages:
        raise UserError(f"evaluation.stage={stage!r} is not a stage of run {plan.run_name} "
                        f"(stages: {', '.join(plan.cfg.stages)})")
    sampler = ev["sampler"]
    name = target_ref(plan.cfg.evaluation.sampler).split(":", 1)[1]
    args = [f"{k}={_value(v)}" for k, v in sampler.items() if k not in META_KEYS]
    out = plan.run_dir / stage / "eval" / f"fid{ev['num_samples']}"
    sample = ["python", "tools/sample.py", str(plan.run_dir), "--stage", stage, "--sampler", name, *args,
              "--num", str(ev["num_samples"]), "--out", str(out)]
    if float(ev.get("guidance_scale", 1.0)) != 1.0:
        sample += ["--guidance", str(ev["guidance_scale"])]
    fid = ["python", "tools/fid.py", str(out / "samples.npz"), str(ev["reference"]),
           "--inception-weights", "$INCEPTION_WEIGHTS"]
    if not str(ev["reference"]).endswith(".npz"):  # an image folder: preprocess it like the training data
        fid += ["--reference-resolution", str(training_resolution(plan, stage))]
    return [" ".join(shlex.quote(a) if a != "$INCEPTION_WEIGHTS" else a for a in sample),
            " ".join(shlex.quote(a) if a != "$INCEPTION_WEIGHTS" else a for a in fid)]


def describe(plans: list[RunPlan]) -> str:
    lines = []
    for plan in plans:
        paper = plan.cfg.get("evaluation", {}).get("paper", "")
        lines.append(f"# {plan.run_name}" + (f": {paper}" if paper else ""))
        lines += eval_commands(plan)
    return "\n".join(lines)
