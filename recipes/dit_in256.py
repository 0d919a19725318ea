"""DiT-XL/2 on ImageNet 256x256 (latents 32x32x4): Peebles & Xie 2023, Table 4 — the baseline
MaskDiT is measured against (MaskDiT Table 1).

One stage, ``main``: DiT-XL/2 with learned sigma trained from scratch for 7M steps at global
batch 256 with the improved-DDPM hybrid loss (L_simple + L_vlb), linear betas 1e-4 .. 0.02,
T = 1000, AdamW lr 1e-4 constant, no weight decay, EMA 0.9999, label dropout 0.1, horizontal
flips, fp32 (see recipes/common/dit.py for each setting and the official file it follows).

Data: the ImageNet latent store of the MaskDiT recipes (``paths.imagenet256_latents``: SD-VAE
moments, a fresh latent drawn every step, scale 0.18215, as DiT's ``latent_dist.sample()``).
Two differences from DiT's train.py, which encodes every batch: its flips happen on pixels
before encoding, here on the stored moments (``hflip`` 0.5; the SD VAE is close to
flip-equivariant, not exactly), and it encodes with sd-vae-ft-EMA by default (``--vae ema``:
"choice doesn't affect training") where MaskDiT's store uses ft-MSE; encode a store with the
EMA VAE (``tools/encode_latents.py``) and point ``paths.imagenet256_latents`` at it to match.

Evaluation (DiT ``sample_ddp.py``): 250 ancestral steps with the learned variance (respaced
chain, no x0 clipping), FID-50K against ADM's reference batch. Guided (default): scale 1.5 on
the first 3 latent channels, FID 2.27; unguided: ``evaluation.guidance_scale=1.0``, FID 9.62.

    python tools/launch.py recipes/dit_in256.py paths.imagenet256_latents=/data/in256_latents
    python tools/launch.py recipes/dit_in256.py --estimate --peak-tflops 156 --mfu 0.4   # A100 TF32
"""
from mdreg.config import L

from .common.datasets import latents, paths_of
from .common.dit import dit_xl2, sampler, training
from .common.evaluation import INCEPTION, fid
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=50_000, milestone_every=400_000)  # DiT reports FID every 400k steps
paths = paths_of("imagenet256_latents", "adm_ref_256")
launch = on_gpus(gpus_per_node=8, cpus_per_task=12, timeout_min=48 * 60)

model = dit_xl2(latent_size=32)  # 256 tokens of 2x2x4 latents, 8 output channels
data = dict(dataset=latents("imagenet256_latents"),
            transform=L("transform:latent")(),  # SD VAE moments -> z = mean + std * eps, x 0.18215
            hflip=0.5)

stages = dict(main=training(steps=7_000_000, batch_size=256))

evaluation = fid(stage="main", sampler=sampler(250), num_samples=50_000, reference="${paths.adm_ref_256}",
                 guidance_scale=1.5,
                 metrics=INCEPTION,
                 paper="DiT Table 4: DiT-XL/2-G (cfg 1.50) FID-50K 2.27; DiT-XL/2 9.62 (evaluation.guidance_scale=1.0)",
                 reported=[  # DiT Table 4 = MaskDiT Table 1's DiT-XL/2 rows (7M steps)
                     {"guidance_scale": 1.5, "fid": 2.27, "sfid": 4.60, "is": 278.24, "precision": 0.83,
                      "recall": 0.57},
                     {"guidance_scale": 1.0, "fid": 9.62, "sfid": 6.85, "is": 121.50, "precision": 0.67,
                      "recall": 0.67}])
