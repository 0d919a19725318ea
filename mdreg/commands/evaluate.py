"""``python tools/evaluate.py``'s command line: run directories, protocol overrides, ``--cluster``."""
from __future__ import annotations

import argparse
from pathlib import Path

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.commands.slurm_flags import FLAG_NAMES, add_slurm_arguments, flag_values
from mdreg.errors import UserError
from mdreg.evaluation import protocol_job
from mdreg.evaluation.protocol_job import evaluate_run


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/evaluate.py", description=protocol_job.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="runs/<recipe>/<run name> (several allowed)")
    p.add_argument("overrides", nargs="*", metavar="evaluation.KEY=VALUE",
                   help="protocol overrides, e.g. evaluation.num_samples=1000 evaluation.stage=unmask_nocfg")
    p.add_argument("--stage", default=None, help="the stage to evaluate (default: evaluation.stage)")
    p.add_argument("--checkpoint", default=None, metavar="last|STEP|all-milestones",
                   help="which checkpoints: the last (default), one step, or every milestone and the last "
                        "(a metric-vs-step curve)")
    p.add_argument("--inception-weights", default=None,
                   help="metric fid: the local FID Inception weights file (default $MDREG_INCEPTION_WEIGHTS)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (local runs)")
    p.add_argument("--cluster", choices=("local", "slurm"), default="local",
                   help="slurm: submit one job per run, after the stage's training job if it is still queued")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    add_slurm_arguments(p)
    args = p.parse_intermixed_args(argv)
    import_plugins_of(args)
    given = [*args.run_dirs, *args.overrides]  # run names may hold "=" (max_steps=50): a folder is a run
    runs = [Path(a) for a in given if Path(a).is_dir() or "=" not in a]
    overrides = [a for a in given if not (Path(a).is_dir() or "=" not in a)]
    if not runs:
        raise UserError("give a run directory: python tools/evaluate.py runs/<recipe>/<run name>")
    for run in runs:
        if not (run / "config.yaml").is_file():
            raise UserError(f"{run} is not a run directory (no config.yaml)")
    if args.cluster == "slurm":
        from mdreg.launch.slurm.evaluate_job import for_run

        for run in runs:
            job, after = for_run(run, args.stage, args.checkpoint, overrides, args.inception_weights,
                                 flag_values(args), FLAG_NAMES)
            print(f"{run}: evaluation job {job}" + (f" ({after})" if after else "") +
                  f"; follow it with python tools/launch.py --status {run}")
        return 0
    for run in runs:
        evaluate_run(run, args.stage, args.checkpoint, overrides, args.inception_weights, args.device)
    return 0
