"""``python tools/launch.py RECIPE [overrides...]``: run a recipe locally (default) or on Slurm.

    python tools/launch.py recipes/quickstart.py                      # train locally
    python tools/launch.py recipes/quickstart.py train.max_steps=50   # Hydra-style overrides
    python tools/launch.py recipes/quickstart.py --dry-run            # print config + plan only
    python tools/launch.py recipes/quickstart.py --sweep stages.pretrain.masker.ratio=0.25,0.5
    python tools/launch.py recipes/quickstart.py --cluster slurm --gpus-per-node 8 --time 24:00:00
    python tools/launch.py recipes/quickstart.py --cluster slurm --dry-run   # the sbatch scripts
    python tools/launch.py --status runs/quickstart/default           # the jobs of a run
    python tools/launch.py recipes/maskdm_celeba64_table1.py --only m50_block2   # one declared sweep element
    python tools/launch.py recipes/maskdit_in256.py --estimate --peak-tflops 989 --mfu 0.4
    python tools/launch.py --diff recipes/maskdm_celebahq256_b.py recipes/maskdm_celebahq256_l.py
    python tools/launch.py --diff runs/quickstart/default runs/quickstart/max_steps=50   # two runs: config + provenance
    python tools/launch.py recipes/quickstart.py --evaluate            # train, then tools/evaluate.py the protocol
"""
from __future__ import annotations

import argparse
import sys

from mdreg.errors import UserError
from mdreg.launch.slurm.flags import add_slurm_arguments, flag_values
from mdreg.launch.slurm.settings import CLUSTERS, cluster_of, slurm_settings
from mdreg.plugins import import_entry_points


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
    p.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                   type=lambda text: [n for n in text.split(",") if n],
                   help="run only these elements (_name_) of the recipe's declared sweep, comma-separated")
    p.add_argument("--estimate", action="store_true",
                   help="print FLOPs per step, total PFLOPs and GPU-hours per stage; run nothing")
    p.add_argument("--peak-tflops", type=float, default=791.0, help="--estimate: the GPU's peak TFLOP/s (791)")
    p.add_argument("--mfu", type=float, default=0.45, help="--estimate: model FLOPs utilisation (0.45)")
    p.add_argument("--images-per-s", type=float, default=None,
                   help="--estimate: measured training images/s per GPU (instead of peak x MFU)")
    p.add_argument("--eval-commands", action="store_true",
                   help="print the sampling and FID commands of each run's evaluation section; run nothing")
    p.add_argument("--diff", action="store_true",
                   help="compare two recipes: --diff A.py[@ELEMENT] B.py[@ELEMENT] [overrides for B]; or two runs: "
                        "--diff RUN_DIR_A RUN_DIR_B (config and provenance)")
    p.add_argument("--evaluate", action="store_true",
                   help="after training, sample and score each run's evaluation section (tools/evaluate.py); "
                        "slurm: one job per run after its training job (metric fid: $MDREG_INCEPTION_WEIGHTS)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers components (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of user errors")
    add_slurm_arguments(p)
    return p


