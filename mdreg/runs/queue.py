"""What Slurm says about the jobs recorded for runs (``RUN_DIR/slurm/jobs.json``,
:mod:`mdreg.runs.jobs`): their state, restarts and pending reason, from one ``sacct`` and one
``squeue`` call for any number of jobs (a 256-element sweep too). The run lock asks it whether
a recorded job still runs; ``tools/launch.py --status`` reports it.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

from mdreg.errors import UserError

ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED")
_SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "Elapsed", "NodeList")


@dataclass
class JobState:
    state: str = "UNKNOWN"   # first word of sacct's State ("CANCELLED by 0" -> CANCELLED)
    exit_code: str = ""
    start: str = ""
    end: str = ""
    elapsed: str = ""
    nodes: str = ""
    reason: str = ""          # squeue's reason while pending (Dependency, Resources, ...)
    restarts: int = 0

    @property
    def ended(self) -> bool:
        return self.state in ENDED


# squeue asked for ONE job id the controller has forgotten (MinJobAge after it ended) fails with
# this, where several ids just list the known ones: for us it means "not queued"
_FORGOTTEN = "Invalid job id specified"


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{cmd[0]} failed ({exc}); is this a Slurm login node?") from None
    if out.returncode != 0:
        if cmd[0] == "squeue" and _FORGOTTEN in out.stderr:
            return ""
        raise UserError(f"{' '.join(cmd[:3])} ... failed: {out.stderr.strip()}")
    return out.stdout


def _expand(job_id: str) -> list[str]:
    """``12``, ``12_3``, ``12_[0-2%2]`` -> the job ids they stand for."""
    from submitit.slurm.slurm import read_job_id  # only for runs with recorded jobs: a local launch needs none

    out = []
    for part in read_job_id(job_id):
        if len(part) == 3:
            out += [f"{part[0]}_{i}" for i in range(int(part[1]), int(part[2]) + 1)]
        else:
            out.append("_".join(part))
    return out


def query(job_ids: list[str]) -> dict[str, JobState]:
    """The state of each job id (``123`` or ``123_4``), one sacct and one squeue call."""
    bases = sorted({j.split("_")[0] for j in job_ids})
    states = {j: JobState() for j in job_ids}
    if not bases:
        return states
    text = _run(["sacct", "-D", "-X", "-P", "-n", "-o", ",".join(_SACCT_FIELDS), "-j", ",".join(bases)])
    for line in text.splitlines():
        row = dict(zip(_SACCT_FIELDS, line.split("|")))
        for jid in _expand(row["JobID"]) if row.get("JobID") else []:
            if jid in states:
                seen = states[jid].state != "UNKNOWN"
                restarts = states[jid].restarts + (1 if seen else 0)
                states[jid] = JobState(row["State"].split()[0], row["ExitCode"], row["Start"], row["End"],
                                       row["Elapsed"], row["NodeList"], restarts=restarts)
    text = _run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(bases)])
    for line in text.splitlines():
        jid, state, reason = (line.split("|") + ["", ""])[:3]
        if jid in states:
            if states[jid].state == "UNKNOWN":  # not in accounting yet
                states[jid].state = state
            if state == "PENDING" and reason != "None":
                states[jid].reason = reason
    return states


def active_states(job_ids: list[str]) -> dict[str, str]:
    """The jobs of ``job_ids`` that Slurm lists as not ended, with their state (one squeue
    call; a job squeue no longer lists has ended). Raises UserError when squeue fails."""
    if not job_ids:
        return {}
    text = _run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted(set(job_ids)))])
    wanted, found = set(job_ids), {}
    for line in text.splitlines():
        jid, state = (line.split("|") + [""])[:2]
        if jid in wanted and state and state not in ENDED:
            found[jid] = state
    return found
