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


def _noise_images(path, sizes, seed=0):
    """Random RGB PNGs of the given (width, height) sizes, named 000.png, 001.png, ..."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


def test_reference_resolution_preprocesses_like_the_training_data(tmp_path, random_inception):
    from mdreg.data.image_folder import ImageFolder
    from mdreg.evaluation.fid import build_inception, statistics

    raw = _noise_images(tmp_path / "raw", [(40, 30)] * 5)
    train = ImageFolder(str(raw), resolution=16)  # what training sees, written out as PNGs
    (tmp_path / "cropped").mkdir()
    for i in range(len(train)):
        array = ((train[i][0] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(tmp_path / "cropped" / f"{i:03d}.png")
    model = build_inception(random_inception, dims=64)
    mu, sigma, n = statistics(model, raw, resolution=16)
    mu_ref, sigma_ref, _ = statistics(model, tmp_path / "cropped")
    assert n == 5 and np.allclose(mu, mu_ref, atol=1e-10) and np.allclose(sigma, sigma_ref, atol=1e-10)
    assert not np.allclose(statistics(model, raw)[0], mu_ref, atol=1e-4)  # as stored: another distribution


def test_mixed_size_reference_needs_a_resolution(tmp_path, random_inception, capsys):
    raw = _noise_images(tmp_path / "mixed", [(32, 32), (32, 32), (40, 30)])
    _noise_images(tmp_path / "s" / "images", [(16, 16)] * 3, seed=1)
    with pytest.raises(UserError, match=r"002\.png is 40x30 but .*000\.png is 32x32.*--reference-resolution"):
        compute_fid(tmp_path / "s" / "images", raw, random_inception, dims=64)
    metrics = tmp_path / "metrics.jsonl"
    args = [str(tmp_path / "s" / "images"), str(raw), "--inception-weights", str(random_inception), "--dims", "64",
            "--metrics", str(metrics)]
    assert run_cli(main, args) == 2 and "--reference-resolution" in capsys.readouterr().err
    assert run_cli(main, args + ["--reference-resolution", "16"]) == 0
    entry = json.loads(metrics.read_text().splitlines()[-1])
    assert entry["reference_resolution"] == 16 and entry["num_reference"] == 3


@pytest.mark.parametrize("content", ["garbage", "wrong_keys"])
def test_bad_inception_weights_file(tmp_path, content, capsys):
    path = tmp_path / "weights.pth"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    else:
        torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(UserError, match=r"weights\.pth.*pt_inception-2015-12-05-6726825d\.pth") as info:
        compute_fid(tmp_path, tmp_path, path, dims=64)
    assert "weights_only" not in str(info.value)
    assert run_cli(main, [str(tmp_path), str(tmp_path), "--inception-weights", str(path)]) == 2
    assert "pt_inception-2015-12-05-6726825d.pth" in capsys.readouterr().err
