"""Damaged or edited run directories, relaunched: a config.yaml cut short, a config.yaml deleted
(with the recipe edited, and without), a meta.yaml that is not YAML, and a stage whose every
checkpoint was deleted. Each relaunch either stops with one error that names the file and
what to do, or recovers and says so; the run directory is byte for byte what it was."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, make_trainer, tiny_recipe

RUN = dict(steps=4, ckpt_every=2, log_every=1)


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(tmp_path, launch):
    """(recipe, run directory) of a finished tiny run."""
    recipe = tiny_recipe(tmp_path, **RUN)
    code, out = launch(recipe)
    assert code == 0, out
    return recipe, tmp_path / "runs" / "tiny" / "default"


def _one_error(code: int, out: str) -> str:
    assert code == 2 and "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    return errors[0]


@pytest.mark.parametrize("cut", [300, -90], ids=["not-yaml", "valid-yaml-cut-short"])
def test_a_config_yaml_cut_short_is_called_damaged_and_names_the_stage_copy(trained, launch, cut):
    recipe, run = trained
    whole = (run / "config.yaml").read_bytes()
    (run / "config.yaml").write_bytes(whole[:cut])
    before = _digests(run)
    error = _one_error(*launch(recipe))
    damage = "not valid YAML (could not find expected ':' at line " if cut > 0 else \
        f"it is cut short ({len(whole) + cut} bytes; its copy {run / 'main' / 'config.yaml'} has {len(whole)} and " \
        f"begins with the same bytes)"
    assert error.startswith(f"error: {run / 'config.yaml'} is damaged: {damage}"), error
    assert "different config" not in error
    assert error.endswith(f"Each stage folder holds a copy of the run's config: restore it with "
                          f"`cp {run / 'main' / 'config.yaml'} {run / 'config.yaml'}` and rerun the same command")
    assert _digests(run) == before

    shutil.copy(run / "main" / "config.yaml", run / "config.yaml")  # what the message says
    code, out = launch(recipe)
    assert code == 0 and "already complete (4/4 steps)" in out, out
    assert (run / "config.yaml").read_bytes() == whole


def test_a_deleted_config_yaml_is_compared_with_the_stage_copy_and_restored_when_the_same(trained, launch):
    recipe, run = trained
    whole = (run / "config.yaml").read_bytes()
    (run / "config.yaml").unlink()
    before = _digests(run)
    # the recipe edited (lr 2e-3 on checkpoints trained at 1e-3), the run named as before
    error = _one_error(*launch(recipe, "stages.main.optimizer.lr=2e-3", "train.run_name=default"))
    assert error == (f"error: {run} already holds a run with a different config (stages.main.optimizer.lr: 0.001 -> "
                     f"0.002) (config.yaml is missing; compared with its copy {run / 'main' / 'config.yaml'}). Nothing "
                     f"was changed. Start a new run with train.run_name=NEW_NAME, or restore the recipe to resume "
                     f"this one")
    assert _digests(run) == before  # meta.yaml included: not rewritten

    code, out = launch(recipe)  # the recipe as it was: config.yaml comes back, meta.yaml stays
    assert code == 0, out
    assert (f"{run}: config.yaml was missing; restored from {run / 'main' / 'config.yaml'} (the same config)"
            in out)
    assert (run / "config.yaml").read_bytes() == whole
    assert _digests(run) == {**before, "config.yaml": hashlib.sha256(whole).hexdigest()}


def test_config_yaml_and_every_copy_gone_with_checkpoints_left_is_refused(trained, launch):
    recipe, run = trained
    (run / "config.yaml").unlink()
    (run / "main" / "config.yaml").unlink()
    before = _digests(run)
    error = _one_error(*launch(recipe))
    assert error.startswith(f"error: {run / 'config.yaml'} is missing and no stage folder holds a readable copy, but "
                            f"{run / 'main'} hold(s) training output: nothing tells whether this recipe is the one")
    assert _digests(run) == before


def test_report_on_a_meta_yaml_that_is_not_yaml_is_one_error_line(trained):
    _, run = trained
    (run / "meta.yaml").write_text("recipe: [recipes/quickstart.py\noverrides: {\n")
    before = _digests(run)
    out = subprocess.run([sys.executable, str(REPO / "tools" / "report.py"), str(run), "--out", str(run.parent / "r")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == (
        f"error: {run / 'meta.yaml'} is not valid YAML (ParserError: while parsing a flow sequence); restore it from "
        f"a backup, or delete it (it records how the run was made, not what it trained)")
    assert _digests(run) == before


def test_launch_diff_reads_meta_yaml_through_read_meta(trained, launch):
    _, run = trained
    (run / "meta.yaml").write_text("provenance: {a: [\n")
    error = _one_error(*launch("--diff", run, run))
    assert error.startswith(f"error: {run / 'meta.yaml'} is not valid YAML (")


def test_a_stage_whose_checkpoints_were_all_deleted_is_refused_not_retrained(trained, launch, tmp_path):
    recipe, run = trained
    folder = run / "main" / "checkpoints"
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in folder.glob("step_*.pt"):  # `last` and metrics.jsonl stay, naming step 4
        shutil.move(path, kept / path.name)
    before = _digests(run)
    error = _one_error(*launch(recipe))
    assert error == (f"error: stage 'main' of {run}: its records say it reached step 4 ('last' names step_00000004.pt; "
                     f"{run / 'main' / 'metrics.jsonl'} logs step 4), but {folder} holds no checkpoint. Nothing was "
                     f"changed. Put the checkpoints back into that folder to resume, or move the stage folder aside "
                     f"(mv {run / 'main'} {run / 'main'}.old) to train the stage again from step 0")
    assert _digests(run) == before

    shutil.rmtree(folder)  # `last` gone too: metrics.jsonl alone still says so
    error = _one_error(*launch(recipe))
    assert f"its records say it reached step 4 ({run / 'main' / 'metrics.jsonl'} logs step 4), but its checkpoints " \
           f"folder {folder} is gone" in error

    folder.mkdir()
    for path in kept.iterdir():  # put back: nothing to do, the stage is complete
        shutil.move(path, folder / path.name)
    (folder / "last").write_text("step_00000004.pt\n")
    code, out = launch(recipe)
    assert code == 0 and "already complete (4/4 steps)" in out, out
    assert torch.load(folder / "step_00000004.pt", weights_only=True)["step"] == 4

    shutil.rmtree(folder)
    (run / "main").rename(run / "main.old")  # the other choice: retrain the stage
    code, out = launch(recipe)
    assert code == 0 and "[main] [####" in out, out
    assert (run / "main.old" / "metrics.jsonl").is_file()


def test_a_stage_killed_before_its_first_checkpoint_starts_over_without_a_word(tmp_path, launch):
    recipe = tiny_recipe(tmp_path, steps=6, ckpt_every=4, log_every=1)
    trainer = make_trainer(recipe)
    step_fn = trainer.train_step

    def stepping(x, y):
        out = step_fn(x, y)
        if trainer.step == 3:
            raise RuntimeError("killed")  # steps 1-3 logged, no checkpoint written yet
        return out
    trainer.train_step = stepping
    with pytest.raises(RuntimeError, match="killed"):
        trainer.fit()
    assert not list((trainer.dir / "checkpoints").glob("step_*.pt"))
    code, out = launch(recipe)
    assert code == 0 and "error" not in out, out
