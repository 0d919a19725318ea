"""MaskDM appendix D.1, Figure 6: why masked pre-training at 90% diverges, and what fixes it.

CelebA 64x64, MaskDM-S, MDSM (eq. 4) pre-training only, mask ratio fixed at 90%. The
default is the 50%-ratio pre-training row of Table 5 (lr 2e-4, batch 256, linear noise, no
clipping, constant lr, EMA 0.999 every step); each element of the declared ``sweep``
changes one factor, left to right as in Figure 6:

* ``bs128`` ... ``bs2048``: the batch from 128 to 2048 at lr 2e-4 ("still results in the
  model failing to converge");
* ``lr1e-4_bs128``: lr 1e-4 and batch 128 (a stable, slower plateau after 200k steps);
* ``cosine``: cosine noise instead of linear (the fix the paper adopts from sec. 4.3 on);
* ``clip``: gradient clipping at 1.0 (the value of Table 5's later rows);
* ``warmup``: a linear lr warmup starting from 5e-5.

Figure 6 plots FID over pre-training steps, so every run keeps a milestone checkpoint each
10k steps; a point of the curve is ``tools/sample.py RUN --stage pretrain --checkpoint
RUN/pretrain/checkpoints/step_00050000.pt`` then ``tools/fid.py`` (Table 6, sec. 4.2 row:
DDIM-500, eta 1.0, FID-1k against the training set; ``--eval-commands`` prints the final
point's commands).

Open choices (the appendix does not state them): the mask type (patch-wise; Table 1's 90%
row has patch, block and crop cells, patch is the plain one); 200k steps (the horizon the
text describes); the warmup length (5k steps, 5e-5 -> 2e-4, ``warmup_start`` 0.25).

    python tools/launch.py recipes/maskdm_stability_appd1.py paths.celeba=/datasets/celeba
    python tools/launch.py recipes/maskdm_stability_appd1.py --only cosine --cluster slurm
"""
from mdreg.config import L

from .common.datasets import image_folder, paths_of
from .common.evaluation import fid
from .common.maskdm import ddim, masker, noise, pretrain
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=10_000, milestone_every=10_000)
paths = paths_of("celeba")
launch = on_gpus(gpus_per_node=4, timeout_min=24 * 60)

model = L("backbone:maskdm_s")(img_size=64, patch_size=4, in_chans=3)  # Table 4: depth 13, dim 512, 8 heads
data = dict(dataset=image_folder("celeba", resolution=64), transform=L("transform:identity")(), hflip=0.0)

stages = dict(
    pretrain=pretrain(steps=200_000, batch_size=256, lr=2e-4, masker_node=masker("patch", 0.9),
                      noise_kind="linear", ema_every=1),  # Table 5, sec. 4.2 50% "pre" row, at 90%
)

_PAPER = "MaskDM Fig. 6 (appendix D.1), FID-1k curve over pre-training: {}"
evaluation = fid(stage="pretrain", sampler=ddim(500, eta=1.0), num_samples=1000, reference="${paths.celeba}",
                 paper=_PAPER.format("default (50% settings at 90%)"))


def _element(name: str, finding: str, **changes) -> dict:
    return {**changes, "evaluation.paper": _PAPER.format(finding), "_name_": name}


_DIVERGES = "fails to converge"
sweep = [
    _element("default", "the 50% settings diverge at 90%"),
    *[_element(f"bs{batch}", _DIVERGES, **{"stages.pretrain.batch_size": batch}) for batch in (128, 512, 1024, 2048)],
    _element("lr1e-4_bs128", "stable, slower plateau after 200k steps",
             **{"stages.pretrain.optimizer.lr": 1e-4, "stages.pretrain.batch_size": 128}),
    _element("cosine", "cosine noise converges (adopted from sec. 4.3 on)",
             **{"stages.pretrain.objective.schedule": noise("cosine")}),
    _element("clip", "clipping helps convergence", **{"stages.pretrain.grad_clip": 1.0}),
    _element("warmup", "lr warmup helps convergence", **{"stages.pretrain.lr_schedule.warmup_steps": 5_000,
                                                        "stages.pretrain.lr_schedule.warmup_start": 0.25}),
]
