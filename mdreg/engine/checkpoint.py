"""Checkpoints: what they hold (:func:`collect_state`, :func:`restore_state`) and their files
(atomic writes, a ``last`` pointer, keep-last-K plus milestones, resume past damaged files).

A checkpoint is written to a temporary file in the same folder, flushed, fsync'ed and
renamed over its final name, then ``last`` (a one-line text file naming it) is replaced
the same way. A crash at any point leaves the previous checkpoint and pointer intact; the
temporary file a killed writer leaves behind is removed by the next save (one writer per
folder: rank 0 of the stage). Before writing, the state's tensor bytes are compared with
the free space: a checkpoint that cannot fit is refused before anything is written, and a
disk that fills while writing removes the temporary file; both raise
:class:`~mdreg.io.OutOfSpace` naming the folder, the size and the free bytes. Ctrl-C while
writing removes the temporary file too and raises :class:`~mdreg.io.Interrupted` (a
KeyboardInterrupt: the command prints ``interrupted while writing the checkpoint ...`` and
exits 130), never torch's ``unexpected pos`` error.

Resuming (:func:`resume_point`) takes the checkpoint ``last`` names, else the newest step
file, and falls back to older ones when a file cannot be read (truncated, empty,
garbage). Each skipped file is renamed aside to ``step_NNNNNNNN.pt.damaged`` (``.damaged.2``,
... if that name is taken), never deleted and never counted by keep-last-K;
:meth:`CheckpointManager.damaged` lists them. If checkpoints exist but none reads, nothing
is renamed and the run stops: starting the stage over would discard it.
Files load with ``torch.load(weights_only=True)``: plain tensors, numbers and strings only.

What a checkpoint holds:

* ``model``, ``ema`` — state dicts of the plain module (no DDP/compile prefixes);
* ``optimizer``, ``scaler`` — AdamW moments, fp16 loss-scale state;
* ``step`` (optimizer steps done), ``total_steps``, ``stage``;
* ``rng`` — ``{"world_size": W, "ranks": [per-rank states]}``: each rank's trainer
  generator, torch CPU RNG and (on GPUs) CUDA RNG state with the device type, gathered to
  rank 0. On resume each rank restores its own entry (a changed world size keeps fresh
  global RNGs, a changed device type a fresh trainer generator, and says so; the trainer's
  streams are re-keyed per micro-batch anyway, see :mod:`mdreg.rng`);
* ``data`` — the data-order position (epoch, batch within the epoch, samples seen). It is
  derived from ``step`` (:mod:`mdreg.engine.step`) and recorded for inspection.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from mdreg.engine.distributed import DistEnv, gather_objects
from mdreg.engine.parts import StageParts
from mdreg.errors import UserError
from mdreg.io import Interrupted, OutOfSpace, atomic_write, atomic_write_text, local_path

_NAME = re.compile(r"^step_(\d{8})\.pt$")
_DAMAGED = re.compile(r"^step_\d{8}\.pt\.damaged(\.\d+)?$")
REQUIRED = ("model", "ema", "optimizer", "step")  # what a training checkpoint must hold


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint file named ``step_NNNNNNNN.pt`` (-1 for any other name)."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else -1


def state_bytes(state) -> int:
    """Bytes of the distinct tensor storages in ``state`` (nested dicts/lists): a lower bound
    of the size ``torch.save`` writes."""
    seen: dict[int, int] = {}

    def walk(value):
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(state)
    return sum(seen.values())


class Checkpoint(dict):
    """A loaded checkpoint's state that remembers the file it came from (``path``), so that what
    reads it can name the file in its errors."""

    path: Path | None = None


def shape_mismatch(own: dict, theirs: dict, shown: int = 4) -> str | None:
    """What keeps the state dict ``theirs`` from loading into a module whose state dict is
    ``own``: ``2 tensor(s) of other shapes (pos_embed: file (1, 17, 64), model (1, 17, 32); ...),
    1 key(s) missing (...), 1 unexpected (...)``, the first ``shown`` keys of each; None when it fits."""
    reshaped = [f"{k}: file {tuple(theirs[k].shape)}, model {tuple(v.shape)}" for k, v in own.items()
                if k in theirs and hasattr(theirs[k], "shape") and tuple(theirs[k].shape) != tuple(v.shape)]
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]

    def listed(keys: list[str]) -> str:
        more = f"; +{len(keys) - shown} more" if len(keys) > shown else ""
        return "; ".join(keys[:shown]) + more

    parts = [f"{len(keys)} {label} ({listed(keys)})" for label, keys in
             (("tensor(s) of other shapes", reshaped), ("key(s) missing", missing), ("unexpected key(s)", unexpected))
             if keys]
    return ", ".join(parts) or None


def check_fits(module: torch.nn.Module, weights: dict, what: str, fix: str) -> None:
    """Raise a UserError when ``weights`` does not load into ``module`` (another model size or
    backbone): ``what`` names the file, ``fix`` says what to do; nothing is loaded."""
    mismatch = shape_mismatch(module.state_dict(), weights)
    if mismatch:
        raise UserError(f"{what} was written by another model (another model size or backbone): {mismatch}. "
                        f"Nothing was loaded. {fix}")


class UnreadableCheckpoint(Exception):
    """A checkpoint file that cannot be loaded; the message says why."""


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
        """Write ``state`` as the checkpoint of ``step``, point ``last`` at it, prune."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for pattern in (".step_*.tmp", ".last.*.tmp"):
            for stale in self.folder.glob(pattern):
                stale.unlink(missing_ok=True)
        name = checkpoint_name(step)
        try:
            path = atomic_write(self.folder / name, lambda fh: torch.save(state, fh), binary=True,
                                size=state_bytes(state))
            atomic_write_text(self.folder / "last", path.name + "\n")
        except OutOfSpace as exc:
            previous = self.pointed()
            kept = f"the previous checkpoint {previous.name} and 'last' are intact" if previous else \
                "no earlier checkpoint exists"
            if exc.name == "last":
                kept = f"{name} was written but 'last' still names the previous one; {kept}"
            raise OutOfSpace(f"out of space: cannot write the checkpoint {name} (step {step}) in {self.folder}: "
                             f"{exc.need}, {exc.free} on that file system. The temporary file is removed; {kept}. "
                             f"Free space there (or set train.output_root to another disk) and rerun the same "
                             f"command: it resumes from the last checkpoint", exc.folder, exc.name, exc.need,
                             exc.free) from None
        except Interrupted as exc:  # Ctrl-C: say what is on disk, and let the command exit 130
            previous = self.pointed()
            kept = f"'last' names {previous.name}, which is intact" if previous else "no earlier checkpoint exists"
            if exc.path.name == "last":
                kept = f"{name} was written but {kept}"
            else:
                kept = f"the partial file is removed; {kept}"
            raise Interrupted(f"while writing the checkpoint {name} (step {step}) in {self.folder}: {kept}. "
                              f"The same command resumes from the last checkpoint", exc.path) from None
        self._prune(step)
        return path

    def _prune(self, newest: int) -> None:
        kept = set(self.steps()[-self.keep_last:]) | {newest}
        for step in self.steps():
            milestone = self.milestone_every and step % self.milestone_every == 0
            if step not in kept and not milestone:
                (self.folder / checkpoint_name(step)).unlink(missing_ok=True)

    def pointed(self) -> Path | None:
        """The existing step file ``last`` names (None if the pointer is missing, garbled or stale)."""
        try:
            name = (self.folder / "last").read_bytes().decode("utf-8", "replace").strip()
        except OSError:
            return None
        return self.folder / name if _NAME.match(name) and (self.folder / name).is_file() else None

    def latest(self) -> Path | None:
        """The checkpoint ``last`` names (or the newest step file if the pointer is gone)."""
        pointed = self.pointed()
        if pointed is not None:
            return pointed
        steps = self.steps()
        return self.folder / checkpoint_name(steps[-1]) if steps else None

    def candidates(self) -> list[Path]:
        """Where a resume looks, in order: the file ``last`` names, then the step files newest first."""
        first = self.pointed()
        rest = [self.folder / checkpoint_name(s) for s in reversed(self.steps())]
        return ([first] if first else []) + [p for p in rest if p != first]

    def damaged(self) -> list[Path]:
        """Checkpoints set aside as unreadable (``step_*.pt.damaged[.N]``), sorted by name."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _DAMAGED.match(p.name))

    def set_aside(self, path: Path) -> Path | None:
        """Rename the unreadable ``path`` to ``NAME.damaged`` (``.damaged.2``, ... when taken);
        None if it is gone."""
        target, n = path.with_name(path.name + ".damaged"), 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.damaged.{n}")
        try:
            path.rename(target)
        except FileNotFoundError:
            return None
        return target

    def point_to(self, path: Path) -> None:
        """Make ``last`` name ``path`` (after falling back past unreadable files)."""
        atomic_write_text(self.folder / "last", path.name + "\n")


def read_checkpoint(path: Path) -> dict:
    """Load a training checkpoint; :class:`UnreadableCheckpoint` says why it cannot be."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise UnreadableCheckpoint("empty file (0 bytes)")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UnreadableCheckpoint("the file is gone (renamed or removed by another process)") from None
    except UnreadableCheckpoint:
        raise
    except OSError as exc:
        raise UnreadableCheckpoint(f"cannot be opened ({exc.strerror or exc})") from None
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for broken files
        try:
            with open(path, "rb") as fh:
                zipped = fh.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        except OSError:
            zipped = True
        if not zipped:
            raise UnreadableCheckpoint(f"not a torch checkpoint: {size} bytes that do not start with the zip header "
                                       f"torch.save writes") from None
        first = re.split(r"(?<=\.) ", str(exc).strip())[0][:160]
        raise UnreadableCheckpoint(f"truncated or corrupt: {size} bytes, torch.load fails "
                                   f"({type(exc).__name__}: {first})") from None
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise UnreadableCheckpoint(f"loads but is not a training checkpoint (no {', '.join(missing)})")
    state = Checkpoint(state)
    state.path = path
    return state


