"""The ``evaluation`` section: how a recipe's paper number is measured.

``python tools/launch.py RECIPE --eval-commands`` turns it into the ``tools/sample.py`` and
``tools/fid.py`` commands of every run (mdreg/reports/eval_commands.py).

    evaluation = fid(stage="finetune", sampler=ddim(500, eta=1.0), num_samples=1000, reference="${paths.celeba}")

Keys (every FID number should travel with them: DiT #8/#16, U-ViT #14):

* ``stage`` / ``weights``: which stage's final weights are sampled (``ema`` as in both papers);
* ``sampler``: a ``sampler:*`` node (MaskDM Table 6: DDIM steps and eta; MaskDiT: EDM Heun 40 steps);
* ``num_samples``: N of FID-N;
* ``guidance_scale``: classifier-free guidance (1.0 = none; MaskDiT-G uses 1.5);
* ``reference``: an image folder (MaskDM: "the entire training set", sec. 4.1) or a statistics
  file (MaskDiT: ADM's reference batch), usually ``${paths.<name>}``;
* ``paper``: what the paper reports for this run, printed next to the measured number.

A run with two evaluated stages (MaskDiT's two unmasking tunings, MaskDM Table 3's two
fine-tunings) evaluates the other one with an override, which does not rename the run:
``evaluation.stage=unmask_nocfg evaluation.guidance_scale=1.0``.
"""


def fid(stage: str, sampler, num_samples: int, reference: str, guidance_scale: float = 1.0,
        weights: str = "ema", paper: str = "") -> dict:
    return dict(metric="fid", stage=stage, weights=weights, sampler=sampler, num_samples=num_samples,
                guidance_scale=guidance_scale, reference=reference, paper=paper)
