"""Evidence, MaskDiT in miniature: masked training + unmasking tuning vs DiT at equal FLOPs and at equal wall-clock.

Claims tested (MaskDiT secs. 4.2 and 4.4): (1) MaskDiT (50% of the patches masked, an
asymmetric encoder-decoder, DSM on the visible patches + lambda x MAE on the masked ones, then a
short unmasking tuning) reaches a given FID in less training compute and time than DiT (Fig. 5,
Fig. 2: a masked forward is 54% of DiT's FLOPs); (2) Table 2b: lambda = 0.1 beats lambda = 0 (the
DSM-only model saturates early) and lambda = 1 (the MAE task takes over).

Here, in pixel space on the 16 px shapes of recipes/common/evidence.py (patch 4: 16 tokens),
unconditional (``num_classes=0``; the shapes' labels are ignored), with tiny models of one size:

* ``backbone:maskdit``: a DiT encoder (width 128, depth 5, 4 heads) on the visible tokens + a
  decoder of 2 DiT blocks, width 64, 4 heads, on all tokens (the paper's 8 x 512 decoder on
  28 x 1152: 5.6% of the encoder's block parameters; here 2 x 64 on 5 x 128: 5%); 1.80M parameters;
* ``backbone:dit``: the same encoder with DiT's final layer, no decoder; 1.58M parameters.

One FLOP budget, BUDGET = 1000 DiT steps at batch 64 (6.46 TFLOPs, ``--estimate``):

* ``maskdit``: ``main`` = 50% masking with MaskDiT's rounding (keep int(16 x 0.5) = 8 tokens,
  ``rounding="keep_floor"``), lambda 0.1, 94% of the budget (1508 steps: a masked step is 62.3%
  of a DiT step, 56.2% of an unmasked MaskDiT step), then ``tune`` = unmasking tuning with the
  cosine-ratio schedule r = 0.5 cos^4(pi/2 i/n) (the paper's choice for sampling without
  guidance) for the other 6% (the paper's 16 of 273 hours; 68 steps);
* ``lambda0`` / ``lambda1``: the same with lambda 0 (no mask token: ``mask_token=False``, as the
  official model at lambda 0) and lambda 1 (Table 2b), tuned with the same lambda;
* ``dit_flops``: DiT, EDM loss on all patches, 1000 steps at batch 64: the same FLOPs;
* ``dit_wall``: DiT for as many steps as take the ``maskdit`` run's training time (main + tune)
  on this machine: WALL_STEPS, from per-step times measured in one process, one arm after the
  other, with tools/bench.py (docs/evidence.md has the command, the times and the machine's
  load). On another machine, measure again and set ``stages.main.steps`` of ``dit_wall``.

Both models share the settings (MaskDiT sec. 4.1 unless said): EDM preconditioning and noise
(P_mean -1.2, P_std 1.2, sigma_data 0.5, which is EDM's own pixel-space setting), AdamW betas
(0.9, 0.999), no weight decay, no clipping, batch 64 for every arm (as Fig. 5 compares at equal
batch), fp32 (CPU). Ours, for a short CPU run: lr 1e-3 (tuning 5e-4: the paper halves it) with
40 warmup steps, EMA 0.99 every step (the paper's 0.9999 averages over 10k steps). Sampling:
EDM Heun with 18 steps (EDM's CIFAR-10 setting, 35 evaluations; the paper's 40 steps cost 2.2x
for 16 px images). Shape metric (256 EMA samples) every 200 DiT steps, 5 times over ``main``,
and at the end of the tuning.

    OMP_NUM_THREADS=1 python tools/launch.py recipes/evidence_maskdit.py train.seed=0,1,2   # 15 runs
    python tools/launch.py recipes/evidence_maskdit.py --estimate                           # FLOPs per arm
    OMP_NUM_THREADS=1 python tools/bench.py --recipe recipes/evidence_maskdit.py --stage main --device cpu \
        --batch 64 --mask-ratio 0.5 0.228 --warmup 20 --windows 5 --window-steps 20        # MaskDiT steps
    OMP_NUM_THREADS=1 python tools/bench.py --model dit --model-arg img_size=16 patch_size=4 in_chans=3 hidden_size=128 \
        depth=5 num_heads=4 num_classes=0 learn_sigma=False --img-size 16 --objective edm --masker none \
        --mask-ratio 0 --precision fp32 --device cpu --batch 64 --warmup 20 --windows 5 --window-steps 20   # DiT steps
    python tools/report.py recipes/evidence_maskdit.py train.seed=0,1,2

Results and what they show: docs/evidence.md.
"""
from mdreg.config import L

from .common.evaluation import shape, shape_metric
from .common.evidence import shapes, steps_for, train_flops
from .common.maskdit import heun, objective, patch_masker
from .common.optim import adamw, warmup
from .common.resources import on_gpus
from .common.train import train