def resume_point(manager: CheckpointManager, is_main: bool) -> tuple[Path | None, dict | None, list[dict]]:
    """The newest checkpoint every rank can read: ``(path, state, skipped)``, or
    ``(None, None, [])`` when the folder holds none. A collective (every rank calls it):
    rank 0 lists the candidates, each rank loads the next one, and the file is used only
    if all ranks read it (a rank that finds a file gone counts it unreadable). Rank 0 then
    renames the files it could not read aside and repoints ``last``; ``skipped`` holds one
    ``{"path", "reason", "kept_as"}`` per file. Raises UserError if none reads."""
    names = gather_objects([p.name for p in manager.candidates()] if is_main else None)[0]
    skipped: list[dict] = []
    for name in names:
        path = manager.folder / name
        try:
            state, reason = read_checkpoint(path), None
        except UnreadableCheckpoint as exc:
            state, reason = None, str(exc)
        reasons = [(rank, why) for rank, why in enumerate(gather_objects(reason)) if why]
        if not reasons:
            for entry in skipped:  # a file rank 0 reads stays in place (another rank's view failed)
                if entry.pop("damaged") and is_main and (kept := manager.set_aside(Path(entry["path"]))):
                    entry["kept_as"] = str(kept)
            if is_main and skipped:
                manager.point_to(path)
            return path, state, skipped
        rank, why = reasons[0]
        skipped.append({"path": str(path), "reason": why if rank == 0 else f"unreadable on rank {rank}: {why}",
                        "kept_as": None, "damaged": rank == 0})
    if skipped:
        listing = "; ".join(f"{Path(s['path']).name}: {s['reason']}" for s in skipped)
        raise UserError(f"{manager.folder} holds {len(skipped)} checkpoint(s) but none can be read ({listing}). "
                        f"Nothing was renamed or deleted. Put a good copy back into that folder to resume, or move "
                        f"these files elsewhere to train the stage from its start (its progress would be lost)")
    return None, None, []


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint (a local path or an iopath URI, :mod:`mdreg.io`) safely
    (``weights_only=True``), with a clear error if unreadable."""
    path = local_path(path, "checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as exc:
        raise UserError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                        f"it may be truncated or not a torch checkpoint") from None


def rank_rng_state(generator: torch.Generator, device: torch.device) -> dict:
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(), "device": device.type,
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def data_position(step: int, global_batch: int, dataset_size: int, seed: int) -> dict:
    per_epoch = max(1, dataset_size // global_batch)
    epoch, within = divmod(step, per_epoch)
    return {"seed": seed, "global_batch": global_batch, "dataset_size": dataset_size, "epoch": epoch,
            "batch_in_epoch": within, "samples_seen": step * global_batch}


def collect_state(parts: StageParts, step: int) -> dict:
    """The checkpoint of ``parts`` after ``step`` optimizer steps (a collective: every rank calls it)."""
    ranks = gather_objects(rank_rng_state(parts.generator, parts.device))
    return {"model": parts.model.state_dict(), "ema": parts.ema.state_dict(),
            "optimizer": parts.optimizer.state_dict(), "scaler": parts.precision.scaler.state_dict(),
            "step": step, "total_steps": parts.stage.steps, "schedule_steps": parts.stage.schedule_steps,
            "stage": parts.name,
            "rng": {"world_size": len(ranks), "ranks": ranks},
            "data": data_position(step, parts.stage.batch_size, len(parts.dataset), parts.stage.seed)}


def restore_state(parts: StageParts, state: dict, env: DistEnv) -> tuple[int, list[str]]:
    """Load ``state`` into ``parts`` for the process ``env``; returns (step, notes worth logging).
    A checkpoint of another model (size or backbone) is a UserError naming the file and the
    mismatching keys and shapes, before anything is loaded."""
    path = getattr(state, "path", None)
    what = f"the checkpoint {path}" if path else "the checkpoint"
    for key, module in (("model", parts.model), ("ema", parts.ema.model)):
        check_fits(module, state[key], f"{what} ({key} weights) does not fit the model of stage {parts.name!r}: it",
                   f"Was a backup of another run restored into this one? Put this run's own checkpoint in its place "
                   f"(or move the file aside to resume from an older one); the config of the run it belongs to is "
                   f"in that run's config.yaml")
    parts.model.load_state_dict(state["model"])
    parts.ema.load_state_dict(state["ema"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.precision.scaler.load_state_dict(state["scaler"])
    step = int(state["step"])
    ranks = state["rng"]["ranks"]
    if len(ranks) != env.world_size:
        return step, [f"the checkpoint was written by {len(ranks)} rank(s), this run has {env.world_size}: "
                      f"global RNG states are not restored (the trainer's per-micro-batch streams are unaffected)"]
    mine = ranks[env.rank]
    torch.set_rng_state(mine["torch"].cpu())
    saved_on = mine.get("device") or ("cuda" if mine.get("cuda") is not None else "cpu")
    if saved_on != parts.device.type:  # a CPU generator's state does not fit a CUDA one, and back
        return step, [f"the checkpoint was written on {saved_on}, this run is on {parts.device.type}: the "
                      f"trainer's {parts.device.type} generator state is not restored (its per-micro-batch "
                      f"streams are unaffected)"]
    parts.generator.set_state(mine["generator"].cpu())
    if mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"].cpu(), parts.device)
    return step, []


def find_checkpoint(path: str | Path, what: str = "checkpoint") -> tuple[Path, str]:
    """The checkpoint file that ``path`` stands for, and how it was found: a checkpoint file as
    it is; a ``last`` pointer, the file it names; a ``checkpoints/`` folder, its newest; a stage
    folder, its newest checkpoint; a run directory (with ``config.yaml``), its last stage's newest.
    ``what`` names the path in errors (``stages.finetune.init_from``)."""
    path = Path(path)
    if path.is_file() and path.name != "last":
        return path, "file"
    if path.name == "last" and path.is_file():
        named = CheckpointManager(path.parent).pointed()
        if named is None:
            raise UserError(f"{what}: {path} is a `last` pointer that names no checkpoint in {path.parent}")
        return named, f"named by {path}"
    if path.is_dir():
        if (path / "config.yaml").is_file() and not (path / "checkpoints").is_dir():
            from mdreg.config.serialize import (
                load_config,  # a run directory: its stages, in order
            )

            stages = [s for s in load_config(path / "config.yaml").get("stages", {}).keys() if (path / s).is_dir()]
            if stages:
                found, _ = find_checkpoint(path / stages[-1], what)
                return found, f"the newest checkpoint of stage {stages[-1]!r} of the run {path}"
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        latest = CheckpointManager(folder).latest()
        if latest is not None:
            return latest, f"the newest checkpoint in {folder}"
        raise UserError(f"{what}: {path} holds no checkpoint (step_*.pt); give a checkpoint file, a `last` pointer, "
                        f"a checkpoints folder, a stage folder or a run directory")
    raise UserError(f"{what}: {path} does not exist")
