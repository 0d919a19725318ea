"""A full disk while writing a checkpoint, a config, metrics or a sample grid: one OutOfSpace
error naming the folder and the sizes, nothing earlier lost, and the same command resumes
once space is freed. Each test mounts a small tmpfs (root) and fills it with a ballast file."""
from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from mdreg.io import OutOfSpace, atomic_write_text
from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint
from mdreg.engine.monitor import Monitor
from mdreg.engine.sampling import save_grid
from tests.conftest import trainer_for, build_plan, final_state, make_trainer, tiny_recipe
from tests.engine.tmpfs import fill, needs_root, small_tmpfs
from tests.tiny import launch

pytestmark = needs_root
RUN = dict(steps=6, ckpt_every=2, log_every=2, masker="patch", ratio=0.5, objective="mdsm", hflip=0.5)


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _free_in(message: str) -> int:
    return int(re.search(r"(\d+) bytes\)? free", message).group(1))


def _recipe(folder, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    return tiny_recipe(folder, **kw)


def test_a_checkpoint_that_does_not_fit_is_refused_and_the_run_resumes_once_space_is_freed(tmp_path):
    reference = make_trainer(_recipe(tmp_path / "ref", **RUN))
    reference.fit()
    mount = tmp_path / "disk"
    with small_tmpfs(mount, "8m"):
        recipe = _recipe(tmp_path / "full", root=str(mount), **RUN)
        trainer = make_trainer(recipe)
        folder = trainer.dir / "checkpoints"
        seen = {}
        step_fn = trainer.train_step

        def stepping(x, y):
            out = step_fn(x, y)
            if trainer.step == 3:  # step 2's checkpoint is on disk: fill the disk, 64 kB stay free
                seen["before"] = _files(folder)
                seen["ballast"] = fill(mount, leave=64_000)
            return out
        trainer.train_step = stepping
        with pytest.raises(OutOfSpace) as info:
            trainer.fit()
        message = str(info.value)
        print(message)
        size = len((folder / "step_00000002.pt").read_bytes())
        assert message.startswith(f"out of space: cannot write the checkpoint step_00000004.pt (step 4) in {folder}: "
                                  f"it needs about {size / 1e6:.1f} MB, ")
        assert 0 < _free_in(message) < 100_000
        assert "the previous checkpoint step_00000002.pt and 'last' are intact" in message
        assert _files(folder) == seen["before"]  # no temporary file, step 2 and 'last' byte for byte
        assert (folder / "last").read_text() == "step_00000002.pt\n"

        seen["ballast"].unlink()  # space freed: the same command resumes from step 2
        resumed = make_trainer(recipe)
        assert resumed.fit()["complete"] and resumed.step == 6
        ref, got = final_state(reference), final_state(resumed)
        assert all(torch.equal(ref[k], got[k]) for k in ref)
        assert all(torch.equal(a, b) for a, b in zip(reference.parts.ema.model.state_dict().values(),
                                                     resumed.parts.ema.model.state_dict().values()))


def test_a_disk_that_fills_while_torch_writes_removes_the_temporary_file(tmp_path):
    """The state's tensors fit the free space, its 3 MB string does not: the write itself fails."""
    with small_tmpfs(tmp_path / "disk", "2m") as mount:
        manager = CheckpointManager(mount / "checkpoints")
        manager.save({"model": {"w": torch.ones(8)}, "step": 2}, 2)
        before = _files(manager.folder)
        with pytest.raises(OutOfSpace) as info:
            manager.save({"model": {"w": torch.ones(8)}, "step": 4, "note": "x" * 3_000_000}, 4)
        message = str(info.value)
        print(message)
        written = float(re.search(r"more than the ([\d.]+) MB written before the disk filled", message).group(1))
        assert f"cannot write the checkpoint step_00000004.pt (step 4) in {manager.folder}: it needs more " in message
        assert 1.5 < written < 2.2 and _free_in(message) < 2_100_000  # the free bytes after the cleanup
        assert _files(manager.folder) == before
        assert load_checkpoint(manager.latest())["step"] == 2


def test_config_yaml_on_a_full_disk_is_one_error_line_and_the_same_command_then_runs(tmp_path):
    with small_tmpfs(tmp_path / "disk", "4m") as mount:
        recipe = tiny_recipe(tmp_path, root=str(mount), steps=2)
        ballast = fill(mount)
        out = launch(recipe)
        print(out.stdout, out.stderr)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        run_dir = mount / "tiny" / "default"
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: out of space: cannot write config.yaml in {run_dir}: it needs ")
        assert "Nothing was replaced (the temporary file is removed" in last
        assert not run_dir.exists()  # a failed first start leaves no half-made run directory
        ballast.unlink()
        again = launch(recipe)
        assert again.returncode == 0, again.stderr
        assert (run_dir / "main" / "checkpoints" / "step_00000002.pt").is_file()


def test_a_replaced_yaml_keeps_its_old_content_when_the_new_one_does_not_fit(tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as mount:
        atomic_write_text(mount / "meta.yaml", "recipe: a.py\n")
        fill(mount)
        with pytest.raises(OutOfSpace, match=r"cannot write meta.yaml in .*disk: it needs about 0.2 MB, 0 bytes free"):
            atomic_write_text(mount / "meta.yaml", "x" * 200_000 + "\n")
        assert (mount / "meta.yaml").read_text() == "recipe: a.py\n"
        assert sorted(p.name for p in mount.iterdir()) == ["ballast", "meta.yaml"]


def test_metrics_on_a_full_disk_raise_and_every_line_written_stays_readable(tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as mount:
        monitor = Monitor(mount / "main", "main", total_steps=10)
        monitor.event({"event": "start", "step": 0})
        ballast = fill(mount)
        with pytest.raises(OutOfSpace) as info:
            for step in range(100_000):
                monitor.event({"event": "note", "step": step, "text": "y" * 100})
        message = str(info.value)
        print(message)
        assert message.startswith(f"out of space: cannot write metrics.jsonl in {mount / 'main'}: it needs ")
        assert "The logs written so far are kept" in message
        ballast.unlink()
        again = Monitor(mount / "main", "main", total_steps=10)  # what a resumed run opens
        again.event({"event": "resume", "step": 0})
        again.close()
        rows = [json.loads(line) for line in (mount / "main" / "metrics.jsonl").read_text().splitlines()]
        assert rows[0]["event"] == "start" and rows[-1]["event"] == "resume"
        assert [r["step"] for r in rows[1:-1]] == list(range(len(rows) - 2))


def test_a_sample_grid_on_a_full_disk_leaves_the_earlier_png_intact(tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as mount:
        path = mount / "samples" / "step_00000002.png"
        save_grid(torch.zeros(4, 3, 8, 8), path)
        before = path.read_bytes()
        fill(mount)
        noise = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with pytest.raises(OutOfSpace, match=rf"cannot write step_00000002.png in {path.parent}: it needs more"):
            save_grid(noise, path)
        assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]
        with Image.open(path) as image:
            image.verify()


def _rank(rank: int, recipe: str, port: int, mount: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from mdreg.engine.distributed import setup
    from mdreg.engine.trainer import Trainer
    from mdreg.errors import UserError
    from mdreg.runs.plan import build_plans

    env = setup("cpu", timeout_s=60)  # without the agreement rank 1 would wait here for rank 0
    plan = build_plans(recipe, [])[0]
    trainer = trainer_for(plan, "main", env)
    step_fn = trainer.train_step

    def stepping(x, y):
        result = step_fn(x, y)
        if trainer.step == 3 and rank == 0:
            fill(Path(mount), leave=64_000)
        return result
    trainer.train_step = stepping
    try:
        trainer.fit()
        outcome = "finished"
    except UserError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    Path(out, f"rank{rank}.txt").write_text(f"{trainer.step}\n{outcome}")
    torch.distributed.destroy_process_group()


def test_every_rank_stops_when_rank_0_cannot_write_the_checkpoint(tmp_path):
    with small_tmpfs(tmp_path / "disk", "8m") as mount:
        recipe = _recipe(tmp_path / "r", root=str(mount), **RUN)
        build_plan(recipe)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.start_processes(_rank, args=(str(recipe), port, str(mount), str(tmp_path)), nprocs=2,
                           start_method="fork", join=True)
        rank0, rank1 = ((tmp_path / f"rank{r}.txt").read_text().split("\n", 1) for r in (0, 1))
        assert rank0[0] == rank1[0] == "4"
        assert rank0[1].startswith("OutOfSpace: out of space: cannot write the checkpoint step_00000004.pt (step 4)")
        assert rank1[1] == ("UserError: stage 'main': rank 0 could not write the checkpoint of step 4 (its error is "
                            "in rank 0's output); this rank stops too")
        folder = mount / "tiny" / "default" / "main" / "checkpoints"
        assert sorted(p.name for p in folder.iterdir()) == ["last", "step_00000002.pt"]
