"""Checkpoint files: atomic writes, a ``last`` pointer, keep-last-K plus milestones.

A checkpoint is written to a temporary file in the same folder, flushed, fsync'ed and
renamed over its final name, then ``last`` (a one-line text file naming it) is replaced
the same way. A crash at any point leaves the previous checkpoint and pointer intact; the
temporary file a killed writer leaves behind is removed by the next save (one writer per
folder: rank 0 of the stage).
Files load with ``torch.load(weights_only=True)``: plain tensors, numbers and strings only.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from mdreg.config.serialize import atomic_write, atomic_write_text
from mdreg.errors import UserError
from mdreg.paths import local_path

_NAME = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.pt"


class CheckpointManager:
    """Writes and finds the checkpoints of one stage in ``folder``."""

    def __init__(self, folder: str | Path, keep_last: int = 2, milestone_every: int | None = None):
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last, self.milestone_every = keep_last, milestone_every

    def steps(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := _NAME.match(p.name)))

    def save(self, state: dict, step: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        for pattern in (".step_*.tmp", ".last.*.tmp"):
            for stale in self.folder.glob(pattern):
                stale.unlink(missing_ok=True)
        path = atomic_write(self.folder / checkpoint_name(step), lambda fh: torch.save(state, fh), binary=True)
        atomic_write_text(self.folder / "last", path.name + "\n")
        self._prune(step)
        return path

    def _prune(self, newest: int) -> None:
        kept = set(self.steps()[-self.keep_last:]) | {newest}
        for step in self.steps():
            milestone = self.milestone_every and step % self.milestone_every == 0
            if step not in kept and not milestone:
                (self.folder / checkpoint_name(step)).unlink(missing_ok=True)

    def latest(self) -> Path | None:
        """The checkpoint ``last`` names (or the newest step file if the pointer is gone)."""
        pointer = self.folder / "last"
        if pointer.is_file():
            name = pointer.read_text().strip()
            if (self.folder / name).is_file():
                return self.folder / name
        steps = self.steps()
        return self.folder / checkpoint_name(steps[-1]) if steps else None


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint (a local path or an iopath URI, :mod:`mdreg.paths`) safely
    (``weights_only=True``), with a clear error if unreadable."""
    path = local_path(path, "checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as exc:
        raise UserError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                        f"it may be truncated or not a torch checkpoint") from None
