"""tools/sample.py on a tiny trained run: files, resume, overrides, and the FID record."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mdreg.cli import run_cli
from mdreg.errors import ConfigError, UserError
from mdreg.evaluation import fid
from mdreg.evaluation.sample_dir import main, sample_run
from tests.conftest import make_trainer
from tests.evaluation.test_fid import _folder, random_inception  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tmp_path_factory.mktemp("sample"), steps=2, sampler='L("sampler:ddim")(steps=2, eta=1.0)')
    trainer = make_trainer(recipe)
    trainer.fit()
    return trainer.dir.parent


def test_samples_files_and_resume(run_dir, tmp_path):
    out = sample_run(run_dir, num=6, out=tmp_path / "s", batch_size=4, seed=3)
    pngs = sorted((out / "images").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(6)]
    with np.load(out / "samples.npz") as data:
        assert data["arr_0"].shape == (6, 8, 8, 3) and data["arr_0"].dtype == np.uint8
        first = data["arr_0"].copy()
    info = json.loads((out / "sampling.json").read_text())
    assert info["steps"] == 2 and info["eta"] == 1.0 and info["num"] == 6 and info["step"] == 2
    kept = pngs[0].stat().st_mtime_ns
    pngs[5].unlink()  # an interrupted run: batch 1 is incomplete
    sample_run(run_dir, num=6, out=tmp_path / "s", batch_size=4, seed=3)
    assert pngs[0].stat().st_mtime_ns == kept  # batch 0 was skipped
    with np.load(out / "samples.npz") as data:
        assert np.array_equal(data["arr_0"], first)  # batch 1 regenerated identically
    with pytest.raises(UserError, match="other settings"):
        sample_run(run_dir, num=6, out=tmp_path / "s", batch_size=4, seed=4)


def test_sampler_overrides_and_default_folder(run_dir):
    out = sample_run(run_dir, num=2, batch_size=2, overrides=["steps=3", "eta=0.0"])
    assert out.parent == run_dir / "main" / "eval" and "steps3" in out.name and "eta0.0" in out.name
    assert json.loads((out / "sampling.json").read_text())["steps"] == 3
    with pytest.raises(ConfigError, match="stpes"):
        sample_run(run_dir, num=2, batch_size=2, overrides=["stpes=3"])


def test_cli_then_fid_records_the_sampler(run_dir, tmp_path, random_inception):  # noqa: F811
    assert run_cli(main, [str(run_dir), "--num", "5", "--batch-size", "5", "--out", str(tmp_path / "s"),
                          "steps=2"]) == 0
    _folder(tmp_path / "ref", seed=1, count=5, res=8)
    assert run_cli(fid.main, [str(tmp_path / "s" / "samples.npz"), str(tmp_path / "ref"), "--inception-weights",
                              str(random_inception), "--dims", "64"]) == 0
    entry = json.loads((run_dir / "main" / "metrics.jsonl").read_text().splitlines()[-1])
    assert entry["event"] == "fid" and entry["steps"] == 2 and entry["eta"] == 1.0
    assert entry["guidance_scale"] == 1.0 and entry["num_samples"] == 5 and "DDIM" in entry["sampler"]
    assert run_cli(main, [str(run_dir / "nope")]) == 2
