"""``--dry-run --cluster slurm``: the sbatch scripts, array expansion and dependency graph,
with no cluster (and no GPUs) needed and nothing written; errors before submission."""
from __future__ import annotations

import re
import shutil
import textwrap

import pytest


@pytest.mark.parametrize("nodes", [1, 4])
def test_multi_node_gpu_scripts(tmp_path, launch, nodes):
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", f"launch.slurm.nodes={nodes}",
                       "launch.slurm.gpus_per_node=8", "--cluster", "slurm", "--dry-run")
    assert code == 0
    scripts = out.split("#!/bin/bash")[1:]
    assert len(scripts) == 2  # pretrain, finetune
    for script in scripts:
        assert f"#SBATCH --nodes={nodes}" in script and "#SBATCH --gpus-per-node=8" in script
        assert "#SBATCH --gpu-bind=per_task:1" in script
        assert "#SBATCH --ntasks-per-node=8" in script and "#SBATCH --requeue" in script
        assert "-m submitit.core._submit" in script
    assert "#SBATCH --dependency='afterok:<id of job 1>'" in scripts[1]
    assert "[2] quickstart.finetune: job, stages finetune  <- after [1] completes successfully (afterok)" in out
    assert not tmp_path.joinpath("quickstart").exists()  # nothing written, nothing submitted


def test_sweep_is_two_arrays_chained_element_wise(tmp_path, launch):
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "train.seed=1,2,3",
                       "--cluster", "slurm", "--array-parallelism", "2", "--dry-run")
    assert code == 0
    assert out.count("#SBATCH --array=0-2%2") == 2
    assert "#SBATCH --dependency='aftercorr:<id of job 1>'" in out
    for seed in (1, 2, 3):
        assert re.search(rf"\[{seed - 1}\] \S+/quickstart/seed-{seed}  train.seed={seed}", out)


def test_single_job_runs_all_stages(tmp_path, launch):
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "--cluster", "slurm",
                       "--single-job", "--dry-run")
    assert code == 0 and out.count("#!/bin/bash") == 1 and "stages pretrain, finetune" in out


def test_sweep_elements_need_the_same_resources(tmp_path, launch):
    """A sweep is one array with one set of resources. (Swept on the command line, elements that
    differ only in launch.* would also share a run directory: that is refused first.)"""
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "launch.slurm.nodes=1,2",
                       "--cluster", "slurm", "--dry-run")
    assert code == 2 and "differ only in launch.slurm.nodes" in out
    shutil.copytree("recipes", tmp_path / "recipes")
    recipe = tmp_path / "recipes" / "two_sizes.py"
    recipe.write_text((tmp_path / "recipes" / "quickstart.py").read_text() + textwrap.dedent("""
        sweep = [dict(_name_="small", **{"launch.slurm.nodes": 1}), dict(_name_="big", **{"launch.slurm.nodes": 2})]
    """))
    code, out = launch(str(recipe), f"train.output_root={tmp_path}", "--cluster", "slurm", "--dry-run")
    assert code == 2 and "asks for other Slurm resources (launch.slurm.nodes)" in out


def test_invalid_sweep_syntax_is_an_error_before_submission(tmp_path, launch):
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "train.seed=range(1,",
                       "--cluster", "slurm")
    assert code == 2 and "is not valid override syntax" in out
    assert not tmp_path.joinpath("quickstart").exists()


def test_missing_sbatch_is_a_clear_error(tmp_path, launch, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Slurm client tools here
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "--cluster", "slurm")
    assert code == 2 and "sbatch, srun, sinfo, sacct are not on PATH" in out and "--dry-run" in out
    assert not tmp_path.joinpath("quickstart").exists()


def test_status_of_a_folder_without_runs(tmp_path, launch):
    code, out = launch("--status", tmp_path)
    assert code == 2 and "neither a run directory (with config.yaml) nor a folder of runs nor a recipe file" in out


def test_a_typo_in_launch_slurm_is_reported_by_the_slurm_dry_run_and_ignored_locally(tmp_path, launch):
    """A local run reads nothing of launch.slurm (and imports nothing Slurm-only)."""
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "+launch.slurm.gpu=1", "--dry-run")
    assert code == 0 and "launch.slurm.gpu" not in out.split("# plan")[1]
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "+launch.slurm.gpu=1", "--dry-run",
                       "--cluster", "slurm")
    assert code == 2 and "launch.slurm.gpu is not a Slurm setting" in out


def test_the_global_batch_must_split_over_the_tasks(tmp_path, launch):
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "--cluster", "slurm",
                       "--gpus-per-node", "3", "--dry-run")
    assert code == 2 and "stages.pretrain.batch_size=64 is the global batch and must be divisible by world size 3 " \
                         "(1 node(s) x 3 task(s) per node" in out
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "stages.pretrain.grad_accum=8",
                       "--cluster", "slurm", "--gpus-per-node", "8", "--nodes", "2", "--dry-run")
    assert code == 2 and "world size 16 (2 node(s) x 8 task(s) per node, one per GPU; set --nodes / " \
                         "--gpus-per-node) x stages.pretrain.grad_accum 8 = 128" in out


def test_flags_fix_what_the_recipe_gets_wrong(tmp_path, launch):
    """A recipe value that a flag replaces is not held against the command (the flag wins)."""
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "launch.slurm.timeout_min=1",
                       "--cluster", "slurm", "--time", "60", "--dry-run")
    assert code == 0 and "#SBATCH --time=60" in out
