"""Quickstart: a small MaskDM on mdreg's own synthetic shapes, in two stages, on a CPU.

1. ``pretrain``: masked pre-training, 50% patch-wise masking, MDSM loss (MaskDM eq. 4);
2. ``finetune``: denoising fine-tuning on all patches, DSM loss (eq. 1), initialised from
   the pre-training's EMA weights.

At the end of fine-tuning the download-free shape metric (256 EMA samples, DDIM-50 with
maskdm's sampling convention: x0 clipped, the network's own epsilon in the update) is logged
to metrics.jsonl and tensorboard (``eval/shape_fid``, ``eval/confident``, ...). Pre-training
ends with its sample grid only: MaskDM scores the fine-tuned model, and the pre-trained one's
score (shape-FID ~290) took 7 s of a 2-minute budget to say that it is not a generator yet
(``stages.pretrain.evaluate="${stages.finetune.evaluate}"`` brings it back).

    python tools/launch.py recipes/quickstart.py                    # about 2 min on 2 idle cores
    python tools/launch.py recipes/quickstart.py train.max_steps=50 # a shorter look
    python tools/launch.py recipes/quickstart.py --cluster slurm    # as Slurm jobs (pretrain -> finetune)
    python tools/evaluate.py runs/quickstart/default                # shape-FID of 256 fine-tuned samples

What to expect, measured (docs/evidence.md, "The quickstart"): the final grid shows one object
per cell in the data's colours and sizes, blocky at the model's 4-pixel patch scale, often on a
background tinted towards the object's colour; few outlines are recognisable. Shape-FID
~150-190 (183.1 at seed 0; real-vs-real floor 6.5), ~70% of samples confidently classified. That is what 7.2
TFLOPs buy this architecture: trained on one GPU for 20k fine-tuning steps, this patch-4 model
plateaus at shape-FID ~100 after 5k steps (lr schedule and EMA do not move it); with patch 2
(64 tokens) it reaches 32 after 15k steps, 60x this run's FLOPs (``--estimate``). Settings
tried within the CPU budget (batch 16 or 32 with 2-4x the steps, v-prediction, patch 2 at width
96, a 3x3 conv after unpatchify, linear noise, cosine lr, DDIM eta 0 or 100 steps) moved
shape-FID by less than the +-20 between seeds or made it worse (v-prediction: the data's dark
backgrounds, but shape-FID 224), so the recipe keeps its settings.
"""
from mdreg.config import L

from .common.evaluation import shape, shape_metric
from .common.launch import launch
from .common.maskdm import ddim
from .common.optim import adamw, warmup
from .common.train import train

train.update(ckpt_every=100, log_every=20)
launch["slurm"].update(cpus_per_task=2, mem_gb=4, timeout_min=60)  # a CPU job; see recipes/common/launch.py

model = L("backbone:uvit")(img_size=16, patch_size=4, in_chans=3, embed_dim=128, depth=5, num_heads=4,
                          pos_init="sincos")

data = dict(
    dataset=L("dataset:shapes")(num_images=4096, resolution=16, seed=0, max_shapes=1, size_range=(0.25, 0.42)),
    transform=L("transform:identity")(),
    hflip=0.0,
)

_schedule = L("noise_schedule:ddpm_cosine")(num_timesteps=1000)
_sample = dict(every=None, num=36, sampler=ddim(50, eta=1.0), guidance_scale=1.0)

stages = dict(
    pretrain=L("stage:train")(
        steps=800, batch_size=64,
        objective=L("objective:mdsm")(schedule=_schedule),
        masker=L("masker:patch")(ratio=0.5),
        optimizer=adamw(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.03),
        lr_schedule=warmup(40),
        grad_clip=1.0,
        ema=dict(decay=0.99, every=1, start=0),
        sample=_sample,
        evaluate=None,  # see the docstring: the fine-tuned model is the one scored
    ),
    finetune=L("stage:train")(
        steps=600, batch_size=64,
        objective=L("objective:dsm")(schedule=_schedule),
        masker=L("masker:none")(),
        optimizer=adamw(lr=5e-4, betas=(0.9, 0.99), weight_decay=0.03),
        lr_schedule=warmup(20),
        grad_clip=1.0,
        ema=dict(decay=0.99, every=1, start=0),
        init_from="previous",
        sample=_sample,
        evaluate=shape_metric(),
    ),
)

# the download-free shape metric (mdreg/evaluation/shape_metric.py) of the fine-tuned EMA model, DDIM-50
evaluation = shape(stage="finetune", num_samples=256, sampler=_sample["sampler"])