train.update(device="cpu", log_every=50, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=0, cpus_per_task=1, mem_gb=4, timeout_min=60)

_SIZE = dict(img_size=16, patch_size=4, in_chans=3, hidden_size=128, depth=5, num_heads=4, num_classes=0)


def maskdit(mask_token: bool = True):
    return L("backbone:maskdit")(**_SIZE, decoder_hidden_size=64, decoder_depth=2, decoder_num_heads=4,
                                 mask_token=mask_token)


def dit():
    return L("backbone:dit")(**_SIZE, learn_sigma=False)


# fvcore forward GMACs per sample (mdreg.models.flops.forward_gmacs, as --estimate): DiT on 16
# tokens; MaskDiT on 8 visible tokens (50%), and averaged over the 68 steps of the cosine tuning
# (mean ratio 0.229 with keep_floor: 16 - int(16 (1 - r)) hides a token as soon as r > 0).
DIT_GMACS, MASKDIT_MASKED_GMACS, MASKDIT_TUNE_GMACS = 0.01682637, 0.01048576, 0.01492379
BATCH, DIT_STEPS = 64, 1000
BUDGET = train_flops(DIT_GMACS, BATCH, DIT_STEPS)
TUNE_SHARE = 0.06                                   # MaskDiT sec. 4.3: 16 of 273 hours
MAIN_STEPS = steps_for((1 - TUNE_SHARE) * BUDGET, MASKDIT_MASKED_GMACS, BATCH)
TUNE_STEPS = steps_for(TUNE_SHARE * BUDGET, MASKDIT_TUNE_GMACS, BATCH)
# DiT steps in the time MaskDiT's 1508 + 68 steps take, one thread of an idle 2-core machine (tools/bench.py,
# the command above; docs/evidence.md): masked 110.5 ms, tuning 152.6 ms, DiT 147.2 ms per step at batch 64.
WALL_STEPS = round((MAIN_STEPS * 110.46 + TUNE_STEPS * 152.61) / 147.17)   # 1202

model = maskdit()
data = dict(dataset=shapes(), transform=L("transform:identity")(), hflip=0.0)

_sample = dict(every=None, num=36, sampler=heun(18), guidance_scale=1.0)


def _stage(steps: int, lr: float, masker_node, mask_schedule, objective_node, init_from, every):
    return L("stage:train")(
        steps=steps, batch_size=BATCH,
        objective=objective_node,
        masker=masker_node,
        mask_schedule=mask_schedule,
        optimizer=adamw(lr=lr, betas=(0.9, 0.999), weight_decay=0.0),
        lr_schedule=warmup(40),
        grad_clip=None,
        ema=dict(decay=0.99, every=1, start=0),
        precision="fp32",
        init_from=init_from,
        sample=_sample,
        evaluate=shape_metric(every),
    )


def _main(mae_weight: float):
    return _stage(MAIN_STEPS, 1e-3, patch_masker(0.5), L("mask_schedule:constant")(), objective(mae_weight), None,
                  round(MAIN_STEPS / 5))


def _tune(mae_weight: float):
    """Unmasking tuning from ``main``'s raw weights (as recipes/common/maskdit.py), cosine ratio."""
    return _stage(TUNE_STEPS, 5e-4, patch_masker(0.5), L("mask_schedule:cosine")(power=4), objective(mae_weight),
                  dict(stage="main", weights="model"), None)


stages = dict(main=_main(0.1), tune=_tune(0.1))

# the shape metric of the last stage's EMA model (``main`` for the DiT runs): tools/report.py, tools/evaluate.py
evaluation = shape(stage="tune", num_samples=256)
# tools/report.py: every arm against DiT at equal FLOPs, paired by seed, and the training FLOPs to
# shape-FID 200 (declared before the re-run: the old finals were 105-145, lambda 1 242)
report = dict(baseline="dit_flops", threshold=dict(shape_fid=200.0))


def _dit(name: str, steps: int) -> dict:
    return {"model": dit(), "~stages.tune": None,
            "stages.main": _stage(steps, 1e-3, L("masker:none")(), None, L("objective:edm")(schedule=L(
                "noise_schedule:edm")()), None, 200),
            "evaluation.stage": "main", "_name_": name}


def _lambda(value: float) -> dict:
    return {"model": maskdit(mask_token=value > 0), "stages.main": _main(value), "stages.tune": _tune(value),
            "_name_": f"lambda{value:g}"}


sweep = [
    _dit("dit_flops", DIT_STEPS),
    _dit("dit_wall", WALL_STEPS),
    {"_name_": "maskdit"},
    _lambda(0.0),
    _lambda(1.0),
]
