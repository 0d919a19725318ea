"""FID (tools/fid.py): the distance math against scipy, and the pipeline end to end.

The real FID Inception weights cannot be downloaded in tests, so the pipeline tests build
pytorch-fid's FID InceptionV3 with RANDOM weights (He-initialised, so that activations
keep their scale through the 11 blocks; torchvision's init shrinks pool3 to ~1e-8) and
save them to a local file, which is then loaded through ``--inception-weights`` exactly
like the real file. The numbers are therefore not comparable to published FIDs; the code
path is the production one, with the 64-d first Inception block instead of pool3 (2048-d)
to keep the CPU time small here: the whole network at 299 px costs about a second per
image on one core (tests/evaluation/test_metrics_pipeline.py runs it whole).
"""
from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from mdreg.commands.entry import run_cli
from mdreg.data.synthetic import render
from mdreg.errors import UserError
from mdreg.commands.fid import main
from mdreg.evaluation.inception_metrics import compute_metrics
from mdreg.evaluation.formulas import frechet_distance
from mdreg.evaluation.images import image_batches
from mdreg.evaluation.inception import extract, load_inception


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


def compute_fid(samples, reference, weights, **kwargs) -> dict:
    """FID alone, as tools/fid.py computes it."""
    return compute_metrics(samples, reference, weights, ("fid",), **kwargs)


def save_random_inception(path, seed: int = 0):
    """pytorch-fid's FID InceptionV3 with random He-initialised weights, saved to ``path``."""
    from pytorch_fid import inception

    torch.manual_seed(seed)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        net = inception.fid_inception_v3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.nn.init.normal_(net.fc.weight, std=0.1)  # logits of a few units: a softmax that is not flat
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """Random FID Inception weights as a local file; while the module runs, the reference
    feature cache ($MDREG_CACHE) points into a temporary folder, not ~/.cache."""
    folder = tmp_path_factory.mktemp("inception")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(folder / "cache"))
        yield save_random_inception(folder / "random_inception.pth")


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
    assert same["num_samples"] == same["num_reference"] == 6
    stats = tmp_path / "b_stats.npz"
    diff = compute_fid(tmp_path / "a.npz", tmp_path / "b", random_inception, dims=64, save_reference_stats=stats)
    assert diff["fid"] > 1e-3 and abs(same["fid"]) < 1e-6 * diff["fid"]  # 0 up to eigen-solver round-off
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

    raw = _noise_images(tmp_path / "raw", [(40, 30)] * 5)
    train = ImageFolder(str(raw), resolution=16)  # what training sees, written out as PNGs
    (tmp_path / "cropped").mkdir()
    for i in range(len(train)):
        array = ((train[i][0] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(tmp_path / "cropped" / f"{i:03d}.png")
    net = load_inception(random_inception)

    def pool(source, resolution=None):
        return extract(net, image_batches(source, 50, resolution), pool_dims=64)["pool"]

    resized, cropped = pool(raw, resolution=16), pool(tmp_path / "cropped")
    assert resized.shape == (5, 64) and np.array_equal(resized, cropped)
    assert not np.allclose(pool(raw).mean(0), cropped.mean(0), atol=1e-4)  # as stored: another distribution


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


def test_metric_selection_errors_before_any_network_pass(tmp_path, random_inception):
    from mdreg.evaluation.inception_metrics import compute_metrics

    _folder(tmp_path / "s", seed=1, count=3, res=8)
    args = (tmp_path / "s", tmp_path / "s", random_inception)
    with pytest.raises(UserError, match=r"--dims 64 gives FID only; drop --dims .* to compute is"):
        compute_metrics(*args, ("fid", "is"), dims=64)
    with pytest.raises(UserError, match="did you mean 'sfid'"):
        compute_metrics(*args, "fid,sfdi")
    with pytest.raises(UserError, match="--preprocess tf2: choose one of tf1, pytorch-fid"):
        compute_metrics(*args, preprocess="tf2")


def test_reference_cache_hits_and_recomputes_a_corrupt_entry(tmp_path, random_inception):
    _folder(tmp_path / "a", seed=1, count=4, res=8)
    _folder(tmp_path / "b", seed=2, count=4, res=8)
    args, cache = (tmp_path / "a", tmp_path / "b", random_inception), tmp_path / "cache"
    first = compute_fid(*args, dims=64, cache_dir=cache)
    assert first["reference_cache"] == "miss"
    assert compute_fid(*args, dims=64, cache_dir=cache)["reference_cache"] == "hit"
    [entry] = cache.glob("*.npz")
    entry.write_bytes(b"half-written")
    again = compute_fid(*args, dims=64, cache_dir=cache)
    assert again["reference_cache"] == "miss" and again["fid"] == first["fid"]
    assert compute_fid(*args, dims=64, use_cache=False)["reference_cache"] == "off"
