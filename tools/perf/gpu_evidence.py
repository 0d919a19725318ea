#!/usr/bin/env python3
"""The 64-token evidence on one GPU: every run of the ``gpu64_*`` recipes as its own process, several
side by side on the one device (``train.device=cuda``, one CPU thread each), then tools/report.py on
each experiment, and the results copied into ``$OUT`` (docs/evidence.md, "At 64 tokens").

    python3 tools/perf/gpu_evidence.py                                # every part, 5 seeds, into $OUT
    python3 tools/perf/gpu_evidence.py --parts maskdm transfer        # some parts (resumable: done runs are skipped)
    python3 tools/perf/gpu_evidence.py --parts maskdit --seeds 0 1 2  # some seeds of a part
    python3 tools/perf/gpu_evidence.py --tiny --out /tmp/ev           # everything shrunk, on the CPU: a rehearsal

Parts (docs/evidence.md has their estimated device time):

* ``maskdm``: recipes/gpu64_maskdm.py, ``scratch``, ``m50_block2``, ``m90_patch`` (15 runs at 5 seeds);
* ``maskdm_rest``: its other arms, ``m50_patch``, ``m90_block2`` (10 runs);
* ``maskdit``: recipes/gpu64_maskdit.py, ``dit``, ``maskdit``, ``maskdit_bigbatch`` (15 runs);
* ``transfer``: recipes/gpu64_maskdm_transfer.py, its four arms (3 seeds: 12 runs).

Each run is ``tools/launch.py RECIPE --only ELEMENT train.seed=S``: a run that finished is not
trained again, one that was killed resumes from its last checkpoint (every 2000 steps). The reports
read the run directories (``tools/report.py RUN_DIR...``), so they cover whatever has finished, all
parts' runs included. The device returns at most 8 files from ``$OUT``, so ``$OUT`` gets
``status.json`` (each run's exit code and time), ``report_<name>.md`` per report, and one
``gpu_evidence.tar.gz`` with the logs, every report folder and, per run, its ``config.yaml`` and
per stage ``metrics.jsonl`` and last sample grid. ``--tiny``: 2 seeds, 24 steps per stage, batch 8,
16 samples with 4 sampling steps, on the CPU, under ``--root`` (default a temporary folder): the
same commands end to end in a few minutes.

The device image has torch but not omegaconf, hydra-core, fvcore, iopath, submitit and a few
more: ``--wheels`` (here, before the device call) writes their pure-Python wheels, at this
environment's versions, into ``.whl/``; carried (``carry: [".whl"]``), they are installed first.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARTS = {  # part: (recipe, elements, stages, default seeds, reports: [(name, elements, extra report args)])
    "maskdm": ("gpu64_maskdm", ["scratch", "m50_block2", "m90_patch"], ["pretrain", "finetune"], 5,
               [("gpu64_maskdm", None, [])]),
    "maskdm_rest": ("gpu64_maskdm", ["m50_patch", "m90_block2"], ["pretrain", "finetune"], 5,
                    [("gpu64_maskdm", None, [])]),
    "maskdit": ("gpu64_maskdit", ["dit", "maskdit", "maskdit_bigbatch"], ["main", "tune"], 5,
                [("gpu64_maskdit", None, [])]),
    "transfer": ("gpu64_maskdm_transfer", ["pretrained_10pct", "pretrained_1pct", "scratch_10pct", "scratch_1pct"],
                 ["pretrain", "tune"], 3,
                 [("transfer_10pct", ["pretrained_10pct", "scratch_10pct"],
                   ["--baseline", "scratch_10pct", "--threshold", "shape_fid=60"]),
                  ("transfer_1pct", ["pretrained_1pct", "scratch_1pct"],
                   ["--baseline", "scratch_1pct", "--threshold", "shape_fid=60"])]),
}


def tiny_overrides(stages: list[str]) -> list[str]:
    out = ["train.device=cpu", "train.max_steps=24", "train.log_every=4"]
    for s in stages:  # an override on a stage an element removes is skipped for that element
        out += [f"stages.{s}.batch_size=8", f"stages.{s}.sample.sampler.steps=4", f"stages.{s}.evaluate.num=16",
                f"stages.{s}.evaluate.every=12"]
    return out


WHEELS = ("omegaconf", "antlr4-python3-runtime", "hydra-core", "fvcore", "iopath", "yacs", "termcolor", "submitit",
          "pytorch-fid")  # what mdreg imports and the device image lacks (docs/evidence.md)


def prepare_wheels() -> int:
    """Write the pure-Python wheels of :data:`WHEELS`, at the installed versions, into ``.whl/``."""
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in WHEELS]
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(REPO / ".whl"), *pins],
                          check=False).returncode


def install_wheels() -> dict:
    """pip-install ``.whl/*.whl`` into a folder put on PYTHONPATH (the device image lacks some packages)."""
    wheels = sorted((REPO / ".whl").glob("*.whl"))
    env = dict(os.environ)
    if wheels:
        site = Path(tempfile.gettempdir()) / "gpu_evidence_site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)], check=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # mdreg, not installed
    return env


def run_one(cmd: list[str], log: Path, env: dict) -> dict:
    start = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    return {"command": " ".join(cmd), "rc": rc, "seconds": round(time.time() - start, 1), "log": str(log)}


def element_of(run_dir: Path) -> str:
    """The sweep element a run directory belongs to: its name up to the first ``,`` or ``+`` (run names
    are ``ELEMENT,seed=S`` or ``ELEMENT+seed-S``, depending on mdreg's version)."""
    return run_dir.name.split(",")[0].split("+")[0]


def copy_results(root: Path, recipe: str, out: Path) -> None:
    """Each run's config.yaml and, per stage, metrics.jsonl and the last sample grid."""
    for run in sorted(p for p in (root / recipe).iterdir() if (p / "config.yaml").is_file()):
        dest = out / "runs" / recipe / run.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "config.yaml", dest / "config.yaml")
        for stage in sorted(p for p in run.iterdir() if (p / "metrics.jsonl").is_file()):
            (dest / stage.name).mkdir(exist_ok=True)
            shutil.copy2(stage / "metrics.jsonl", dest / stage.name / "metrics.jsonl")
            grids = sorted((stage / "samples").glob("step_*.png"))
            if grids:
                shutil.copy2(grids[-1], dest / stage.name / grids[-1].name)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="default: each part's (5; transfer 3)")
    p.add_argument("--jobs", type=int, default=15, help="processes side by side (15: one per CPU core, one spare)")
    p.add_argument("--out", default=os.environ.get("OUT"), help="where the results go (default $OUT)")
    p.add_argument("--root", default=None, help="the runs' output root (default runs/; --tiny: a temporary folder)")
    p.add_argument("--tiny", action="store_true", help="2 seeds, 24 steps per stage, batch 8, on the CPU")
    p.add_argument("--wheels", action="store_true", help="only write .whl/ for the device call, then stop")
    args = p.parse_args(argv)
    if args.wheels:
        return prepare_wheels()
    if not args.out:
        p.error("give --out or set $OUT")
    final = Path(args.out)
    final.mkdir(parents=True, exist_ok=True)
    root = Path(args.root or (tempfile.mkdtemp(prefix="gpu_evidence_") if args.tiny else REPO / "runs")).resolve()
    env = {**install_wheels(), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = root / "results"  # packed into one archive at the end
    out.mkdir(parents=True, exist_ok=True)
    jobs, status = [], {"root": str(root), "tiny": args.tiny, "runs": [], "reports": []}
    for part in args.parts:
        recipe, elements, stages, seeds, _ = PARTS[part]
        extra = tiny_overrides(stages) if args.tiny else ["train.device=cuda"]
        for seed in args.seeds or list(range(2 if args.tiny else seeds)):
            for element in elements:
                cmd = [sys.executable, "tools/launch.py", f"recipes/{recipe}.py", "--only", element,
                       f"train.seed={seed}", f"train.output_root={root}", "train.ckpt_every=2000", *extra]
                jobs.append((cmd, out / "logs" / part / f"{element}-seed{seed}.log"))
    print(f"{len(jobs)} runs, {args.jobs} at a time, under {root}", flush=True)
    started = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda job: run_one(*job, env), jobs):
            status["runs"].append(result)
            print(f"[{time.time() - started:6.0f} s] rc {result['rc']}  {result['seconds']:6.0f} s  {result['log']}",
                  flush=True)
    status["train_seconds"] = round(time.time() - started, 1)
    done = set()
    for part in args.parts:
        recipe, _, _, _, reports = PARTS[part]
        for name, only, report_args in reports:
            if name in done:
                continue
            done.add(name)
            runs = sorted(str(r) for r in (root / recipe).iterdir() if (r / "config.yaml").is_file()
                          and (only is None or element_of(r) in only)) if (root / recipe).is_dir() else []
            if not runs:
                continue
            folder = root / "reports" / name
            result = run_one([sys.executable, "tools/report.py", *runs, "--out", str(folder), *report_args],
                             out / "logs" / f"report_{name}.log", env)
            status["reports"].append(result)
            if (folder / "latest").is_dir():
                shutil.copytree(folder / "latest", out / "reports" / name, dirs_exist_ok=True)
                shutil.copy2(folder / "latest" / "report.md", final / f"report_{name}.md")
        copy_results(root, recipe, out)
    (out / "status.json").write_text(json.dumps(status, indent=1) + "\n")
    shutil.copy2(out / "status.json", final / "status.json")
    with tarfile.open(final / "gpu_evidence.tar.gz", "w:gz") as tar:
        tar.add(out, arcname="gpu_evidence")
    failed = [r for r in status["runs"] + status["reports"] if r["rc"] != 0]
    print(f"{len(status['runs'])} runs in {status['train_seconds']:.0f} s; {len(failed)} failed; results in {final}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
