"""The ``evaluation`` section: the paper's evaluation protocol, pinned in the recipe.

``python tools/evaluate.py RUN_DIR`` samples and scores it as one resumable job (locally, or
``--cluster slurm`` after the training job; ``tools/launch.py RECIPE --evaluate`` does it
after training); ``python tools/report.py RECIPE`` puts the results beside ``reported``;
``python tools/launch.py RECIPE --eval-commands`` prints the equivalent tools/sample.py +
tools/fid.py commands. mdreg/evaluation/protocol.py checks the section (docs/evaluation.md).

    evaluation = fid(stage="finetune", sampler=ddim(500, eta=1.0), num_samples=1000, reference="${paths.celeba}",
                     reported=[dict(fid=6.51)])

Keys (every FID number should travel with them: DiT #8/#16, U-ViT #14):

* ``stage`` / ``weights``: which stage's final weights are sampled (``ema`` as in both papers);
* ``sampler``: a ``sampler:*`` node (MaskDM Table 6: DDIM steps and eta; MaskDiT: EDM Heun 40 steps);
* ``num_samples``: N of FID-N, or a list of them (one sampling, each N scored on its first N);
* ``guidance_scale``: classifier-free guidance (1.0 = none; MaskDiT-G uses 1.5);
* ``seed``: the sampling seed (batch b is seeded by (seed, b): any machine draws the same images);
* ``reference``: an image folder (MaskDM: "the entire training set", sec. 4.1) or a statistics
  file (MaskDiT: ADM's reference batch), usually ``${paths.<name>}``;
* ``metrics``: what is computed (MaskDiT Table 1: fid, sfid, is, precision, recall);
* ``paper``: the paper's row in words (docs/recipes.md quotes it);
* ``reported``: the paper's numbers per metric, each entry optionally conditioned on the
  protocol (``stage``, ``guidance_scale``, ``num_samples``, ``weights``, ``seed``) or on the
  checkpoint's training ``step`` (MaskDiT Table 2: FID at 400k and 800k steps).

A run with two evaluated stages (MaskDiT's two unmasking tunings, MaskDM Table 3's two
fine-tunings) evaluates the other one with an override, which does not rename the run and
picks the other ``reported`` entry: ``evaluation.stage=unmask_nocfg evaluation.guidance_scale=1.0``.

CPU-scale recipes use ``shape(...)`` (the download-free shape metric of the synthetic shapes
data) or the toys' ``metric: toy`` (recipes/common/toy.py).
"""
from mdreg.config import L

INCEPTION = ["fid", "sfid", "is", "precision", "recall"]  # MaskDiT Table 1 / DiT Table 4 columns (ADM's suite)


def fid(stage: str, sampler, num_samples, reference: str, guidance_scale: float = 1.0, weights: str = "ema",
        paper: str = "", metrics=("fid",), reported=None, seed: int = 0) -> dict:
    """FID (and the other Inception metrics in ``metrics``) of ``num_samples`` samples of ``stage``."""
    return dict(metric="fid", stage=stage, weights=weights, sampler=sampler, num_samples=num_samples,
                guidance_scale=guidance_scale, seed=seed, reference=reference, metrics=list(metrics), paper=paper,
                reported=list(reported or []))


def shape_metric(every: int | None = None, num: int = 256):
    """The shape metric as a stage's ``evaluate``: ``num`` fresh EMA samples every ``every`` steps
    and at the end of the stage (None: at the end only), logged to metrics.jsonl and tensorboard
    under ``eval/`` (metric:shape, mdreg/evaluation/shape_metric.py)."""
    return L("metric:shape")(_partial_=True, num=num, every=every)


def shape(stage: str, num_samples=256, sampler=None, guidance_scale=None, seed: int = 0,
          metrics=("shape_fid", "shape_fid_floor", "confident", "class_freq_gap")) -> dict:
    """The shape metric (mdreg/evaluation/shape_metric.py) of ``num_samples`` samples of a stage
    trained on ``dataset:shapes``; ``sampler``/``guidance_scale`` null: the stage's own."""
    return dict(metric="shape", stage=stage, weights="ema", sampler=sampler, num_samples=num_samples,
                guidance_scale=guidance_scale, seed=seed, metrics=list(metrics), paper="", reported=[])
