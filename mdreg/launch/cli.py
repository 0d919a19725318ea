"""``python tools/launch.py RECIPE [overrides...]``: run a recipe locally (default) or on Slurm.

    python tools/launch.py recipes/quickstart.py                      # train locally
    python tools/launch.py recipes/quickstart.py train.max_steps=50   # Hydra-style overrides
    python tools/launch.py recipes/quickstart.py --dry-run            # print config + plan only
    python tools/launch.py recipes/quickstart.py --sweep stages.pretrain.masker.ratio=0.25,0.5
"""
from __future__ import annotations

import argparse

from mdreg.errors import UserError
from mdreg.registry import import_components

EXECUTORS = ("local", "slurm")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/launch.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="recipe file, e.g. recipes/quickstart.py")
    p.add_argument("overrides", nargs="*", help="key=value, +key=value, ~key, key=a,b (sweep)")
    p.add_argument("--cluster", choices=EXECUTORS, default=None,
                   help="where to run (default: the recipe's launch.cluster, else local)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the plan; run nothing")
    p.add_argument("--sweep", nargs="+", default=[], metavar="KEY=A,B", help="swept keys (cartesian product)")
    p.add_argument("--stages", nargs="+", default=None, metavar="NAME", help="run only these stages")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers components (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of user errors")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    import_components(args.imports)
    if not args.recipe:
        raise UserError("give a recipe file, e.g. python tools/launch.py recipes/quickstart.py")
    from mdreg.launch.plan import build_plans
    from mdreg.launch.report import describe_plans, outputs_summary

    plans = build_plans(args.recipe, args.overrides, args.sweep)
    if args.stages:
        known = [s.name for s in plans[0].stages]
        unknown = [s for s in args.stages if s not in known]
        if unknown:
            raise UserError(f"--stages {' '.join(unknown)}: the recipe's stages are {', '.join(known)}")
    cluster = args.cluster or str(plans[0].cfg.get("launch", {}).get("cluster", "local"))
    if args.dry_run:
        print(describe_plans(plans))
        return 0
    if cluster != "local":
        raise UserError(f"--cluster {cluster}: this build runs recipes locally only (--cluster local)")
    from mdreg.launch.local import LocalExecutor

    executor = LocalExecutor()
    for note in plans[0].notes:
        print(f"note: {note}")
    for plan in plans:
        print(f"== {plan.recipe_name} / {plan.run_name}: stages {', '.join(s.name for s in plan.stages)} "
              f"-> {plan.run_dir}")
        executor.run(plan, args.stages)
        print(outputs_summary(plan))
    return 0
