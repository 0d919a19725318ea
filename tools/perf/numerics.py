#!/usr/bin/env python
"""Does the fast path train the same model as the plain path?

    python tools/perf/numerics.py [--model dit_s_2] [--steps 30] [--device cuda]

Builds two trainers from one config — plain (fp32, eager) and fast (bf16 autocast +
torch.compile) — with the same seed, feeds both the same random batches, and prints the
loss of every step and the relative gap. Expected: the first step's losses agree to bf16
precision (~1e-2 relative), and the curves stay within a few percent of each other.
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


from mdreg.benchmark.configs import named_config, prepare  # noqa: E402
from mdreg.benchmark.run import random_batch  # noqa: E402
from mdreg.engine.distributed import DistEnv, pick_device  # noqa: E402
from mdreg.engine.parts import build_parts  # noqa: E402
from mdreg.engine.stage import plan_stage  # noqa: E402
from mdreg.engine.step import (
    train_step,  # noqa: E402
    wrap,  # noqa: E402
)


def losses(cfg, device, steps, precision, compile_mode):
    cfg = copy.deepcopy(cfg)
    cfg.stages.bench.precision = precision
    cfg = prepare(cfg, "bench", None, None if compile_mode == "none" else True, None, True, str(device))
    env = DistEnv(device=device)
    parts = build_parts(cfg, plan_stage(cfg, "bench"), env)
    net, _ = wrap(parts.model, env, cfg.train.compile)
    out = []
    for step in range(steps):
        x, y = random_batch(parts, parts.stage.batch_size, step)
        out.append(float(train_step(parts, net, step, x, y).loss))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="dit_s_2")
    p.add_argument("--objective", default="maskdit")
    p.add_argument("--masker", default="patch")
    p.add_argument("--mask-ratio", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--device", default="auto")
    p.add_argument("--fast-compile", default="default", choices=("none", "default"))
    args = p.parse_args()
    device = pick_device(args.device, 0)
    model = "maskdit" if args.objective == "maskdit" and args.model.startswith("dit_s") else args.model
    model_args = {"hidden_size": 384, "depth": 12, "num_heads": 6, "decoder_hidden_size": 256, "decoder_depth": 2,
                  "decoder_num_heads": 4} if model == "maskdit" else {}
    cfg = named_config(model, args.objective, args.masker, args.mask_ratio, args.batch, "fp32", 32, 4, 1000,
                       model_args)
    plain = losses(cfg, device, args.steps, "fp32", "none")
    fast = losses(cfg, device, args.steps, "bf16", args.fast_compile)
    print(f"{'step':>4s} {'plain fp32':>11s} {'fast bf16+compile':>18s} {'rel gap':>8s}")
    gaps = []
    for i, (a, b) in enumerate(zip(plain, fast)):
        gaps.append(abs(a - b) / abs(a))
        print(f"{i:4d} {a:11.5f} {b:18.5f} {gaps[-1]:8.4f}")
    print(f"first-step gap {gaps[0]:.4f}; max gap {max(gaps):.4f}; mean of last 10: plain "
          f"{sum(plain[-10:]) / 10:.5f} fast {sum(fast[-10:]) / 10:.5f}")


if __name__ == "__main__":
    main()
