"""A checkpoint of another model size: a backup restored into the wrong run, and
``tools/sample.py --checkpoint`` pointed at another run's file. Each is one error naming the
file and the first mismatching keys with both shapes (not PyTorch's ``size mismatch for ...``
traceback), before anything is loaded; the run directory is byte for byte what it was."""
from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from mdreg.commands.entry import run_cli
from mdreg.commands.sample import main as sample_main
from tests.cli_runner import launch  # noqa: F401  (a fixture)
from tests.conftest import tiny_recipe


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def two_sizes(tmp_path, launch):
    """(recipe, run of width 32, run of width 64), both trained 2 steps."""
    recipe = tiny_recipe(tmp_path, steps=2, ckpt_every=2)
    for extra in ([], ["model.embed_dim=64"]):
        code, out = launch(recipe, *extra)
        assert code == 0, out
    runs = recipe.parent / "runs" / "tiny"
    return recipe, runs / "default", runs / "model.embed_dim-64"


def _one_error(code: int, out: str) -> str:
    assert code == 2 and "Traceback" not in out and "size mismatch" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("error: ")]
    return line


def test_a_backup_of_another_size_restored_into_a_run_is_named_with_its_shapes(two_sizes, launch):
    recipe, small, wide = two_sizes
    own = small / "main" / "checkpoints" / "step_00000002.pt"
    shutil.copy(wide / "main" / "checkpoints" / "step_00000002.pt", own)  # the wrong backup
    before = _digests(small)
    error = _one_error(*launch(recipe))
    assert error.startswith(f"error: the checkpoint {own} (model weights) does not fit the model of stage 'main': it "
                            f"was written by another model (another model size or backbone): ")
    assert "tensor(s) of other shapes (pos_embed: file (1, 17, 64), model (1, 17, 32); patch_embed.proj.weight: " \
           "file (64, 3, 2, 2), model (32, 3, 2, 2);" in error and " more). Nothing was loaded." in error
    assert error.endswith("Put this run's own checkpoint in its place (or move the file aside to resume from an "
                          "older one); the config of the run it belongs to is in that run's config.yaml")
    assert _digests(small) == before


def test_sample_checkpoint_of_another_run_names_the_file_and_the_shapes(two_sizes, capsys, tmp_path):
    _, small, wide = two_sizes
    theirs = wide / "main" / "checkpoints" / "step_00000002.pt"
    before = _digests(small)
    code = run_cli(sample_main, [str(small), "--checkpoint", str(theirs), "--sampler", "ddim", "steps=2", "--num", "2",
                                 "--out", str(tmp_path / "samples")])
    err = capsys.readouterr().err
    error = _one_error(code, err)
    assert error.startswith(f"error: --checkpoint {theirs} does not fit the model of stage 'main' of {small}: it was "
                            f"written by another model (another model size or backbone): ")
    assert "(pos_embed: file (1, 17, 64), model (1, 17, 32);" in error
    assert error.endswith("Give a checkpoint of this run, or sample the run the file belongs to "
                          "(tools/sample.py THAT_RUN_DIR)")
    assert _digests(small) == before and not (tmp_path / "samples").exists()

    bare = tmp_path / "bare.pt"  # a plain state dict is not a run's checkpoint
    torch.save(torch.load(theirs, weights_only=True)["ema"], bare)
    code = run_cli(sample_main, [str(small), "--checkpoint", str(bare), "--sampler", "ddim", "--num", "2",
                                 "--out", str(tmp_path / "samples")])
    error = _one_error(code, capsys.readouterr().err)
    assert error.startswith(f"error: {bare} is not an mdreg training checkpoint (no 'ema' weights; it holds pos_embed, ")
