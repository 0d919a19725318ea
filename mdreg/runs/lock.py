"""One run directory, one writer: ``RUN_DIR/.lock``.

A launch that trains a run (a local launch, or the job a Slurm submission queued) holds
the run's lock for as long as it trains; a second launch of the same run is refused,
naming the first (pid and host, or Slurm job id), before it writes anything. Only one
process per launch takes it: global rank 0 (under torchrun and in multi-task Slurm jobs
every rank calls :func:`hold`; rank 0 decides and the others learn its answer, so they are
never refused on their own).

The lock is two things in one file, ``RUN_DIR/.lock`` (kept; only a launch that created it
and failed before writing anything else removes it, still holding it, so that a failed first
launch leaves the directory empty; a launch that locked a removed file notices and retries):

* a POSIX record lock (``fcntl.lockf``) on it, held by the launch's process. The kernel
  drops it when the process ends, however it ends (SIGKILL included). POSIX locks, unlike
  ``flock``, are not inherited by forked children (data-loader workers, spawned ranks), so a
  killed launch's lock is free at once; and they are what NFS implements (NLM, NFSv4).
  One caveat: a process loses its POSIX lock when it closes *any* descriptor of the file, so
  this module opens ``.lock`` once per process and run (:data:`_HELD`);
* the holder's record, JSON: pid, host, boot id, the process's start time, the Slurm job id
  (``123`` or ``123_4`` for array element 4, from ``SLURM_ARRAY_JOB_ID``/``SLURM_JOB_ID``),
  when it started and the command. A normal exit empties it; a killed launch leaves it.

What is relied on, and where:

* on one host the record lock decides: busy means the holder runs (refused), free means it
  does not. A free lock whose record is still filled is *stale* (its holder was killed): it
  is taken over with a printed note, after checking that the recorded process is really gone
  (same host and boot, and no process with that pid and start time: pids are reused);
* across hosts (a Slurm job on a compute node, a launch on the login node, a shared file
  system) the record decides, because record locks on network file systems are only as good
  as the mount (``nolock``/``local_lock``, Lustre without ``-o flock`` make them host-local):
  a record naming a Slurm job is live while ``squeue`` lists that job as not ended; a
  record naming a process on another host that is not a Slurm job cannot be checked from
  here and is refused, with the file to delete if that process is gone. Two launches of one
  run started on two hosts within the same instant on a file system without working locks
  could both pass; the submission check (``jobs.json``) and Slurm's one-job-per-id make that
  unlikely in practice.
* a requeued Slurm job (same job id, new process, perhaps another node) takes over the
  record its earlier run left: it is the same job.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from mdreg.engine.distributed import gather_objects
from mdreg.errors import UserError
from mdreg.provenance import boot_id, process_start
from mdreg.runs.jobs import latest_jobs
from mdreg.runs.rundir import check_writable

LOCK = ".lock"
REQUEUE_WAIT_S = 60.0  # a requeued job waits this long for its earlier run's process to end
_HELD: dict[str, "RunLock"] = {}  # run dirs locked by this process (see the POSIX-lock caveat)


class RunInUse(UserError):
    """Another launch holds the run directory."""


def slurm_job_id() -> str | None:
    """This process's Slurm job id: ``123``, or ``123_4`` in element 4 of array 123."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


