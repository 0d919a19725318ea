"""``python tools/sample.py RUN_DIR [KEY=VALUE ...]``: N images of a trained stage into a folder
(:mod:`mdreg.evaluation.sample_folder` says what is written and how it resumes)."""
from __future__ import annotations

import argparse

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.errors import UserError
from mdreg.evaluation import sample_folder
from mdreg.evaluation.sample_folder import sample_run


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/sample.py", description=sample_folder.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="runs/<recipe>/<run name>")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="sampler arguments, e.g. steps=250 eta=0.8")
    p.add_argument("--stage", default=None, help="stage to sample (default: the last)")
    p.add_argument("--num", type=int, default=50_000)
    p.add_argument("--out", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default=None, help="replace the stage's sampler by this registry name")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--checkpoint", default=None, help="a checkpoint file instead of the stage's last")
    p.add_argument("--device", default="auto")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    args = p.parse_intermixed_args(argv)
    import_plugins_of(args)
    if args.num < 1 or args.batch_size < 1:
        raise UserError("--num and --batch-size must be positive")
    out = sample_run(args.run_dir, args.stage, args.num, args.out, args.batch_size, args.seed, args.sampler,
                     args.overrides, args.guidance, args.checkpoint, args.device)
    print(f"{args.num} samples in {out} (images/, samples.npz, sampling.json)")
    return 0
