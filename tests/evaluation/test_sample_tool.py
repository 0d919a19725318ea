"""tools/sample.py on a tiny trained run: files, resume, overrides, device-independent noise,
the samples.npz it streams, and the FID record."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mdreg.commands.entry import run_cli
from mdreg.data.transforms import Identity
from mdreg.errors import ConfigError, UserError
from mdreg.commands import fid
from mdreg.commands.sample import main
from mdreg.evaluation.sample_folder import labels_for, sample_run, write_npz
from mdreg.engine.sampling import generate
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


def test_finished_folder_keeps_its_npz(run_dir, tmp_path):
    out = sample_run(run_dir, num=5, out=tmp_path / "s", batch_size=2, seed=1)
    npz = out / "samples.npz"
    stamp = npz.stat().st_mtime_ns
    with np.load(npz) as data:
        first = data["arr_0"].copy()
    assert sample_run(run_dir, num=5, out=tmp_path / "s", batch_size=2, seed=1) == out
    assert npz.stat().st_mtime_ns == stamp  # nothing new was sampled: not rewritten
    with np.load(npz) as data:
        assert np.array_equal(data["arr_0"], first)


def test_npz_streamed_from_pngs_with_labels(tmp_path):
    (tmp_path / "images").mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 4, 3), dtype=np.uint8)
    for i, array in enumerate(pixels):
        Image.fromarray(array).save(tmp_path / "images" / f"{i:06d}.png")
    write_npz(tmp_path, num=5, batch_size=2, classes=3, seed=7)
    with np.load(tmp_path / "samples.npz") as data:
        assert np.array_equal(data["arr_0"], pixels)
        assert data["arr_1"].tolist() == [int(v) for b, n in enumerate((2, 2, 1)) for v in labels_for(b, n, 3, 7)]
    Image.fromarray(pixels[0, :4]).save(tmp_path / "images" / "000003.png")  # a stray file of another size
    with pytest.raises(UserError, match=r"000003\.png is 4x4, not 4x6"):
        write_npz(tmp_path, num=5, batch_size=2, classes=3, seed=7)
    assert not (tmp_path / ".samples.tmp.npz").exists()


class _RecordingSampler:
    """A stand-in sampler that records the generator and device it is given."""

    def __init__(self):
        self.calls = []

    def sample(self, fn, shape, generator=None, device="cpu"):
        self.calls.append((generator.device, device))
        return torch.zeros(shape)


def test_noise_is_drawn_on_the_cpu_whatever_the_device():
    """CPU and CUDA generators give different streams: the sampling noise must come from a CPU
    generator (moved to the device by mdreg.rng) so a resumed run gives the same images anywhere."""
    class Objective:
        def model_fn(self, net, y=None, guidance_scale=1.0):
            return net

    sampler = _RecordingSampler()
    generate(torch.nn.Identity(), Objective(), sampler, Identity(), 3, (3, 4, 4), seed=5, device="meta")
    assert sampler.calls == [(torch.device("cpu"), "meta")]


def test_folder_sampled_before_cpu_noise_is_refused(run_dir, tmp_path):
    out = sample_run(run_dir, num=2, out=tmp_path / "s", batch_size=2)
    info = json.loads((out / "sampling.json").read_text())
    assert info["noise_rng"] == "cpu"
    del info["noise_rng"]  # a folder from the device-generator version: its images depend on the device
    (out / "sampling.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="other settings \\(noise_rng\\)"):
        sample_run(run_dir, num=2, out=tmp_path / "s", batch_size=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_runs_sample_the_same_images(run_dir, tmp_path):
    cpu = sample_run(run_dir, num=4, out=tmp_path / "cpu", batch_size=2, device="cpu")
    cuda = sample_run(run_dir, num=4, out=tmp_path / "cuda", batch_size=2, device="cuda")
    with np.load(cpu / "samples.npz") as a, np.load(cuda / "samples.npz") as b:
        assert np.abs(a["arr_0"].astype(int) - b["arr_0"].astype(int)).max() <= 2  # same noise; float round-off
