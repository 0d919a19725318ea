"""MaskDiT Table 2: ablations on ImageNet 256x256 (sec. 4.4), 400k steps at batch 1024 each.

Defaults (Table 2 caption): our asymmetric encoder-decoder, 50% masking, MAE coefficient
lambda = 0, DSM on the unmasked tokens only; FID without guidance after 400k steps. All
other settings are the main recipe's (recipes/maskdit_in256.py). The declared ``sweep``
holds every distinct run of the three sub-tables; a run shared by several cells appears
once (``ours_m50`` is the default: Table 2a "Our backbone, mask 50%", 2b "lambda = 0" and
2c "DSM on unmasked tokens, lambda = 0", all 12.31):

* (a) mask 0 / 50 / 75% x DiT backbone (``backbone:dit_xl_2``: masked tokens are dropped
  before its blocks, i.e. the DiT encoder alone) vs ours;
* (b) lambda in {0.01, 0.1, 1.0}; the paper also reports these at 800k steps, e.g.
  ``--only lambda0.1 stages.main.steps=800000`` (the run name records the change);
* (c) DSM on all tokens with lambda 0 and 0.1 (``dsm_on=full``).

No unmasking tuning: the ablations are evaluated straight after masked training.

Mask token: the official model has one only when the MAE loss is on (lambda > 0); at lambda = 0
masked positions enter the decoder as zeros. So the default model here is built with
``mask_token=False`` and the lambda > 0 runs switch it back on (``model.mask_token``).

    python tools/launch.py recipes/maskdit_in256_table2.py --only ours_m50,dit_m50
    python tools/launch.py --diff recipes/maskdit_in256_table2.py@ours_m50 recipes/maskdit_in256_table2.py@dit_m50
"""
from .common.evaluation import fid
from .common.maskdit import dit_xl2, heun, masked_training, maskdit_xl2
from .maskdit_in256 import data, launch, paths, train

model = maskdit_xl2(latent_size=32, mask_token=False)  # lambda = 0 by default: no mask token, zeros (see above)

stages = dict(main=masked_training(steps=400_000, batch_size=1024, ratio=0.5, mae_weight=0.0, dsm_on="unmasked"))

evaluation = fid(stage="main", sampler=heun(40), num_samples=50_000, reference="${paths.adm_ref_256}",
                 guidance_scale=1.0, paper="MaskDiT Table 2a/2b/2c, default (ours, 50%, lambda 0, unmasked): FID 12.31",
                 reported=[{"step": 400_000, "fid": 12.31}, {"step": 800_000, "fid": 12.42}])
# tools/report.py compares every cell with unmasked DiT, paired by seed (docs/reports.md)
report = dict(baseline="dit_m0")


def _run(name: str, paper: str, fid400k: float, fid800k: float | None = None, **changes) -> dict:
    """A Table 2 cell: its settings, the paper's words and FID at 400k (and 800k) steps of ``main``."""
    reported = [{"step": 400_000, "fid": fid400k}] + ([{"step": 800_000, "fid": fid800k}] if fid800k else [])
    return {**changes, "evaluation.paper": f"MaskDiT Table 2{paper}", "evaluation.reported": reported, "_name_": name}


sweep = [
    _run("dit_m0", "a, DiT backbone, mask 0%: FID 14.70", 14.70, model=dit_xl2(32),
         **{"stages.main.masker.ratio": 0.0}),
    _run("dit_m50", "a, DiT backbone, mask 50%: FID 24.58", 24.58, model=dit_xl2(32)),
    _run("dit_m75", "a, DiT backbone, mask 75%: FID 107.55", 107.55, model=dit_xl2(32),
         **{"stages.main.masker.ratio": 0.75}),
    _run("ours_m0", "a, our backbone, mask 0%: FID 13.71", 13.71, **{"stages.main.masker.ratio": 0.0}),
    _run("ours_m50", "a/2b/2c, our backbone, mask 50%, lambda 0, DSM on unmasked: FID 12.31 (400k), 12.42 (800k)",
         12.31, 12.42),
    _run("ours_m75", "a, our backbone, mask 75%: FID 121.16", 121.16, **{"stages.main.masker.ratio": 0.75}),
    _run("lambda0.01", "b, lambda 0.01: FID 13.76 (400k), 12.93 (800k)", 13.76, 12.93,
         **{"stages.main.objective.mae_weight": 0.01, "model.mask_token": True}),
    _run("lambda0.1", "b/2c, lambda 0.1, DSM on unmasked: FID 8.87 (400k), 7.19 (800k)", 8.87, 7.19,
         **{"stages.main.objective.mae_weight": 0.1, "model.mask_token": True}),
    _run("lambda1.0", "b, lambda 1.0: FID 9.76 (400k), 12.74 (800k)", 9.76, 12.74,
         **{"stages.main.objective.mae_weight": 1.0, "model.mask_token": True}),
    _run("full_lambda0", "c, DSM on full tokens, lambda 0: FID 10.59", 10.59,
         **{"stages.main.objective.dsm_on": "full"}),
    _run("full_lambda0.1", "c, DSM on full tokens, lambda 0.1: FID 9.72", 9.72,
         **{"stages.main.objective.dsm_on": "full", "stages.main.objective.mae_weight": 0.1,
            "model.mask_token": True}),
]
