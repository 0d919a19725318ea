"""MaskDiT on ImageNet 256x256 (latents 32x32x4): MaskDiT sec. 4.1/4.3, Table 1.

Stages (one run directory; ``init_from`` makes them a tree, not a chain):

1. ``main``: masked training, 2M steps at global batch 1024, 50% patch masking, DSM on
   the unmasked tokens + 0.1 x MAE (eq. 8), lr 1e-4 constant, no weight decay, no clipping,
   EMA 0.9999 every step, label dropout 0.1, bf16 mixed precision (sec. 4.1);
2. ``unmask_cfg``: unmasking tuning with the ZERO-ratio schedule for 75k steps, from
   ``main`` — for classifier-free guidance (MaskDiT-G, FID-50K 2.28 at w = 1.5, sec. 4.3);
3. ``unmask_nocfg``: unmasking tuning with the COSINE-ratio schedule r = 0.5 cos^4(pi/2 i/n)
   for 37.5k steps, also from ``main`` (siblings: it does not see ``unmask_cfg``'s weights)
   — for sampling without guidance (MaskDiT, FID-50K 5.69, sec. 4.3 and appendix 6.5).

Both tunings: lr 5e-5, full precision (fp32 + TF32), batch 512 (see recipes/common/maskdit.py).
Locally the stages run in the declared order; on Slurm each tuning waits only for ``main``.
One tuning alone: ``--stages main unmask_cfg``.

Evaluation (sec. 4.1, appendix 6.1): EDM Heun 40 steps, FID-50K against ADM's reference
batch (``paths.adm_ref_256``, VIRTUAL_imagenet256_labeled.npz from the ADM repository).
Guided (default): ``unmask_cfg`` at w = 1.5. Unguided: ``evaluation.stage=unmask_nocfg
evaluation.guidance_scale=1.0``. Paper cost: 257 + 16 hours on 8 A100s (sec. 4.3).

    python tools/launch.py recipes/maskdit_in256.py paths.imagenet256_latents=/data/in256_latents
    python tools/launch.py recipes/maskdit_in256.py --estimate --peak-tflops 312 --mfu 0.4   # A100 bf16
"""
from mdreg.config import L

from .common.datasets import latents, paths_of
from .common.evaluation import INCEPTION, fid
from .common.maskdit import heun, masked_training, maskdit_xl2, unmasking_tuning
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=25_000, milestone_every=100_000)
paths = paths_of("imagenet256_latents", "adm_ref_256")
launch = on_gpus(gpus_per_node=8, cpus_per_task=12, timeout_min=48 * 60)

model = maskdit_xl2(latent_size=32)  # 256 tokens of 2x2x4 latents
data = dict(dataset=latents("imagenet256_latents"),
            transform=L("transform:latent")(),  # SD VAE ft-MSE moments -> z = mean + std * eps, x 0.18215
            hflip=0.0)  # "we do not use any data augmentation" (sec. 4.1)

stages = dict(
    main=masked_training(steps=2_000_000, batch_size=1024, ratio=0.5, mae_weight=0.1),
    unmask_cfg=unmasking_tuning(L("mask_schedule:zero")(), steps=75_000, parent="main"),
    unmask_nocfg=unmasking_tuning(L("mask_schedule:cosine")(power=4), steps=37_500, parent="main",
                                  guidance_scale=1.0),
)

evaluation = fid(stage="unmask_cfg", sampler=heun(40), num_samples=50_000, reference="${paths.adm_ref_256}",
                 guidance_scale=1.5,
                 metrics=INCEPTION,
                 paper="MaskDiT Table 1: MaskDiT-G FID-50K 2.28 (unmask_cfg, w=1.5); MaskDiT 5.69 "
                       "(evaluation.stage=unmask_nocfg evaluation.guidance_scale=1.0)",
                 reported=[  # MaskDiT Table 1 (FID-50K, ADM's suite)
                     {"stage": "unmask_cfg", "guidance_scale": 1.5, "fid": 2.28, "sfid": 5.67, "is": 276.56,
                      "precision": 0.80, "recall": 0.61},
                     {"stage": "unmask_nocfg", "guidance_scale": 1.0, "fid": 5.69, "sfid": 10.34, "is": 177.99,
                      "precision": 0.74, "recall": 0.60},
                     # sec. 4.3 / 6.5: main without unmasking tuning, no guidance (1.2M and 2M steps)
                     {"stage": "main", "guidance_scale": 1.0, "step": 1_200_000, "fid": 6.59},
                     {"stage": "main", "guidance_scale": 1.0, "step": 2_000_000, "fid": 5.95}])
