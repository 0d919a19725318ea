"""A 3-element sweep of the two-stage quickstart: two job arrays, element-wise (aftercorr)."""
from __future__ import annotations

import pytest

from mdreg.config import load_config
from tests.slurm.slurm_helpers import SMALL_JOB, TINY, dry_run_scripts, recorded_jobs, sacct, submitted_script

pytestmark = pytest.mark.slurm


def test_sweep_is_one_array_per_stage_with_per_element_run_dirs(tmp_path, launch):
    args = ["recipes/quickstart.py", *TINY, f"train.output_root={tmp_path}", "train.run_name=sw", "train.seed=1,2,3",
            "--cluster", "slurm", *SMALL_JOB, "--array-parallelism", "2"]
    code, out = launch(*args, "--wait")
    assert code == 0
    runs = [tmp_path / "quickstart" / f"sw+seed-{s}" for s in (1, 2, 3)]
    pretrain, finetune = set(), set()
    for i, run in enumerate(runs):
        assert load_config(run / "config.yaml").train.seed == i + 1  # each element its own config
        first, second = recorded_jobs(run)
        assert first["job_id"].endswith(f"_{i}") and second["job_id"].endswith(f"_{i}")
        pretrain.add(first["job_id"].split("_")[0])
        finetune.add(second["job_id"].split("_")[0])
        a, b = sacct(first["job_id"])[-1], sacct(second["job_id"])[-1]
        assert a["State"] == b["State"] == "COMPLETED"
        assert b["Start"] >= a["End"], (i, a, b)  # element i of stage 2 after element i of stage 1
        assert (run / "finetune" / "checkpoints" / "step_00000002.pt").is_file()
    assert len(pretrain) == len(finetune) == 1  # one array per stage
    folder = tmp_path / "quickstart" / "slurm-logs"
    script = (folder / f"{finetune.pop()}_submission.sh").read_text()
    assert "#SBATCH --array=0-2%2" in script and f"#SBATCH --dependency=aftercorr:{pretrain.pop()}" in script
    code, out = launch("--status", tmp_path / "quickstart")  # a recipe folder: every element
    assert code == 0 and out.count("COMPLETED") == 6
    code, out = launch(*args, "--dry-run")  # renders the arrays' scripts exactly as submitit wrote them
    scripts = dry_run_scripts(out)
    assert code == 0 and len(scripts) == 2
    for job, script in zip(recorded_jobs(runs[0]), scripts):
        written, expected = submitted_script(folder, job, script)
        assert written == expected
