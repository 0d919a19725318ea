"""A real Slurm job's newest checkpoint is truncated (a disk or copy fault) before the run
is relaunched: the relaunch resubmits the stage (its final checkpoint is no longer whole),
the job sets the file aside and resumes from the one before, and ``--status`` shows what was
set aside and why."""
from __future__ import annotations

import pytest
import torch

from tests.slurm.slurm_helpers import SMALL_JOB, TINY, recorded_jobs, sacct

pytestmark = pytest.mark.slurm


def test_status_shows_the_checkpoint_a_resume_set_aside(tmp_path, launch):
    args = ["recipes/quickstart.py", *TINY, "train.max_steps=3", "train.ckpt_every=1", f"train.output_root={tmp_path}",
            "train.run_name=damaged", "--stages", "pretrain", "--cluster", "slurm", *SMALL_JOB]
    assert launch(*args, "--wait")[0] == 0
    run = tmp_path / "quickstart" / "damaged"
    folder = run / "pretrain" / "checkpoints"
    newest = folder / "step_00000003.pt"
    original = torch.load(newest, weights_only=True)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated

    code, out = launch(*args, "--wait")
    assert code == 0, out
    (job,) = recorded_jobs(run)
    assert sacct(job["job_id"])[-1]["State"] == "COMPLETED"
    aside = folder / "step_00000003.pt.damaged"
    assert aside.read_bytes() == data[: len(data) // 2]  # kept as it was, not deleted
    again = torch.load(newest, weights_only=True)  # step 3 redone from step 2: the same weights
    for part in ("model", "ema"):
        assert all(torch.equal(original[part][k], again[part][k]) for k in original[part]), part

    code, out = launch("--status", run)
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert f"pretrain: 1 damaged checkpoint(s) set aside in {folder}: step_00000003.pt.damaged" in lines, out
    skipped = [line for line in lines if line.startswith(f"pretrain: resume skipped {newest}: ")]
    assert len(skipped) == 1, out
    assert f"truncated or corrupt: {len(data) // 2} bytes, torch.load fails" in skipped[0]
    assert skipped[0].endswith("(kept as step_00000003.pt.damaged)")
    print("\n".join(line for line in lines if line.startswith("pretrain:")))
