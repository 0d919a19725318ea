"""Ctrl-C while a checkpoint is being written: a real launch (a subprocess) gets SIGINT while
torch.save is inside the temporary file. It ends with "interrupted while writing the
checkpoint ...", exit status 130 and no traceback (torch's zip writer used to turn the
KeyboardInterrupt into ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``),
the partial file is removed, every earlier file is byte for byte what it was, and the same
command resumes from the last checkpoint.

The write is caught for real: the test watches the checkpoints folder, freezes the launch
(SIGSTOP) the moment a ``.step_*.tmp`` file appears, and sends SIGINT only if, frozen, the
temporary file is still there and partly written (fewer bytes than a full checkpoint);
otherwise it lets the process go on and waits for the next checkpoint."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from mdreg.runs.plan import run_name_for
from tests.conftest import REPO

# About 50 MB per checkpoint (model, EMA, two AdamW moments): torch.save takes long enough to be caught inside.
BIG = ["model.embed_dim=256", "model.depth=4", "model.num_heads=4"]
STEPS = 6


def _launch(recipe) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "tools" / "launch.py"), str(recipe), *BIG], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".tmp")}


def _size(path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _interrupt_inside_a_checkpoint_write(proc, folder) -> tuple[str, dict[str, str]]:
    """SIGINT ``proc`` while it is inside torch.save of a checkpoint in ``folder``; returns
    the temporary file's name and the digests of the stage folder's other files at that moment."""
    full = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        if full is None and "step_00000001.pt" in names:
            full = (folder / "step_00000001.pt").stat().st_size
        tmp = [n for n in names if n.startswith(".step_") and n.endswith(".tmp")]
        if not tmp or full is None or not 0 < _size(folder / tmp[0]) < full:
            continue
        proc.send_signal(signal.SIGSTOP)
        if 0 < _size(folder / tmp[0]) < full:  # frozen inside torch's zip writer
            before = _digests(folder.parent)
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGCONT)
            return tmp[0], before
        proc.send_signal(signal.SIGCONT)  # it got past its tensors meanwhile: wait for the next one
    raise AssertionError(f"no checkpoint write was caught (exit {proc.poll()})")


@pytest.mark.slow
def test_ctrl_c_inside_a_checkpoint_write_says_interrupted_and_keeps_every_file(recipe_factory):
    recipe = recipe_factory(steps=STEPS, ckpt_every=1, log_every=1)
    run_dir = recipe.parent / "runs" / recipe.stem / run_name_for(sorted(BIG))
    folder = run_dir / "main" / "checkpoints"
    proc = _launch(recipe)
    tmp, before = _interrupt_inside_a_checkpoint_write(proc, folder)
    out, err = proc.communicate(timeout=120)
    print(out, err)
    step = int(re.search(r"step_(\d+)", tmp).group(1))
    assert proc.returncode == 130
    assert "Traceback" not in err and "unexpected pos" not in err
    assert err.strip().splitlines()[-1] == (
        f"interrupted while writing the checkpoint step_{step:08d}.pt (step {step}) in {folder}: the partial file is "
        f"removed; 'last' names step_{step - 1:08d}.pt, which is intact. The same command resumes from the last "
        f"checkpoint")
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert not (folder / f"step_{step:08d}.pt").exists()
    after = _digests(run_dir / "main")
    for name, digest in before.items():  # metrics.jsonl and the events may only grow
        if name.startswith("checkpoints/"):
            assert after[name] == digest, name
    assert {name for name in after if name.startswith("checkpoints/")} == \
        {name for name in before if name.startswith("checkpoints/")}
    kept = sorted(folder.glob("step_*.pt"))
    assert kept and kept[-1].name == f"step_{step - 1:08d}.pt"
    for path in kept:  # keep_last=2: the two before the interrupted one, each loadable
        assert torch.load(path, weights_only=True)["step"] == int(path.stem[5:])

    again = _launch(recipe)
    out, err = again.communicate(timeout=300)
    print(out, err)
    assert again.returncode == 0, err
    assert f"resumed from {folder / f'step_{step - 1:08d}.pt'} (step {step - 1}/{STEPS})" in out
    assert torch.load(folder / f"step_{STEPS:08d}.pt", weights_only=True)["step"] == STEPS