def show_status(paths: list[str], wait: bool) -> int:
    """Print the status of the jobs at ``paths``; 0 if all completed, 3 if any is still queued or
    running, else 1 (a job failed, was cancelled, or is unknown to Slurm)."""
    from pathlib import Path

    from mdreg.launch.slurm import status

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
    return 1 if all(s.ended or s.state == "UNKNOWN" for s in states) else 3


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # overrides may come after flags
    if args.status:
        return show_status(args.status, args.wait)
    import_entry_points()
    if not args.recipe:
        raise UserError("give a recipe file, e.g. python tools/launch.py recipes/quickstart.py")
    if args.diff:
        return show_diff(args)
    from mdreg.reports.plan_table import describe_plans
    from mdreg.runs.plan import build_plans

    plans = build_plans(args.recipe, args.overrides, args.sweep, only=args.only, imports=args.imports)
    if args.stages:
        known = list(dict.fromkeys(s.name for plan in plans for s in plan.stages))  # sweep elements may drop stages
        unknown = [s for s in args.stages if s not in known]
        if unknown:
            raise UserError(f"--stages {' '.join(unknown)}: the recipe's stages are {', '.join(known)}")
    cluster = args.cluster or cluster_of(plans[0].cfg)
    slurm_settings(plans[0].cfg, flag_values(args))  # a typo in launch.slurm is reported even for a local run
    if args.estimate:
        from mdreg.reports.estimate import Device, cost_table, estimate_plans

        print(cost_table(estimate_plans(plans), Device(args.peak_tflops, args.mfu, args.images_per_s)))
        return 0
    if args.eval_commands:
        from mdreg.reports.eval_commands import describe

        print(describe(plans))
        return 0
    if cluster == "slurm":
        return submit_slurm(args, plans)
    if args.dry_run:
        print(describe_plans(plans))
        return 0
    from mdreg.engine.distributed import CollectiveFailure
    from mdreg.launch.local import LocalExecutor, outputs_summary

    if args.evaluate:  # a bad protocol or a missing weights file fails before any training
        from mdreg.evaluation.protocol_job import evaluate_run, preflight

        for plan in plans:
            preflight(plan.cfg)
    executor = LocalExecutor()
    for plan in plans:
        for note in plan.notes:
            print(f"note: {note}")
        print(f"== {plan.recipe_name} / {plan.run_name}: stages {', '.join(s.name for s in plan.stages)} "
              f"-> {plan.run_dir}")
        try:
            executor.run(plan, args.stages)
        except CollectiveFailure as exc:  # a lost rank: one clear line (its backend error is in it), exit 1
            if args.verbose:
                raise
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        print(outputs_summary(plan))
        if args.evaluate and (executor.env is None or executor.env.is_main):
            evaluate_run(plan.run_dir)
    return 0


def submit_slurm(args: argparse.Namespace, plans) -> int:
    from mdreg.launch.slurm.executor import SlurmExecutor, scheduled, submission_summary
    from mdreg.reports.plan_table import describe_plans

    executor = SlurmExecutor(flag_values(args), single_job=args.single_job)
    if args.dry_run:
        print(describe_plans(plans, show_config=False))
        print(executor.dry_run(plans, args.stages))
        if args.evaluate:
            from mdreg.launch.slurm.evaluate_job import describe, plan_groups

            print(describe(plan_groups(plans, executor.groups(plans, args.stages))))
        return 0
    for note in plans[0].notes:
        print(f"note: {note}")
    if args.evaluate:  # refuse a bad protocol before submitting the training
        from mdreg.evaluation.protocol_job import preflight

        for plan in plans:
            preflight(plan.cfg)
    groups = executor.submit(plans, args.stages)
    print(submission_summary(groups, plans))
    if args.evaluate:
        from mdreg.launch.slurm.evaluate_job import after_training, describe
        from mdreg.launch.slurm.executor import logs_folder

        print(describe(after_training(plans, groups, flag_values(args), logs_folder(plans))))  # trained ones too
    if not args.wait:
        return 0
    return show_status([str(p.run_dir) for p in (plans if args.evaluate else scheduled(plans, groups))], wait=True)


def show_diff(args) -> int:
    """``--diff A B [overrides]``: the resolved keys that differ, side by side."""
    from mdreg.reports.diff import diff_recipes, format_diff
    from mdreg.runs.rundir import is_run_dir

    if is_run_dir(args.recipe):  # two run directories: their configs and their provenance
        from mdreg.reports.diff import format_run_diff

        if len(args.overrides) != 1 or not is_run_dir(args.overrides[0]):
            raise UserError("--diff RUN_DIR_A RUN_DIR_B compares two run directories (each with a config.yaml); "
                            "no overrides")
        print(format_run_diff(args.recipe, args.overrides[0]))
        return 0
    if not args.overrides or "=" in args.overrides[0] or not args.overrides[0].split("@")[0].endswith(".py"):
        raise UserError("--diff needs two recipes: python tools/launch.py --diff A.py[@ELEMENT] B.py[@ELEMENT] "
                        "[overrides applied to B]")
    other, overrides = args.overrides[0], args.overrides[1:]
    print(format_diff(diff_recipes(args.recipe, other, overrides), args.recipe, other))
    return 0
