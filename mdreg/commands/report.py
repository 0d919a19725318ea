"""``python tools/report.py RECIPE [overrides] [--only A,B]`` (or ``RUN_DIR...``): the paper's table from
the runs on disk (:mod:`mdreg.reports.reproduction`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.errors import UserError
from mdreg.reports import reproduction
from mdreg.reports.estimate import Device
from mdreg.reports.plots import SMOOTHING
from mdreg.reports.reproduction import write_report
from mdreg.runs.plan import RunPlan
from mdreg.runs.rundir import is_run_dir, plan_of_run


def plans_of(args: argparse.Namespace) -> list[RunPlan]:
    """The plans named on the command line: a recipe (+ overrides, --only, --sweep) or run directories."""
    from mdreg.runs.plan import build_plans

    if args.target.endswith(".py"):
        return build_plans(args.target, args.overrides, args.sweep, only=args.only)
    paths = [Path(p) for p in [args.target, *args.overrides]]
    runs = []
    for path in paths:
        if is_run_dir(path):
            runs.append(path)
        elif path.is_dir() and any(is_run_dir(p) for p in path.iterdir()):
            runs += sorted(p for p in path.iterdir() if is_run_dir(p))
        else:
            raise UserError(f"{path}: neither a recipe (.py) nor a run directory (no config.yaml) nor a folder of runs")
    return reproduction.in_recipe_order([plan_of_run(p) for p in runs])


def _threshold(text: str) -> tuple[str, float]:
    metric, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not metric or number is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected METRIC=VALUE, e.g. shape_fid=300")
    return metric, number


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/report.py", description=reproduction.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="a recipe (recipes/NAME.py), or run directories / a folder of runs")
    p.add_argument("overrides", nargs="*", help="the launch command's overrides (key=value, key=a,b sweeps), or "
                                                "more run directories")
    p.add_argument("--only", default=None, type=lambda text: [n for n in text.split(",") if n],
                   metavar="NAME[,NAME...]", help="only these elements of the recipe's declared sweep")
    p.add_argument("--sweep", nargs="+", default=[], metavar="KEY=A,B", help="swept keys, as given to tools/launch.py")
    p.add_argument("--out", default=None, help="where the reports go: each invocation writes a new OUT/<timestamp>/ and "
                                               "points OUT/latest at it (default <output_root>/<recipe>/report)")
    p.add_argument("--baseline", default=None, metavar="ELEMENT",
                   help="compare every element with this one, paired by seed (default: the recipe's report.baseline)")
    p.add_argument("--threshold", action="append", default=[], type=_threshold, metavar="METRIC=VALUE",
                   help="training FLOPs to reach METRIC=VALUE, read from each run's evaluation curve "
                        "(added to the recipe's report.threshold; repeat for several)")
    p.add_argument("--smoothing", type=float, default=SMOOTHING, help=f"EMA weight of the loss curves ({SMOOTHING})")
    p.add_argument("--log", action="store_true", help="logarithmic y axes")
    p.add_argument("--peak-tflops", type=float, default=791.0, help="estimate: the GPU's peak TFLOP/s (791)")
    p.add_argument("--mfu", type=float, default=0.45, help="estimate: model FLOPs utilisation (0.45)")
    p.add_argument("--images-per-s", type=float, default=None, help="estimate: measured images/s per GPU")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    args = p.parse_intermixed_args(argv)
    import_plugins_of(args)
    if not 0 <= args.smoothing < 1:
        raise UserError(f"--smoothing {args.smoothing}: must be in [0, 1)")
    out = write_report(plans_of(args), args.out, Device(args.peak_tflops, args.mfu, args.images_per_s),
                       args.smoothing, args.log, args.baseline, dict(args.threshold))
    print((out / "report.md").read_text())
    print(f"report: {out}/ (report.md, table.csv, runs.csv, comparisons.csv, threshold.csv, loss.png, "
          f"metric_vs_step.png, metric_vs_flops.png, plots.json); {out.parent / 'latest'} points at it")
    return 0
