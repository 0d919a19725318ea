"""FID: the distance math against scipy, and the pipeline end to end.

The real FID Inception weights cannot be downloaded in tests, so the pipeline tests build
pytorch-fid's FID InceptionV3 with RANDOM weights and save them to a local file, which is
then loaded through ``--inception-weights`` exactly like the real file. The numbers are
therefore not comparable to published FIDs; the code path is the production one, with
the 64-d first Inception block instead of pool3 (2048-d) to keep the CPU time small: the
whole network at 299 px costs seconds per dozen images here.
"""
from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from mdreg.cli import run_cli
from mdreg.data.synthetic import render
from mdreg.errors import UserError
from mdreg.evaluation.fid import compute_fid, frechet_distance, main


def scipy_reference(mu1, s1, mu2, s2):
    """pytorch-fid's formula: sqrtm of the product via scipy (with its eps fallback)."""
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


@pytest.mark.parametrize("rank", [12, 5])
def test_frechet_distance_matches_scipy(rank):
    rng = np.random.default_rng(rank)
    a, b = rng.standard_normal((12, rank)), rng.standard_normal((12, rank)) * 0.7
    s1, s2 = a @ a.T, b @ b.T + 0.1 * np.eye(12)
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_reference(mu1, s1, mu2, s2), rel=1e-6, abs=1e-8)
    assert frechet_distance(mu1, s2, mu1, s2) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(UserError, match="differ in shape"):
        frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """pytorch-fid's FID InceptionV3 with random weights, saved as a local weights file."""
    from pytorch_fid import inception

    torch.manual_seed(0)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        net = inception.fid_inception_v3()
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(net.state_dict(), path)
    return path


def _folder(path, seed, count=6, res=32):
    path.mkdir(parents=True)
    images = []
    for i in range(count):
        img, _ = render(i, seed, res)
        array = ((img + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(path / f"{i:03d}.png")
        images.append(array)
    return np.stack(images)


def test_fid_pipeline_folder_npz_and_stats(tmp_path, random_inception):
    a = _folder(tmp_path / "a", seed=1)
    _folder(tmp_path / "b", seed=2)
    np.savez(tmp_path / "a.npz", arr_0=a)
    same = compute_fid(tmp_path / "a", tmp_path / "a.npz", random_inception, dims=64)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and same["num_samples"] == same["num_reference"] == 6
    stats = tmp_path / "b_stats.npz"
    diff = compute_fid(tmp_path / "a.npz", tmp_path / "b", random_inception, dims=64, save_reference_stats=stats)
    assert diff["fid"] > 1e-3
    with np.load(stats) as data:
        assert data["mu"].shape == (64,) and data["sigma"].shape == (64, 64)
    again = compute_fid(tmp_path / "a", stats, random_inception, dims=64)
    assert again["fid"] == pytest.approx(diff["fid"], rel=1e-9)


def test_fid_cli_records_the_settings(tmp_path, random_inception, capsys):
    _folder(tmp_path / "s" / "images", seed=1)
    _folder(tmp_path / "ref", seed=2)
    (tmp_path / "s" / "sampling.json").write_text(json.dumps(
        {"stage": "main", "step": 10, "sampler": "DDIM(steps=5, eta=0.8)", "steps": 5, "eta": 0.8,
         "guidance_scale": 1.5, "seed": 0, "metrics": str(tmp_path / "metrics.jsonl")}))
    args = [str(tmp_path / "s"), str(tmp_path / "ref"), "--inception-weights", str(random_inception), "--dims", "64"]
    assert run_cli(main, args) == 0
    assert "FID" in capsys.readouterr().out
    entry = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert entry["event"] == "fid" and entry["steps"] == 5 and entry["eta"] == 0.8 and entry["guidance_scale"] == 1.5
    assert entry["num_samples"] == 6 and entry["reference"] == str(tmp_path / "ref") and entry["sampler"]
    assert json.loads((tmp_path / "s" / "fid.json").read_text())["fid"] == entry["fid"]
    assert run_cli(main, [str(tmp_path / "s"), str(tmp_path / "ref"), "--inception-weights",
                          str(tmp_path / "missing.pth")]) == 2
    assert "nothing is downloaded" in capsys.readouterr().err
