"""What a running stage reports: tensorboard scalars, ``metrics.jsonl`` and a progress line.

Only rank 0 writes. A ``metrics.jsonl`` whose last line was cut off (the process was
killed mid-write) is repaired on open by dropping the partial line, so every line parses.
A resumed launch repeats the steps after its checkpoint, so the records of those steps (logged
by the killed launch after its last checkpoint) move to ``metrics.superseded.jsonl`` and the
tensorboard events after it are purged: each step appears once; the ``resume`` event marks where
the relaunched run took over. Every ``log_every`` steps it records the mean loss over the interval,
the lr, the gradient norm and the training throughput (images/s), and prints a progress
line with an ETA (rewritten in place on a terminal, one line per log otherwise).
The ``start`` event of each launch (and resume) and the ``end`` event carry the process's
provenance (:mod:`mdreg.provenance`: git commit, versions, GPUs, hosts, Slurm job, time);
``start`` gathers every rank's hostname, so every rank calls :meth:`Monitor.event` for it.
A full disk (metrics.jsonl, tensorboard events) raises
:class:`~mdreg.io.OutOfSpace` naming the folder; the checkpoints are untouched.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from mdreg.engine.distributed import gather_objects
from mdreg.io import append_jsonl, atomic_write_text, no_space, out_of_space, read_jsonl, repair_jsonl
from mdreg.provenance import collect


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


def with_ranks(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with ``hosts``: every rank's hostname in rank order. A collective when
    torch.distributed runs: every rank must call it at the same point."""
    return {**info, "hosts": gather_objects(info["host"])}


def supersede_after(path: Path, step: int) -> int:
    """Move the records of ``path`` logged at steps after ``step`` to ``metrics.superseded.jsonl``
    beside it (a resumed launch repeats those steps); returns how many moved."""
    records = read_jsonl(path)
    repeated = [isinstance(r.get("step"), int) and r["step"] > step and r.get("event") in REPEATED for r in records]
    if any(repeated):
        for record, moved in zip(records, repeated):
            if moved:
                append_jsonl(path.with_name("metrics.superseded.jsonl"), record)
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r, moved in zip(records, repeated) if not moved))
    return sum(repeated)


REPEATED = (None, "evaluation", "skipped_step", "note")  # what a resumed launch logs again for the same step


class Monitor:
    """Writes the logs of one stage into ``folder``."""

    def __init__(self, folder: str | Path, stage: str, total_steps: int, enabled: bool = True, stream=None,
                 resume_step: int | None = None):
        self.folder, self.stage, self.total, self.enabled = Path(folder), stage, total_steps, enabled
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._writer = None
        self._t0 = self._t_last = time.perf_counter()
        self._step0 = None
        if enabled:
            with self._space("tensorboard events and metrics.jsonl"):
                self.folder.mkdir(parents=True, exist_ok=True)
                from torch.utils.tensorboard import SummaryWriter
                self._writer = SummaryWriter(log_dir=str(self.folder),
                                             purge_step=None if resume_step is None else resume_step + 1)
                repair_jsonl(self.folder / "metrics.jsonl")
                if resume_step is not None:
                    supersede_after(self.folder / "metrics.jsonl", resume_step)
                self._jsonl = open(self.folder / "metrics.jsonl", "a")

    @contextlib.contextmanager
    def _space(self, name: str, needed: int | None = None):
        """Turn a full disk while writing ``name`` into OutOfSpace (and stop writing logs)."""
        try:
            yield
        except OSError as exc:
            if not no_space(exc):
                raise
            self.enabled = False
            with contextlib.suppress(OSError, AttributeError):
                self._jsonl.close()  # drop the buffered rest: nothing may land after a later resume's lines
            raise out_of_space(self.folder, name, needed, kept="The logs written so far are kept (a cut-off last "
                               "line of metrics.jsonl is dropped on resume) and so are the checkpoints") from None

    def _append(self, record: dict) -> None:
        line = json.dumps(record) + "\n"
        with self._space("metrics.jsonl", len(line.encode())):
            self._jsonl.write(line)
            self._jsonl.flush()

    def start(self, step: int) -> None:
        self._step0, self._t0 = step, time.perf_counter()
        self._t_last = self._t0

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record ``scalars`` (already averaged over the interval) at ``step``."""
        if self.enabled:
            self.scalars(step, scalars)
            self.progress(step, scalars)

    def scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Record ``scalars`` at ``step`` without a progress line (e.g. evaluation results)."""
        if not self.enabled:
            return
        with self._space("tensorboard events"):
            for key, value in scalars.items():
                self._writer.add_scalar(f"{self.stage}/{key}", value, step)
        self._append({"stage": self.stage, "step": step, "time": time.time(), **scalars})

    def progress(self, step: int, scalars: dict[str, float]) -> None:
        now = time.perf_counter()
        done = step - (self._step0 or 0)
        rate = done / max(now - self._t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        parts = [f"[{self.stage}] [{bar}] {step}/{self.total}"]
        for key in ("loss", "lr", "grad_norm", "images_per_s"):
            if key in scalars:
                v = scalars[key]
                parts.append(f"{key} {v:.3g}" if key != "images_per_s" else f"{v:.1f} img/s")
        parts.append(f"ETA {format_eta(eta)}")
        line = "  ".join(parts)
        if self.tty:
            self.stream.write("\r" + line + ("\n" if step >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def image(self, tag: str, grid, step: int) -> None:
        if self.enabled:
            with self._space("tensorboard events"):
                self._writer.add_image(f"{self.stage}/{tag}", grid, step)

    def event(self, record: dict[str, Any]) -> None:
        """A non-scalar record (e.g. stage start/end, an FID result) in metrics.jsonl; ``start``
        and ``end`` get ``provenance`` (``start``: a collective over ranks, see the module docstring)."""
        if record.get("event") == "start":
            record = {**record, "provenance": with_ranks(collect())}
        elif record.get("event") == "end" and self.enabled:
            record = {**record, "provenance": collect()}
        if self.enabled:
            self._append({"stage": self.stage, "time": time.time(), **record})

    def close(self) -> None:
        if self.enabled:
            with self._space("tensorboard events and metrics.jsonl"):
                self._writer.flush()
                self._writer.close()
                self._jsonl.close()
            self.enabled = False
