"""One optimizer step's arithmetic: gradient accumulation, precision modes, clipping, lr."""
from __future__ import annotations

import functools
import math

import pytest
import torch

from mdreg.engine.optim import build_optimizer, device_kwargs
from mdreg.engine.optim import EMA
from mdreg.engine.distributed import configure_tf32
from mdreg.engine.optim import Precision
from mdreg.engine.stage import micro_batch_size
from mdreg.engine.step import set_lr
from mdreg.errors import ConfigError
from tests.conftest import final_state, make_trainer


def test_accumulation_equals_one_big_batch(recipe_factory):
    """2 micro-batches of 4 give the update of one batch of 8 (deterministic objective, so
    only the accumulation arithmetic is compared: loss/accum scaling and summed grads).
    Plain SGD without clipping, because Adam and clipping would hide a wrong gradient scale."""
    states = []
    for accum in (1, 2):
        trainer = make_trainer(recipe_factory(objective="test_deterministic", grad_accum=accum, steps=3, grad_clip=None,
                                              optimizer="L(torch.optim.SGD)(_partial_=True, lr=0.5)"),
                               [f"stages.main.grad_accum={accum}"])
        trainer.fit()
        states.append(final_state(trainer))
    for key in states[0]:
        torch.testing.assert_close(states[1][key], states[0][key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_checkpoints_the_scaler(recipe_factory, precision):
    trainer = make_trainer(recipe_factory(precision=precision, steps=4, ckpt_every=2))
    result = trainer.fit()
    assert result["complete"] and torch.isfinite(torch.tensor(result["loss"]))
    assert all(p.dtype == torch.float32 for p in trainer.parts.model.parameters())  # master weights stay fp32
    state = torch.load(trainer.last_good, weights_only=True)
    assert state["scaler"] == trainer.parts.precision.scaler.state_dict()
    if precision == "fp16":
        assert trainer.parts.precision.scaler.is_enabled() and state["scaler"]["scale"] > 0
    else:
        assert not trainer.parts.precision.scaler.is_enabled()


def test_autocast_dtypes():
    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 4)
    for mode, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with Precision(mode, cpu).autocast():
            assert layer(torch.randn(2, 4)).dtype == dtype
    with pytest.raises(ValueError):
        Precision("fp8", cpu)


def test_grad_clip_bounds_the_update_norm(recipe_factory):
    """With SGD at lr 1 the update IS the clipped gradient: its norm must be exactly the clip."""
    trainer = make_trainer(recipe_factory(grad_clip=1e-3, steps=1, optimizer="L(torch.optim.SGD)(_partial_=True, lr=1.0)"),
                           ["stages.main.lr_schedule.warmup_steps=0"])
    x, y = next(iter(trainer.loader()))
    before = [p.detach().clone() for p in trainer.parts.model.parameters()]
    grad_norm = trainer.train_step(x, y).grad_norm
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(trainer.parts.model.parameters(), before)])
    assert float(grad_norm) > 1e-2  # the pre-clip norm is what gets logged
    assert float(update.norm()) == pytest.approx(1e-3, rel=1e-4)


def test_tf32_switch_sets_and_clears_the_cuda_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        configure_tf32(True, torch.device("cuda"))
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        configure_tf32(False, torch.device("cuda"))
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        configure_tf32(True, torch.device("cpu"))  # no effect off CUDA
        assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_ema_decay_every_and_start():
    """MaskDM Table 5's "0.999 every 10": updates only on multiples of ``every``; until
    ``start`` the average copies the weights."""
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.5, every=2, start=2)
    for step, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], start=1):
        model.weight.data.fill_(value)
        ema.update(model, step)
        if step == 1:
            continue  # odd step: no update, the average still holds the initial weight
        expected = {2: 2.0, 3: 2.0, 4: 3.0, 5: 3.0, 6: 4.5}[step]  # copy at 2 (<= start), then lerp by 0.5
        assert float(ema.model.weight) == pytest.approx(expected), step


def test_fused_adamw_on_cuda_and_cpu_unless_the_recipe_chose():
    adamw = functools.partial(torch.optim.AdamW, lr=1e-3)
    assert device_kwargs(adamw, torch.device("cuda", 0)) == {"fused": True}
    assert device_kwargs(functools.partial(torch.optim.Adam, lr=1e-3), torch.device("cuda")) == {"fused": True}
    assert device_kwargs(adamw, torch.device("cpu")) == {"fused": True}
    assert device_kwargs(adamw, torch.device("mps")) == {}
    assert device_kwargs(functools.partial(torch.optim.AdamW, lr=1e-3, fused=False), torch.device("cuda")) == {}
    assert device_kwargs(functools.partial(torch.optim.AdamW, foreach=True), torch.device("cuda")) == {}
    assert device_kwargs(functools.partial(torch.optim.SGD, lr=0.1), torch.device("cuda")) == {}
    opt = build_optimizer(None, [torch.nn.Parameter(torch.zeros(2))], torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == 1e-4
    assert opt.param_groups[0]["fused"] is True


def test_global_batch_must_split_over_world_and_accumulation(recipe_factory):
    trainer = make_trainer(recipe_factory(batch_size=12, grad_accum=2))
    assert trainer.parts.micro_batch == 6
    assert micro_batch_size(12, 2, 3, "main") == 2
    with pytest.raises(ConfigError, match=r"stages\.main\.batch_size=12 .* world size 4 x stages\.main\.grad_accum 2"):
        micro_batch_size(12, 2, 4, "main")


def test_warmup_then_cosine_lr(recipe_factory):
    trainer = make_trainer(recipe_factory(steps=10), ["stages.main.lr_schedule=cosine",
                                                      "stages.main.lr_schedule.warmup_steps=2"])
    lrs = [set_lr(trainer.parts, s) for s in range(10)]
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] < 1e-4


def test_one_cosine_over_two_stages():
    """offset/total: a 6-step fine-tuning that continues a 4-step pre-training's cosine has the factors of
    steps 4..9 of one 10-step schedule (warmup 2), not a restarted cosine."""
    from mdreg.engine.optim import WarmupCosine

    whole = [WarmupCosine(2)(s, 10) for s in range(10)]
    first = [WarmupCosine(2, total=10)(s, 4) for s in range(4)]
    second = [WarmupCosine(2, offset=4, total=10)(s, 6) for s in range(6)]
    assert first + second == pytest.approx(whole)
    assert second[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))    # step 4: 2 of 8 decay steps
    assert WarmupCosine(2, offset=4)(0, 6) == pytest.approx(second[0])            # total = offset + the stage's
    assert WarmupCosine(2)(0, 6) != pytest.approx(second[0])                       # a restart warms up again
    with pytest.raises(ValueError, match="total > offset"):
        WarmupCosine(offset=5, total=5)
