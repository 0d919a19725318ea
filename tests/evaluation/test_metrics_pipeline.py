"""The metrics pipeline with the whole (random-weights) FID Inception: one pass's features
against torch-fidelity's own extractor, ADM's reference-batch layout, the reference feature
cache, stats-only references and the tools/metrics.py command line.

Random weights (tests/evaluation/test_fid.py's fixture) make the values meaningless as
image quality; the code path is the production one, at ~1 s per image on one CPU core, so
the image sets are 4-5 images (precision/recall need more than k = 3).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from mdreg.commands.entry import run_cli
from mdreg.errors import UserError
from mdreg.evaluation import reference as reference_module
from mdreg.evaluation.inception_metrics import compute_metrics
from mdreg.commands.fid import metrics_main
from mdreg.evaluation.images import image_batches
from mdreg.evaluation.inception import PREPROCESS, extract, fid_inception_v3, load_inception
from mdreg.evaluation.formulas import (frechet_distance_to, gaussian_stats, inception_score, kernel_inception_distance, precision_recall)
from mdreg.evaluation.reference import cache_key, read_stats, write_reference_npz
from tests.evaluation.test_fid import _folder, random_inception  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """4 sample PNGs (a folder) and 5 reference images (a folder and their uint8 array)."""
    root = tmp_path_factory.mktemp("sets")
    _folder(root / "samples", seed=1, count=4, res=32)
    ref = _folder(root / "ref", seed=2, count=5, res=32)
    return root, ref


@pytest.fixture(scope="module")
def features(sets, random_inception):  # noqa: F811
    """Features of both sets from inception.extract, the expectations of the pipeline tests."""
    root, _ = sets
    net = load_inception(random_inception)
    return {name: extract(net, image_batches(root / name, 4)) for name in ("samples", "ref")}


def _tf1_resize_loop(image: np.ndarray, size: int) -> np.ndarray:
    """TF 1.x ResizeBilinear (no half-pixel centres) of one (H, W) channel, pixel by pixel."""
    h, w = image.shape
    out = np.empty((size, size))
    for i in range(size):
        y = i * np.float32(h / size)
        y0, y1, fy = int(np.floor(y)), min(int(np.floor(y)) + 1, h - 1), y - np.floor(y)
        for j in range(size):
            x = j * np.float32(w / size)
            x0, x1, fx = int(np.floor(x)), min(int(np.floor(x)) + 1, w - 1), x - np.floor(x)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * fx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * fx
            out[i, j] = top + (bottom - top) * fy
    return out


def test_tf1_preprocessing_is_tf1_bilinear_resize_then_scaling():
    """``tf1``: TF 1.x ResizeBilinear to 299 (torch-fidelity's port, checked against a loop written
    from TF's resize_bilinear_op.cc) and (x - 128) / 128."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (5, 7)).astype(np.float32)
    ours = PREPROCESS["tf1"](torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert np.allclose(ours, (_tf1_resize_loop(image, 299) - 128) / 128, atol=1e-6)


def test_the_fid_inception_is_pytorch_fids_network(random_inception):  # noqa: F811
    """Built from pytorch-fid's exported blocks, it has fid_inception_v3's parameters and outputs."""
    from unittest import mock

    from pytorch_fid import inception

    state = torch.load(random_inception, weights_only=True)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: state):
        theirs = inception.fid_inception_v3().eval()
    ours = fid_inception_v3(state).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_one_pass_matches_torch_fidelity_extractor(sets, features, random_inception):  # noqa: F811
    """pool3 and the unbiased 1008 logits equal torch-fidelity's TF-exact extractor loaded with
    the same file; the sFID vector equals its Mixed_6d.branch1x1 output, 7 channels, NHWC."""
    extractor = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3").FeatureExtractorInceptionV3
    fe = extractor("inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=random_inception)
    taps = []
    fe.Mixed_6d.branch1x1.register_forward_hook(lambda module, args, out: taps.append(out.clone()))
    images = np.concatenate(list(image_batches(sets[0] / "samples", 4)))
    with torch.no_grad():
        pool, logits = fe(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    ours = features["samples"]
    assert ours["pool"].shape == (4, 2048) and ours["spatial"].shape == (4, 2023) and ours["logits"].shape == (4, 1008)
    assert np.allclose(ours["pool"], pool.numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(ours["logits"], logits.numpy(), rtol=1e-4, atol=1e-5)
    spatial = taps[0][:, :7].numpy().transpose(0, 2, 3, 1).reshape(4, -1)  # ADM: mixed_6/conv[..., :7], NHWC
    assert np.allclose(ours["spatial"], spatial, rtol=1e-4, atol=1e-5)
    assert ours["pool"].std(0).mean() > 1e-3  # the random network does not collapse the features


def test_adm_reference_batch_uses_its_statistics_and_caches_features(sets, features, random_inception, tmp_path,
                                                                     monkeypatch):  # noqa: F811
    root, ref_images = sets
    batch = tmp_path / "VIRTUAL_tiny_labeled.npz"  # ADM's layout; the statistics deliberately not arr_0's
    np.savez(batch, arr_0=ref_images, mu=np.zeros(2048), sigma=np.eye(2048), mu_s=np.full(2023, 0.1),
             sigma_s=2 * np.eye(2023))
    first = compute_metrics(root / "samples", batch, random_inception, batch_size=4)
    s, r = features["samples"], features["ref"]
    assert first["fid"] == pytest.approx(frechet_distance_to(s["pool"], np.zeros(2048), np.eye(2048)))
    assert first["sfid"] == pytest.approx(frechet_distance_to(s["spatial"], np.full(2023, 0.1), 2 * np.eye(2023)))
    assert first["is"] == pytest.approx(inception_score(s["logits"])[0]) and first["is_splits"] == 1
    precision, recall = precision_recall(r["pool"], s["pool"])
    assert (first["precision"], first["recall"]) == (pytest.approx(precision), pytest.approx(recall))
    kid = kernel_inception_distance(s["pool"], r["pool"])
    assert (first["kid"], first["kid_std"], first["kid_subset_size"]) == (pytest.approx(kid[0]), pytest.approx(kid[1]),
                                                                          4)
    assert first["reference_stats"] == "file" and first["reference_cache"] == "miss" and first["skipped"] == {}
    assert any("statistics stored in" in note for note in first["notes"])
    assert first["num_samples"] == 4 and first["num_reference"] == 5 and first["preprocess"] == "tf1"

    def no_network(*args, **kwargs):
        raise AssertionError("the reference's features were recomputed")

    monkeypatch.setattr(reference_module, "extract", no_network)
    second = compute_metrics(root / "samples", batch, random_inception, batch_size=4)
    assert second["reference_cache"] == "hit"
    assert all(second[k] == first[k] for k in ("fid", "sfid", "is", "precision", "recall", "kid"))
    fid_is = compute_metrics(root / "samples", batch, random_inception, ("fid", "is"), use_cache=False)
    assert fid_is["reference_cache"] == "unused" and fid_is["fid"] == first["fid"]  # no reference pass needed
    stamp = batch.stat().st_mtime_ns
    os.utime(batch, ns=(stamp + 10**9, stamp + 10**9))  # the reference changed: the cache misses
    with pytest.raises(AssertionError, match="recomputed"):
        compute_metrics(root / "samples", batch, random_inception, ("precision",))


def test_cache_key_names_source_weights_and_preprocessing(tmp_path):
    ref = tmp_path / "ref.npz"
    np.savez(ref, arr_0=np.zeros((2, 4, 4, 3), np.uint8))
    base = cache_key(ref, "w1", "tf1", None, 2048)
    assert base == cache_key(ref, "w1", "tf1", None, 2048)
    others = [cache_key(ref, "w2", "tf1", None, 2048), cache_key(ref, "w1", "pytorch-fid", None, 2048),
              cache_key(ref, "w1", "tf1", 64, 2048), cache_key(ref, "w1", "tf1", None, 64)]
    assert base not in others and len(set(others)) == 4
    np.savez(ref, arr_0=np.ones((3, 4, 4, 3), np.uint8))  # new content: new size/mtime
    assert cache_key(ref, "w1", "tf1", None, 2048) != base


def test_stats_only_reference_gives_fid_sfid_is(sets, features, random_inception, tmp_path):  # noqa: F811
    root, _ = sets
    r = features["ref"]
    (mu, sigma), (mu_s, sigma_s) = gaussian_stats(r["pool"]), gaussian_stats(r["spatial"])
    stats = write_reference_npz(tmp_path / "stats.npz", {"mu": mu, "sigma": sigma, "mu_s": mu_s, "sigma_s": sigma_s})
    with np.load(stats) as data:
        assert sorted(data.files) == ["mu", "mu_s", "sigma", "sigma_s"]
    with pytest.raises(UserError, match=r"stats\.npz holds statistics only \(no arr_0.*give the image folder"):
        compute_metrics(root / "samples", stats, random_inception, ("fid", "precision"))
    result = compute_metrics(root / "samples", stats, random_inception, batch_size=4)
    assert {"fid", "sfid", "is"} <= result.keys() and not {"precision", "recall", "kid"} & result.keys()
    assert set(result["skipped"]) == {"precision", "recall", "kid"} and result["num_reference"] is None
    assert result["fid"] == pytest.approx(frechet_distance_to(features["samples"]["pool"], mu, sigma), rel=1e-9)
    write_reference_npz(tmp_path / "pool_only.npz", {"mu": mu, "sigma": sigma})
    with pytest.raises(UserError, match="no mu_s/sigma_s"):
        compute_metrics(root / "samples", tmp_path / "pool_only.npz", random_inception, ("sfid",))
    np.savez(tmp_path / "half.npz", mu=np.zeros(3))
    with pytest.raises(UserError, match=r"half\.npz has 'mu' without 'sigma'"):
        read_stats(tmp_path / "half.npz")


def test_metrics_cli_and_reference_batch_round_trip(sets, random_inception, tmp_path, capsys):  # noqa: F811
    root, ref_images = sets
    log, batch = tmp_path / "metrics.jsonl", tmp_path / "ref_batch.npz"
    args = [str(root / "samples"), str(root / "ref"), "--inception-weights", str(random_inception),
            "--batch-size", "8", "--metrics", str(log), "--save-reference-batch", str(batch)]
    assert run_cli(metrics_main, args) == 0
    out = capsys.readouterr().out
    assert all(label in out for label in ("FID ", "sFID ", "IS ", "precision ", "recall ", "KID "))
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["event"] == "metrics" and entry["num_reference"] == 5 and entry["reference_stats"] == "images"
    with np.load(batch) as data:  # ADM's reference-batch layout, arr_0 = the reference images
        assert np.array_equal(data["arr_0"], ref_images) and data["mu_s"].shape == (2023,)
        assert data["sigma"].shape == (2048, 2048)
    again = compute_metrics(root / "samples", batch, random_inception, ("fid", "sfid"))
    assert again["reference_stats"] == "file"
    for key in ("fid", "sfid"):
        assert again[key] == pytest.approx(entry[key], rel=1e-6, abs=1e-9)
    assert run_cli(metrics_main, args[:4] + ["--compute", "fid,precison"]) == 2
    assert "did you mean 'precision'" in capsys.readouterr().err


def test_npz_images_stream_in_batches(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 5, 6, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "c.npz", arr_0=images, arr_1=np.arange(7))  # ADM samples: arr_1 = labels
    batches = list(image_batches(tmp_path / "c.npz", 3))
    assert [len(b) for b in batches] == [3, 3, 1] and np.array_equal(np.concatenate(batches), images)
    np.savez(tmp_path / "f.npz", arr_0=images.astype(np.float32))
    with pytest.raises(UserError, match=r"f\.npz: 'arr_0' must be uint8 images"):
        list(image_batches(tmp_path / "f.npz", 3))
    np.savez(tmp_path / "none.npz", labels=np.arange(3))
    with pytest.raises(UserError, match=r"none\.npz has no 'arr_0' image array \(keys: labels\)"):
        list(image_batches(tmp_path / "none.npz", 3))
