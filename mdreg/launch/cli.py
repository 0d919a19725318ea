"""``python tools/launch.py RECIPE [overrides...]``: run a recipe locally (default) or on Slurm.

    python tools/launch.py recipes/quickstart.py                      # train locally
    python tools/launch.py recipes/quickstart.py train.max_steps=50   # Hydra-style overrides
    python tools/launch.py recipes/quickstart.py --dry-run            # print config + plan only
    python tools/launch.py recipes/quickstart.py --sweep stages.pretrain.masker.ratio=0.25,0.5
    python tools/launch.py recipes/quickstart.py --cluster slurm --gpus-per-node 8 --time 24:00:00
    python tools/launch.py recipes/quickstart.py --cluster slurm --dry-run   # the sbatch scripts
    python tools/launch.py --status runs/quickstart/default           # the jobs of a run
"""
from __future__ import annotations

import argparse

from mdreg.errors import UserError
from mdreg.launch.slurm_resources import CLUSTERS, add_slurm_arguments, cluster_of, flag_values, slurm_resources
from mdreg.registry import import_components


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/launch.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="recipe file, e.g. recipes/quickstart.py")
    p.add_argument("overrides", nargs="*", help="key=value, +key=value, ~key, key=a,b (sweep)")
    p.add_argument("--cluster", choices=CLUSTERS, default=None,
                   help="where to run (default: the recipe's launch.cluster, else local)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and the plan (with --cluster slurm: the sbatch scripts and "
                        "the dependency graph); run and submit nothing")
    p.add_argument("--sweep", nargs="+", default=[], metavar="KEY=A,B", help="swept keys (cartesian product)")
    p.add_argument("--stages", nargs="+", default=None, metavar="NAME", help="run only these stages")
    p.add_argument("--single-job", action="store_true", help="slurm: run all stages in one job (default: one "
                                                             "job per stage, chained with afterok)")
    p.add_argument("--wait", action="store_true", help="slurm: block until the jobs end and report their states")
    p.add_argument("--status", nargs="+", metavar="RUN_DIR", default=None,
                   help="show the Slurm jobs of these run directories (or recipe folders) and exit; "
                        "exit status 0: all completed, 1: some failed or were cancelled, 3: some still queued "
                        "or running")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers components (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of user errors")
    add_slurm_arguments(p)
    return p


def show_status(paths: list[str], wait: bool) -> int:
    """Print the status of the jobs at ``paths``; 0 if all completed, 1 if any failed, 3 if any still run."""
    from pathlib import Path

    from mdreg.launch import status

    if wait:
        ids = [j.job_id for p in paths for run in status.run_dirs_under(Path(p))
               for j in status.latest_jobs(run)]
        status.wait(ids)
    states = []
    for path in paths:
        text, found = status.report(Path(path))
        print(text)
        states += found
    if all(s.state == "COMPLETED" for s in states):
        return 0
    return 1 if all(s.ended for s in states) else 3


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # overrides may come after flags
    if args.status:
        return show_status(args.status, args.wait)
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
    cluster = args.cluster or cluster_of(plans[0].cfg)
    slurm_resources(plans[0].cfg)  # a typo in launch.slurm is reported even for a local run
    if cluster == "slurm":
        return submit_slurm(args, plans)
    if args.dry_run:
        print(describe_plans(plans))
        return 0
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


def submit_slurm(args: argparse.Namespace, plans) -> int:
    from mdreg.launch.report import describe_plans
    from mdreg.launch.slurm import SlurmExecutor, submission_summary

    executor = SlurmExecutor(flag_values(args), single_job=args.single_job)
    if args.dry_run:
        print(describe_plans(plans, show_config=False))
        print(executor.dry_run(plans, args.stages))
        return 0
    for note in plans[0].notes:
        print(f"note: {note}")
    groups = executor.submit(plans, args.stages)
    print(submission_summary(groups, plans))
    if not args.wait:
        return 0
    return show_status([str(p.run_dir) for p in plans], wait=True)
