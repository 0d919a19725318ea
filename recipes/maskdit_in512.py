"""MaskDiT on ImageNet 512x512 (latents 64x64x4, 1024 tokens of MaskDiT-XL/2).

The MaskDiT paper (this version) reports no 512px experiment, so this recipe follows the
official repository's ImageNet-512 configs (configs/{train,finetune}/imagenet512-latent.yaml
and scripts/*_latent512.sh in Anima-Lab/MaskDiT, read for this purpose):

* ``main``: as at 256px — 50% patch masking, lambda 0.1, lr 1e-4 constant, no weight decay,
  EMA 0.9999, label dropout 0.1, mixed precision, no flips — at global batch 1024
  (32 per GPU on 4 nodes x 8 GPUs), up to 2M steps (their released fine-tuning started from
  the 1.05M-step checkpoint: ``stages.main.steps=1050000`` reproduces that schedule);
* ``unmask``: ONE unmasking tuning, zero-ratio schedule (no masking), 50k steps, lr 5e-5,
  fp32 + TF32, global batch 512 (16 per GPU x 32);
* evaluation: EDM Heun 40 steps, CFG 1.5 (the 256px setting; the configs do not fix a scale),
  FID-50K against ADM's 512px reference batch (``paths.adm_ref_512``).

    python tools/launch.py recipes/maskdit_in512.py paths.imagenet512_latents=/data/in512_latents --cluster slurm
"""
from .common.datasets import latents, paths_of
from .common.resources import on_gpus
from .maskdit_in256 import data, evaluation, model, stages, train

paths = paths_of("imagenet512_latents", "adm_ref_512")
launch = on_gpus(gpus_per_node=8, nodes=4, cpus_per_task=12, timeout_min=48 * 60)

model["img_size"] = 64  # 512 / 8
data["dataset"] = latents("imagenet512_latents")
stages = dict(main=stages["main"], unmask=stages["unmask_cfg"])
stages["unmask"].steps = 50_000
evaluation.update(stage="unmask", reference="${paths.adm_ref_512}",
                  paper="not reported in the MaskDiT paper (official repository setting)", reported=[])
