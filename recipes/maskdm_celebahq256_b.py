"""MaskDM-B on CelebA-HQ 256x256 in the Haar-DWT domain (MaskDM sec. 4.3, Table 2: FID-30k 10.77).

The MaskDM-L recipe with the Table 5 MaskDM-B rows: ``backbone:maskdm_b_dwt`` (Table 4:
depth 12, dim 768, 12 heads), pre-training 150k steps at lr 1e-4 / batch 64, fine-tuning
550k steps at lr 1e-4 / batch 32; the rest (70% 4x4 block masking, EMA 0.999 every 10,
hflip 0.5, clip 1.0, cosine noise, DDIM-500 eta 0.8 FID-30k) is shared.
Cost in the paper: 2.8 + 24.3 V100-days (Table 6).

    python tools/launch.py recipes/maskdm_celebahq256_b.py paths.celebahq=/datasets/celebahq
    python tools/launch.py --diff recipes/maskdm_celebahq256_l.py recipes/maskdm_celebahq256_b.py
"""
from .maskdm_celebahq256_l import data, evaluation, launch, model, paths, stages, train

model["_target_"] = "backbone:maskdm_b_dwt"
stages["pretrain"].update(steps=150_000, batch_size=64)
stages["pretrain"].optimizer.lr = 1e-4
stages["finetune"].update(batch_size=32)
stages["finetune"].optimizer.lr = 1e-4
evaluation["paper"] = "MaskDM Table 2, MaskDM-B (150k pre + 550k tuning): FID-30k 10.77, 2.8 + 24.3 V100-days"
evaluation["reported"] = [{"fid": 10.77}]
