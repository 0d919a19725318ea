"""``python tools/launch.py --status RUN_DIR``, for runs submitted to Slurm: the jobs of each run:
state and restarts from ``sacct`` (the pending reason from
``squeue``), training progress, checkpoints set aside as unreadable (and each
``skipped_checkpoint`` event of the stage's metrics.jsonl), the tail of each job's log and
the traceback of a failed one; with several runs, a closing summary names the failed ones
and their error line. ``--wait`` polls the same until every job has ended.

One ``sacct`` and one ``squeue`` call answer for every job of every run (a 256-element sweep
too); logs are read from their end.
"""
from __future__ import annotations

import time
from pathlib import Path

from tabulate import tabulate

from mdreg.runs.jobs import JobRecord, latest_jobs
from mdreg.runs.queue import ENDED, JobState, query
from mdreg.runs.records import StageRecord, read_stage


def tail(path: Path, lines: int, max_bytes: int = 1 << 16) -> list[str]:
    """The last ``lines`` lines of ``path``, reading at most its last ``max_bytes``."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is a partial one
    return text[-lines:]


def checkpoint_lines(stage: str, facts: StageRecord) -> list[str]:
    """The report's lines about checkpoints set aside as unreadable."""
    out = []
    if facts.damaged:
        out.append(f"   {stage}: {len(facts.damaged)} damaged checkpoint(s) set aside in "
                   f"{facts.damaged[0].parent}: {', '.join(p.name for p in facts.damaged)}")
    for event in facts.skipped:
        kept = f"kept as {Path(event['kept_as']).name}" if event.get("kept_as") else "not renamed"
        out.append(f"   {stage}: resume skipped {event.get('path')}: {event.get('reason')} ({kept})")
    return out


def traceback_of(job: JobRecord) -> list[str]:
    """The last Python traceback in the job's stderr (any task), or []."""
    for task in range(job.tasks):
        text = tail(job.paths(task).stderr, 400)
        starts = [i for i, line in enumerate(text) if line.startswith("Traceback (most recent call last)")]
        if starts:
            return [line for line in text[starts[-1]:] if not line.startswith(("srun: ", "slurmstepd: "))][-60:]
    return []


def report(run_dirs: list[Path], log_lines: int = 5) -> tuple[str, list[JobState]]:
    """The status text of submitted runs (each with ``RUN_DIR/slurm/jobs.json``) and their jobs' states."""
    runs = [(run, latest_jobs(run)) for run in run_dirs]
    states = query([j.job_id for _, jobs in runs for j in jobs])
    out, failed = [], []
    for run, jobs in runs:
        rows, facts = [], {}
        for job in jobs:
            st = states[job.job_id]
            state = st.state + (f" ({st.reason})" if st.reason else "")
            for s in job.stages:
                facts.setdefault(s, read_stage(run / s))
            done = ", ".join(facts[s].progress for s in job.stages)
            rows.append([job.job_id, job.label, state, st.start.replace("T", " ") if st.start not in ("Unknown", "None") else "",
                         st.elapsed, st.exit_code, st.restarts, done])
        out.append(f"== {run}")
        out.append(tabulate(rows, headers=["job", "stages", "state", "start", "elapsed", "exit", "restarts",
                                           "steps"]))
        for stage, found in facts.items():
            out += checkpoint_lines(stage, found)
        for job in jobs:
            st = states[job.job_id]
            paths = job.paths()
            out.append(f"-- {job.job_id} {job.label}: {paths.stdout}")
            out += [f"   | {line}" for line in tail(paths.stdout, log_lines)]
            if st.state in ENDED and st.state != "COMPLETED":
                trace = traceback_of(job)
                if trace:
                    out.append(f"   {st.state}: traceback from {paths.stderr}")
                    out += [f"   ! {line}" for line in trace]
                    failed.append(f"{run.name}: {job.label} {job.job_id} {st.state}: {trace[-1].strip()}")
                elif st.state == "CANCELLED" and job.dependency:
                    out.append(f"   cancelled: its dependency ({job.dependency}) failed or was cancelled")
                else:
                    out += [f"   ! {line}" for line in tail(paths.stderr, log_lines)]
                    failed.append(f"{run.name}: {job.label} {job.job_id} {st.state}")
    if len(runs) > 1:
        out.append(summary(runs, states, failed))
    return "\n".join(out), list(states.values())


def summary(runs: list[tuple[Path, list[JobRecord]]], states: dict[str, JobState], failed: list[str]) -> str:
    """The closing lines of a report over several runs: counts by state, then each failure."""
    counts: dict[str, int] = {}
    for st in states.values():
        counts[st.state] = counts.get(st.state, 0) + 1
    shown = ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
    lines = [f"== {len(runs)} runs, {len(states)} jobs: {shown}"]
    if failed:
        lines.append(f"failed ({len(failed)}):")
        lines += [f"  {line}" for line in failed]
    return "\n".join(lines)


def wait(job_ids: list[str], poll_s: float = 3.0, echo=print, lost_after: int = 10) -> dict[str, JobState]:
    """Poll until every job has ended; echo each state change; return the final states. A job
    neither sacct nor squeue knows for ``lost_after`` polls in a row (e.g. the cluster's state
    was wiped) counts as ended."""
    last: dict[str, str] = {}
    unknown = {jid: 0 for jid in job_ids}
    while True:
        states = query(job_ids)
        for jid, st in states.items():
            if last.get(jid) != st.state:
                echo(f"{time.strftime('%H:%M:%S')} {jid}: {st.state}" + (f" ({st.reason})" if st.reason else ""))
                last[jid] = st.state
            unknown[jid] = unknown[jid] + 1 if st.state == "UNKNOWN" else 0
        if all(st.ended or unknown[jid] >= lost_after for jid, st in states.items()):
            return states
        time.sleep(poll_s)