@dataclass
class Holder:
    """Who holds (or last held) a run's lock."""

    pid: int
    host: str
    boot_id: str = ""
    start_ticks: int | None = None
    job_id: str | None = None
    started: str = ""
    command: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def me(cls, job_id: str | None = None) -> "Holder":
        command = "" if job_id else " ".join(sys.argv)[:500]  # a job is named by its id
        return cls(os.getpid(), socket.gethostname(), boot_id(), process_start(os.getpid()), job_id,
                   time.strftime("%Y-%m-%d %H:%M:%S"), command)

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        try:
            data = json.loads(text)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, AttributeError):  # half-written or not ours
            return None

    def describe(self) -> str:
        where = f"pid {self.pid} on host {self.host}"
        who = f"Slurm job {self.job_id} ({where})" if self.job_id else where
        return f"{who} since {self.started}" + (f" ({self.command})" if self.command else "")

    def process_alive(self) -> bool | None:
        """True/False on this machine; None when the process is elsewhere (cannot be checked)."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id and self.boot_id != boot_id():
            return False  # the machine rebooted since
        ticks = process_start(self.pid)
        return ticks is not None and (self.start_ticks is None or ticks == self.start_ticks)

    def job_state(self) -> str | None:
        """The recorded Slurm job's state if it has not ended, ``""`` if it has, None if Slurm
        cannot be asked (no client tools here, or the query failed)."""
        from mdreg.runs.queue import (
            active_states,  # only for a record naming a Slurm job
        )

        try:
            return active_states([self.job_id]).get(self.job_id, "")
        except UserError:
            return None


def _verdict(holder: Holder) -> tuple[bool | None, str]:
    """(alive?, why) for a filled record whose record lock is free (or cannot be used); ``why``
    completes "..., which". alive None: cannot be decided from here."""
    alive = holder.process_alive()
    if alive is not None:
        return alive, "is still running" if alive else "is no longer running (killed?)"
    if holder.job_id:
        state = holder.job_state()
        if state is None:
            return None, "cannot be checked from here (Slurm does not answer)"
        return bool(state), f"Slurm lists as {state}" if state else "Slurm no longer lists as running"
    return None, f"runs on another host and cannot be checked from {socket.gethostname()}"


class RunLock:
    """The lock of one run directory, held by this process between :meth:`acquire` and
    :meth:`release`."""

    def __init__(self, run_dir: str | Path, job_id: str | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.fd: int | None = None
        self.created = False
        self.me = Holder.me(job_id)

    def _read(self) -> Holder | None:
        os.lseek(self.fd, 0, os.SEEK_SET)
        text = os.read(self.fd, 1 << 16).decode("utf-8", "replace").strip()
        return Holder.parse(text) if text else None

    def _write(self, holder: Holder | None) -> None:
        os.ftruncate(self.fd, 0)
        if holder is not None:
            os.pwrite(self.fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)
        os.fsync(self.fd)

    def _try_lock(self) -> bool | None:
        """True: locked; False: another process holds it; None: this file system has no record locks."""
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise

    def acquire(self, say: Callable[[str], None] = print, check: Callable[[], None] | None = None) -> "RunLock":
        """Take the lock, or raise :class:`RunInUse` naming the holder (nothing is written then).
        ``check`` runs once the file is locked, before the record is written (it may refuse too)."""
        key = str(self.run_dir.resolve())
        if key in _HELD:
            raise RunInUse(f"{self.run_dir} is already being trained by this process")
        check_writable(self.run_dir)
        try:
            for _ in range(100):
                self._open()
                holder = self._lock_or_refuse()
                if self._linked():
                    break
                os.close(self.fd)  # removed meanwhile by a launch that failed on a fresh run: lock the new file
            else:
                raise RunInUse(f"{self.path} keeps being replaced; is something removing it?")
            if check is not None:
                check()
            if holder is not None and holder.pid != self.me.pid:
                say(f"note: {self.run_dir}: taking over the lock of {holder.describe()}, which {holder.extra['why']}")
            try:
                self._write(self.me)
            except OSError as exc:  # a full disk: the record lock still holds on this host, and what the
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):  # launch writes next names the space
                    raise
        except BaseException:
            if self.fd is not None:
                os.close(self.fd)  # also drops a record lock taken above
                self.fd = None
            raise
        _HELD[key] = self
        return self

    def _open(self) -> None:
        """Open ``.lock``, creating it if needed (:attr:`created` says whether this call did)."""
        self.fd = None
        while self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                self.created = True
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
                self.created = False

    def _linked(self) -> bool:
        """The locked descriptor is still the file at :attr:`path`."""
        try:
            here, there = os.fstat(self.fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _lock_or_refuse(self) -> Holder | None:
        """Lock the file; return the stale holder being replaced (None if the record was empty)."""
        deadline = time.monotonic() + REQUEUE_WAIT_S
        while True:
            locked = self._try_lock()
            holder = self._read()
            if locked is False:
                # busy: the holder runs (on this host, or anywhere the file system's locks reach).
                # Waited out only when it is an earlier run of this same (requeued) job, still ending.
                ours = holder is not None and holder.job_id and holder.job_id == self.me.job_id
                if ours and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                raise self._refusal(holder, "is running" if holder else "is starting")  # (lock held)
            if holder is None:
                return None
            if holder.job_id and holder.job_id == self.me.job_id:
                holder.extra["why"] = "was an earlier run of this same Slurm job (requeued)"
                return holder
            alive, why = _verdict(holder)
            if alive is False:
                holder.extra["why"] = why
                return holder
            if alive and locked:
                why += " although the file lock is free: this file system's locks do not reach that process"
            raise self._refusal(holder, why, undecided=alive is None)

    def _refusal(self, holder: Holder | None, why: str, undecided: bool = False) -> RunInUse:
        run = self.run_dir
        if holder is None:
            return RunInUse(f"{run} is in use by another launch that {why} (its record is not written yet); "
                            f"nothing was written. Launch again once it has finished")
        if undecided:
            return RunInUse(f"{run} is locked by {holder.describe()}, which {why}. Nothing was written. If that "
                            f"process is no longer running, delete {self.path} and launch again")
        if holder.job_id:
            fix = (f"follow it with python tools/launch.py --status {run}, or cancel it (scancel {holder.job_id}) "
                   f"and launch again")
        else:
            fix = f"wait for it to finish, or stop it (kill {holder.pid} on {holder.host}) and launch again"
        return RunInUse(f"{run} is in use by {holder.describe()}, which {why}; nothing was written: {fix}")

    def release(self) -> None:
        """Empty the record (if it is still ours) and drop the lock. A lock file this launch
        created in a run directory where nothing else got written (the launch failed at once,
        e.g. on a full disk) is removed: a failed launch leaves nothing behind."""
        if self.fd is None:
            return
        try:
            holder = self._read()
            if holder is None or (holder.pid == self.me.pid and holder.host == self.me.host):
                if self.created and [p.name for p in self.run_dir.iterdir()] == [LOCK]:
                    os.unlink(self.path)  # still locked: whoever opened it meanwhile sees it unlinked and retries
                else:
                    self._write(None)
        except OSError:
            pass  # the record stays; the next launch finds this process gone and takes over
        finally:
            os.close(self.fd)
            self.fd = None
            _HELD.pop(str(self.run_dir.resolve()), None)


def check_no_jobs(run_dir: str | Path) -> None:
    """For a local launch: refuse a run whose latest Slurm jobs (``RUN_DIR/slurm/jobs.json``) are
    queued or running; they would train it too. Skipped where Slurm cannot be asked."""
    jobs = latest_jobs(Path(run_dir))
    if not jobs or shutil.which("squeue") is None:
        return
    from mdreg.runs.queue import (
        active_states,  # Slurm-only: a run that was never submitted does not get here
    )

    try:
        states = active_states([j.job_id for j in jobs])
    except UserError:
        return
    if states:
        listed = ", ".join(f"{jid} ({state})" for jid, state in states.items())
        raise RunInUse(f"{run_dir} has Slurm jobs queued or running: {listed}; nothing was written. Follow them "
                       f"with python tools/launch.py --status {run_dir}, or cancel them (scancel "
                       f"{' '.join(states)}) and launch again")


def current_holder(run_dir: str | Path) -> tuple[Holder | None, bool | None, str]:
    """Who holds ``run_dir``'s lock, read without taking or creating anything: ``(holder, alive,
    why)``; ``(None, False, "")`` when the record is empty (nobody holds it). ``alive`` None:
    it cannot be told from here (another host)."""
    try:
        text = (Path(run_dir) / LOCK).read_text(errors="replace").strip()
    except OSError:
        return None, False, ""
    holder = Holder.parse(text) if text else None
    if holder is None:
        return None, False, ""
    alive, why = _verdict(holder)
    return holder, alive, why


def check_free(run_dir: str | Path) -> None:
    """For a submission: raise :class:`RunInUse` if a live launch holds ``run_dir``, without
    taking or creating anything (a stale record is left for the job to take over)."""
    holder, alive, why = current_holder(run_dir)
    if holder is not None and alive is not False:
        raise RunLock(run_dir)._refusal(holder, why, undecided=alive is None)


@contextlib.contextmanager
def hold(run_dir: str | Path, env=None, job_id: str | None = None,
         say: Callable[[str], None] = print) -> Iterator[RunLock | None]:
    """Hold ``run_dir``'s lock around a block. Every rank of ``env`` calls it: global rank 0
    takes the lock and the others share its outcome (a refusal raises on every rank).
    ``job_id``: the Slurm job this is (its requeued runs take the lock over); a launch outside
    a job (None) is also refused while the run's Slurm jobs are queued or running."""
    lock, error = None, None
    if env is None or env.is_main:
        try:
            check = None if job_id else (lambda: check_no_jobs(run_dir))
            lock = RunLock(run_dir, job_id).acquire(say, check)
        except Exception as exc:  # every rank must hear of it, whatever it is
            error = exc
    message = gather_objects(None if error is None else str(error))[0]
    if error is not None:
        raise error
    if message is not None:
        raise RunInUse(message)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()
