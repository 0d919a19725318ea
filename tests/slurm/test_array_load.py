"""Load test of the launcher: a 256-element sweep is ONE job array submitted in one sbatch
call, ``array_parallelism`` holds (the elements run one at a time although the node could
run two), and ``--status`` over the recipe folder answers for all 256 in under 2 s.

Each element is a real (tiny) training run, but at ~10 s of interpreter start per element
on a 2-core machine the whole array would take ~20 minutes: the test watches the throttle
while two elements run, then cancels the array.

Slow: submitting takes 50-70 s here, nearly all of it planning (each element's stages are
built on the meta device and its settings checked, ~0.15 s per element); ``--status`` takes
~0.5 s."""
from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from tests.conftest import tiny_recipe
from tests.slurm.slurm_helpers import recorded_jobs, sacct, wait_ended

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
N, PARALLEL = 256, 1  # the node has 2 CPUs and each element takes 1: only a limit of 1 shows the throttle
WATCH_S = 90  # at most; it stops once a second element has started


def squeue(array_id: str) -> list[tuple[str, str, str]]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i|%T|%r"], capture_output=True, text=True)
    return [tuple(line.split("|")) for line in out.stdout.splitlines() if line.strip()]


def most_at_once(rows: list[dict]) -> int:
    """The most elements whose [Start, End) intervals overlap (from sacct)."""
    edges = []
    for row in rows:
        if row["Start"] not in ("Unknown", "None", ""):
            edges += [(row["Start"], 1), (row["End"] if row["End"] not in ("Unknown", "None") else "9999", -1)]
    running = best = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same second
        running += step
        best = max(best, running)
    return best


def test_256_element_array_one_submission_throttled_and_fast_status(tmp_path, launch):
    recipe = tiny_recipe(tmp_path, steps=1)
    t0 = time.perf_counter()
    code, out = launch(recipe, f"train.seed=range(0,{N})", "--cluster", "slurm", "--cpus-per-task", "1",
                       "--mem-gb", "1", "--time", "15", "--array-parallelism", str(PARALLEL))
    submit_s = time.perf_counter() - t0
    assert code == 0
    folder = tmp_path / "runs" / "tiny"
    runs = sorted(folder.glob("seed-*"))
    assert len(runs) == N
    ids = [recorded_jobs(run)[0]["job_id"] for run in runs]
    array_id = ids[0].split("_")[0]
    try:
        assert {i.split("_")[0] for i in ids} == {array_id} and len(set(ids)) == N  # one array, one id each
        assert [p.name for p in (folder / "slurm-logs").glob("*_submission.sh")] == [f"{array_id}_submission.sh"]
        script = (folder / "slurm-logs" / f"{array_id}_submission.sh").read_text()
        assert f"#SBATCH --array=0-{N - 1}%{PARALLEL}" in script

        ran, reasons, end = set(), Counter(), time.time() + WATCH_S
        while time.time() < end and len(ran) <= PARALLEL:  # until a second element has started
            rows = squeue(array_id)
            running = [r[0] for r in rows if r[1] == "RUNNING"]
            assert len(running) <= PARALLEL, rows
            ran.update(running)
            reasons.update(r[2] for r in rows if r[1] == "PENDING")
            time.sleep(0.5)
        assert len(ran) > PARALLEL, ran  # elements ran, one after the other
        assert reasons["JobArrayTaskLimit"] > 0, reasons  # the others waited for the limit

        launch("--status", folder)  # the first call warms the file system caches
        t0 = time.perf_counter()
        code, out = launch("--status", folder)
        status_s = time.perf_counter() - t0
        assert code == 3  # some still queued or running
        assert f"== {N} runs, {N} jobs:" in out and out.count("\n== ") >= N
        print(f"submit {N} elements: {submit_s:.1f} s; --status over {N} runs: {status_s:.2f} s")
        assert status_s < 2.0
    finally:
        subprocess.run(["scancel", array_id], check=True)
    ended = wait_ended([array_id])
    rows = sacct(array_id, duplicates=True)
    assert most_at_once(rows) <= PARALLEL, rows
    assert ended
