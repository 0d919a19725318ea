"""The DDPM baseline of MaskDM Table 2 (sec. 4.3): MaskDM-L trained from scratch, FID-30k 12.06.

No pre-training: one stage of DSM (eq. 1) for 900k steps "with identical hyperparameter
settings as those utilized in the fine-tuning stage of the pre-trained MaskDM-L model"
(sec. 4.3): lr 5e-5, batch 16, EMA 0.999 every 10, hflip 0.5, clip 1.0, cosine noise, and
the same Haar-DWT input (sec. 4.1: "also applied to the baseline model for a fair
comparison"). Evaluation as MaskDM-L: DDIM-500, eta 0.8, FID-30k. Cost: 38.3 V100-days.

    python tools/launch.py recipes/ddpm_celebahq256_baseline.py paths.celebahq=/datasets/celebahq
"""
from .maskdm_celebahq256_l import data, evaluation, launch, model, paths, stages, train

stages = dict(train=stages["finetune"])
stages["train"].update(steps=900_000, init_from=None)
evaluation.update(stage="train", paper="MaskDM Table 2, Baseline (900k steps from scratch): FID-30k 12.06, "
                                       "38.3 V100-days", reported=[{"fid": 12.06}])
