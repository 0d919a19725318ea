"""``python tools/launch.py RECIPE [overrides...]``: run a recipe locally (default) or on Slurm.

    python tools/launch.py recipes/quickstart.py                      # train locally
    python tools/launch.py recipes/quickstart.py train.max_steps=50   # a shorter look (the same run, capped)
    python tools/launch.py recipes/quickstart.py --dry-run            # print config + plan only
    python tools/launch.py recipes/quickstart.py --sweep stages.pretrain.masker.ratio=0.25,0.5
    python tools/launch.py recipes/quickstart.py --stages pretrain    # only these stages
    python tools/launch.py recipes/quickstart.py --cluster slurm --gpus-per-node 8 --time 24:00:00
    python tools/launch.py recipes/quickstart.py --cluster slurm --dry-run   # the sbatch scripts
    python tools/launch.py --status recipes/quickstart.py             # every run of the recipe: state, steps, loss
    python tools/launch.py --status runs/quickstart/default           # one run (its Slurm jobs, if submitted)
    python tools/launch.py recipes/maskdm_celeba64_table1.py --only m50_block2   # one declared sweep element
    python tools/launch.py recipes/maskdit_in256.py --estimate --peak-tflops 989 --mfu 0.4
    python tools/launch.py --diff recipes/maskdm_celebahq256_b.py recipes/maskdm_celebahq256_l.py
    python tools/launch.py recipes/quickstart.py --evaluate            # train, then tools/evaluate.py the protocol
    python tools/launch.py my_recipe.py --import my_lab.maskers       # a component of your own (docs/extending.md)
"""
from __future__ import annotations

import argparse
import sys

from mdreg.commands.entry import add_plugin_argument
from mdreg.commands.slurm_flags import FLAG_NAMES, add_slurm_arguments, flag_values
from mdreg.errors import ConfigError, UserError, did_you_mean
from mdreg.plugins import import_entry_points

CLUSTERS = ("local", "slurm")


def split_stages(items: list[str] | None, overrides: list[str]) -> list[str] | None:
    """``--stages a b,c``: the stage names; anything that reads as an override (``key=value``,
    ``+key``, ``~key``) goes back to the overrides, in order, so ``--stages pretrain
    train.max_steps=3`` does not take the override for a stage."""
    if items is None:
        return None
    names = []
    for item in items:
        if "=" in item or item.startswith(("+", "~")):
            overrides.append(item)
        else:
            names += [n for n in item.split(",") if n]
    return names


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
    p.add_argument("--stages", nargs="+", default=None, metavar="NAME",
                   help="run only these stages (names, or NAME,NAME)")
    p.add_argument("--single-job", action="store_true", help="slurm: run all stages in one job (default: one "
                                                             "job per stage, chained with afterok)")
    p.add_argument("--wait", action="store_true", help="slurm: block until the jobs end and report their states")
    p.add_argument("--status", nargs="+", metavar="RUN_DIR|RECIPE", default=None,
                   help="show runs and exit: a run directory, a folder of runs, or a recipe file (every run of it); "
                        "local runs: state, steps, loss, metric, checkpoint; submitted runs: their Slurm jobs too. "
                        "Exit status 0: all done, 1: some failed, stopped or not started, 3: some still running "
                        "or queued")
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
    add_plugin_argument(p)
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of user errors")
    add_slurm_arguments(p)
    return p


def cluster_of(cfg) -> str:
    """``launch.cluster`` (``local`` when absent), checked."""
    launch = cfg.get("launch")
    if launch is None:
        return "local"
    if not hasattr(launch, "keys"):
        raise ConfigError(f"launch must be a mapping (cluster=..., slurm=dict(...)), got {launch!r}")
    unknown = [k for k in launch.keys() if k not in ("cluster", "slurm")]
    if unknown:
        raise ConfigError(f"launch.{unknown[0]} is not a launch setting{did_you_mean(str(unknown[0]), ['cluster', 'slurm'])}"
                          f"; the launch section holds cluster and slurm")
    cluster = launch.get("cluster", "local")
    if cluster not in CLUSTERS:
        raise ConfigError(f"launch.cluster={cluster!r} is invalid: expected one of {', '.join(CLUSTERS)}")
    return cluster


