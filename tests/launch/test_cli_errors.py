"""Bad input: one clear message, exit status 2, no traceback; nothing already written is touched."""
import pytest

from tests.tiny import REPO, launch, write_two_stage_recipe

QUICK = REPO / "recipes" / "quickstart.py"


@pytest.mark.parametrize("args,message", [
    ([REPO / "recipes" / "quickstrt.py"], "did you mean 'quickstart.py'"),
    ([QUICK, "train.max_stpes=5"], "unknown config key 'train.max_stpes'. Closest keys: train.max_steps"),
    ([QUICK, "train.max_steps=abc"], "train.max_steps='abc' is invalid"),
    ([QUICK, "stages.pretrain.grad_clip=big"], "stages.pretrain.grad_clip expects a number"),
    ([QUICK, "stages.pretrain.masker=pach"], "unknown masker 'pach' (did you mean 'patch'"),
    ([QUICK, "model._target_=backbone:maskdm_xl"], "unknown backbone 'maskdm_xl'"),
    ([QUICK, "stages.pretrain.masker.ratio=1.5", "--dry-run"], "stages.pretrain.masker: building masker:patch failed: mask ratio"),
    ([QUICK, "a.b=[1,2"], "not valid override syntax"),
])
def test_bad_input_exits_2_with_one_message(args, message, tmp_path):
    out = launch(*args, f"train.output_root={tmp_path}")
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_syntax_error_in_recipe_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("train = dict(\n    seed=0,,\n)\n")
    out = launch(bad)
    assert out.returncode == 2 and f"{bad}:2: syntax error" in out.stderr


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = launch(QUICK, f"train.output_root={blocker / 'runs'}", "train.max_steps=1")
    assert out.returncode == 2 and "set train.output_root=" in out.stderr


def test_verbose_and_mdreg_debug_show_the_traceback(tmp_path, monkeypatch):
    out = launch(QUICK, "train.max_stpes=5", "--verbose")
    assert out.returncode != 0 and "Traceback" in out.stderr
    monkeypatch.setenv("MDREG_DEBUG", "1")
    out = launch(QUICK, "train.max_stpes=5")
    assert out.returncode != 0 and "Traceback" in out.stderr and "unknown config key 'train.max_stpes'" in out.stderr


def test_changed_recipe_does_not_touch_the_existing_run(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    launch(recipe, check=True)
    run = tmp_path / "runs" / "tiny_two_stage" / "default"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    recipe.write_text(recipe.read_text().replace("ratio=0.5", "ratio=0.25"))
    out = launch(recipe)
    assert out.returncode == 2 and "already holds a run with a different config" in out.stderr
    assert "stages.pretrain.masker.ratio: 0.5 -> 0.25" in out.stderr
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