def show_status(targets: list[str], wait: bool) -> int:
    """Print the status of the runs ``targets`` name; 0 if all are done, 3 if any still runs or
    waits in a queue, else 1."""
    from mdreg.reports.run_status import runs_of, status_table
    from mdreg.runs.jobs import RECORD

    runs = list(dict.fromkeys(run for target in targets for run in runs_of(target)))
    submitted = [run for run in runs if (run / RECORD).is_file()]
    local = [run for run in runs if run not in submitted]
    codes = []
    if local:
        text, states = status_table(local)
        print(text)
        codes.append(0 if all(s == "done" for s in states) else 3 if any(s.startswith("running") for s in states) else 1)
    if submitted:
        from mdreg.launch.slurm import status
        from mdreg.runs.jobs import latest_jobs

        if wait:
            status.wait([j.job_id for run in submitted for j in latest_jobs(run)])
        text, found = status.report(submitted)
        print(text)
        codes.append(0 if all(s.state == "COMPLETED" for s in found) else
                     1 if all(s.ended or s.state == "UNKNOWN" for s in found) else 3)
    return 3 if 3 in codes else max(codes, default=0)


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # overrides may come after flags
    args.stages = split_stages(args.stages, args.overrides)
    if args.status:
        return show_status(args.status, args.wait)
    import_entry_points()
    if not args.recipe:
        raise UserError("give a recipe file, e.g. python tools/launch.py recipes/quickstart.py")
    if args.diff:
        return show_diff(args)
    from mdreg.runs.plan import build_plans

    plans = build_plans(args.recipe, args.overrides, args.sweep, only=args.only, imports=args.imports)
    if args.stages:
        known = list(dict.fromkeys(s.name for plan in plans for s in plan.stages))  # sweep elements may drop stages
        unknown = [s for s in args.stages if s not in known]
        if unknown:
            raise UserError(f"--stages {' '.join(unknown)}: the recipe's stages are {', '.join(known)}"
                            f"{did_you_mean(unknown[0], known)}")
    cluster = args.cluster or cluster_of(plans[0].cfg)
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
        from mdreg.reports.plan_table import describe_plans
        from mdreg.runs.plan import missing_data

        missing = [m for plan in plans for m in missing_data(plan)]
        if missing:
            raise UserError(f"{missing[0]}; a local run reads its data on this machine")
        print(describe_plans(plans))
        return 0
    return run_locally(args, plans)


def run_locally(args: argparse.Namespace, plans) -> int:
    """Train each plan in this process. A run that fails (diverges, or is held by another launch)
    does not stop the runs after it: each runs, and the end says which failed and how to rerun them."""
    from mdreg.engine.distributed import CollectiveFailure
    from mdreg.io import OutOfSpace
    from mdreg.launch.local import LocalExecutor, outputs_summary

    if args.evaluate:  # a bad protocol or a missing weights file fails before any training
        from mdreg.evaluation.protocol_job import evaluate_run, preflight

        for plan in plans:
            preflight(plan.cfg)
    executor, failed = LocalExecutor(), []
    for i, plan in enumerate(plans):
        main_rank = executor.start(plan).is_main
        if main_rank:
            for note in plan.notes:
                print(f"note: {note}")
            print(f"== {plan.recipe_name} / {plan.run_name}: stages {', '.join(s.name for s in plan.stages)} "
                  f"-> {plan.run_dir}", flush=True)
        try:
            executor.run(plan, args.stages)
        except CollectiveFailure as exc:  # a lost rank: one clear line (its backend error is in it), exit 1
            if args.verbose:
                raise
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        except OutOfSpace:
            raise  # the next runs would not fit either
        except UserError as exc:
            if len(plans) == 1 or args.verbose:
                raise
            print(f"error: {plan.run_dir}: {exc}", file=sys.stderr, flush=True)
            failed.append((plan, str(exc).split(";")[0]))
            continue
        if main_rank:
            print(outputs_summary(plan))
        if args.evaluate and main_rank:
            evaluate_run(plan.run_dir)
    if failed:
        names = ", ".join(f"{plan.run_name} ({why})" for plan, why in failed)
        raise UserError(f"{len(failed)} of {len(plans)} runs failed: {names}; the others ran. Their state: python "
                        f"tools/launch.py --status {plans[0].run_dir.parent}; relaunching the same command resumes "
                        f"the unfinished ones and skips the finished")
    return 0


def submit_slurm(args: argparse.Namespace, plans) -> int:
    from mdreg.launch.slurm.executor import SlurmExecutor, scheduled, submission_summary
    from mdreg.reports.plan_table import describe_plans

    executor = SlurmExecutor(flag_values(args), single_job=args.single_job, flag_names=FLAG_NAMES)
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

        print(describe(after_training(plans, groups, flag_values(args), FLAG_NAMES, logs_folder(plans))))
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
