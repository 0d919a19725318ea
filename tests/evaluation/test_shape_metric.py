"""Shape-FID: it separates real renders from noise, blur and an untrained model's samples,
its floor sits well below those, the classifier cache is reused, rebuilt and
deterministic, and tools/shape_fid.py reads real PNG files.

The classifiers train for real (about 10 s at 16 px, 25 s at 32 px on one idle core),
once per module, into a temporary ``$MDREG_CACHE``; the cache test uses a shortened
recipe at 8 px.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from mdreg.commands.entry import run_cli
from mdreg.config import L, dump_yaml, instantiate, node
from mdreg.data.synthetic import Shapes, render
from mdreg.errors import UserError
from mdreg.evaluation import shape_classifier as sc
from mdreg.engine.sampling import generate
from mdreg.commands.shape_fid import main
from mdreg.evaluation.shape_metric import ShapeMetric, applies_to, dataset_settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICKSTART = dict(num_images=4096, seed=0, max_shapes=1, size_range=(0.25, 0.42))
N = 256


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """A fresh ``$MDREG_CACHE`` for the module (the classifiers are trained once in it)."""
    home = tmp_path_factory.mktemp("xdg_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDREG_CACHE", str(home))
        yield home


@pytest.fixture(scope="module")
def metrics(cache_home):
    built = {}

    def get(res: int) -> ShapeMetric:
        if res not in built:
            built[res] = ShapeMetric.for_dataset(L("dataset:shapes")(resolution=res, **QUICKSTART))
        return built[res]
    return get


def real_images(res: int, seed: int = 777, n: int = N) -> torch.Tensor:
    """Fresh renders with a seed neither the data (0) nor the metric uses."""
    return Shapes(n, res, seed=seed, max_shapes=1, size_range=(0.25, 0.42)).images


def untrained_samples(res: int, n: int = N) -> torch.Tensor:
    torch.manual_seed(0)
    net = instantiate(L("backbone:uvit")(img_size=res, patch_size=4, in_chans=3, embed_dim=64, depth=3, num_heads=2))
    objective = instantiate(L("objective:dsm")(schedule=L("noise_schedule:ddpm_cosine")(num_timesteps=1000)))
    sampler = instantiate(L("sampler:ddim")(steps=5, eta=1.0))
    return generate(net, objective, sampler, instantiate(L("transform:identity")()), n, (3, res, res), seed=0)


def write_pngs(folder, images: torch.Tensor):
    folder.mkdir(parents=True)
    arrays = ((images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"{i:06d}.png")
    return arrays


@pytest.mark.parametrize("res", [16, pytest.param(32, marks=pytest.mark.slow)])
def test_separates_real_from_noise_blur_and_untrained_model(metrics, res):
    metric = metrics(res)
    assert metric.info["heldout_accuracy"] >= 0.99
    real = real_images(res)
    noise = torch.randn(N, 3, res, res, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    scores = {"real": metric.score(real),
              "noise": metric.score(noise),
              "blurred": metric.score(gaussian_blur(real, kernel_size=7, sigma=1.0)),
              "untrained": metric.score(untrained_samples(res))}
    print({k: {m: round(v, 3) for m, v in s.items()} for k, s in scores.items()})
    floor = scores["real"]["shape_fid_floor"]
    assert all(s["shape_fid_floor"] == floor for s in scores.values())  # the same two real sets of N images
    assert scores["real"]["shape_fid"] < 2 * floor
    for bad in ("noise", "blurred", "untrained"):
        assert scores[bad]["shape_fid"] > 5 * floor, bad
    real_scores = scores["real"]
    assert real_scores["confident"] >= 0.9 and real_scores["confident_real"] >= 0.9
    assert real_scores["class_freq_gap"] < 10 and real_scores["class_freq_gap_floor"] < 10
    for bad in ("noise", "untrained"):  # these collapse onto one or two classes
        assert scores[bad]["class_freq_gap"] > 20, bad
    assert sum(real_scores[f"freq_{s}"] for s in ("disc", "square", "triangle", "ring")) == pytest.approx(1)
    assert all(isinstance(v, float) for v in real_scores.values())


@pytest.mark.parametrize("num_images", [64, 640])
def test_memorised_share_is_high_for_replayed_training_images_and_low_for_fresh_renders(metrics, num_images):
    """Replaying the stage's training images (with repetition) scores shape-FID 8-15 against a
    real-vs-real spread of 4-13 (FID cannot see it); the memorised share sees it: 1.0 against
    ~0.05 for fresh renders of the same distribution (5% by construction of the threshold)."""
    metrics(16)  # the 16 px classifier, trained once for the module
    settings = {**QUICKSTART, "num_images": num_images}
    metric = ShapeMetric.for_dataset(L("dataset:shapes")(resolution=16, **settings))
    train = Shapes(resolution=16, **settings).images  # what a stage on this dataset trains on
    assert torch.equal(metric.training_images(), sc.to_uint8(train))
    n = 128
    replay = train[torch.arange(n) % num_images]
    assert metric.nearest_training_distance(sc.quantise(replay)).max() == 0
    fresh = real_images(16, n=n)
    patch_mean = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(fresh, 4), scale_factor=4)
    noise = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    got = {name: metric.score(x) for name, x in
           [("replay", replay), ("fresh", fresh), ("patch_mean", patch_mean), ("noise", noise)]}
    print({k: round(v["memorised"], 3) for k, v in got.items()}, round(got["fresh"]["memorised_threshold"], 3))
    assert got["replay"]["memorised"] == 1.0
    assert got["fresh"]["memorised"] < 0.15 and got["fresh"]["memorised_real"] < 0.15
    assert got["patch_mean"]["memorised"] < 0.15 and got["noise"]["memorised"] == 0  # blur and noise are no copies
    assert metric.memorisation_threshold() > 0


def test_shape_kid_is_near_zero_for_real_and_clearly_positive_for_noise(metrics):
    """Unbiased MMD^2 (KID's cubic kernel) on the classifier's features: ~0 for two real sets at
    any size (its spread over real sets of 128 is tens), thousands for noise."""
    metric = metrics(16)
    n = 128
    real = metric.score(real_images(16, n=n))
    noise = metric.score(torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(2)).clamp(-1, 1))
    blurred = metric.score(gaussian_blur(real_images(16, n=n), kernel_size=7, sigma=1.0))
    print(real["shape_kid"], real["shape_kid_floor"], noise["shape_kid"], blurred["shape_kid"])
    assert noise["shape_kid"] > 1000 and blurred["shape_kid"] > 100
    assert abs(real["shape_kid"]) < 0.01 * noise["shape_kid"] and abs(real["shape_kid_floor"]) < 0.01 * noise["shape_kid"]
    assert noise["shape_kid_floor"] == real["shape_kid_floor"]  # the same two real sets


def test_tensor_png_folder_and_npz_score_the_same(metrics, tmp_path):
    metric = metrics(16)
    images = real_images(16, seed=778, n=40)
    arrays = write_pngs(tmp_path / "pngs", images)
    np.savez(tmp_path / "s.npz", arr_0=arrays)
    from_tensor = metric.score(images)
    assert metric.score(tmp_path / "pngs") == from_tensor == metric.score(str(tmp_path / "s.npz"))
    assert metric.score(arrays) == from_tensor


def test_bad_inputs_are_user_errors(metrics, tmp_path):
    metric = metrics(16)
    with pytest.raises(UserError, match="--resolution 32"):
        metric.score(real_images(32, n=4))
    with pytest.raises(UserError, match="at least 2"):
        metric.score(real_images(16, n=1))
    with pytest.raises(UserError, match=r"\[-1, 1\]"):
        metric.score(real_images(16, n=4) * 127.5 + 127.5)
    with pytest.raises(UserError, match="does not exist"):
        metric.score(tmp_path / "missing")
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="no 'arr_0'"):
        metric.score(tmp_path / "bad.npz")
    write_pngs(tmp_path / "mixed", real_images(16, n=2))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "mixed" / "zz.png")
    with pytest.raises(UserError, match="zz.png is 8x8"):
        metric.score(tmp_path / "mixed")


def test_dataset_settings_sources_and_errors():
    cfg = L("dataset:shapes")(resolution=16, **QUICKSTART)
    assert dataset_settings(cfg) == dataset_settings(None, resolution=16, **QUICKSTART) == {
        "resolution": 16, "max_shapes": 1, "size_range": [0.25, 0.42], "seed": 0, "num_images": 4096}
    assert dataset_settings(cfg, resolution=32)["resolution"] == 32
    assert dataset_settings({})["max_shapes"] == 2  # dataset:shapes's own defaults
    assert applies_to(cfg) and applies_to(Shapes(2, 8)) and not applies_to(L("dataset:image_folder")(root="x"))
    with pytest.raises(UserError, match="image_folder"):
        dataset_settings(L("dataset:image_folder")(root="x"))
    with pytest.raises(UserError, match="no argument colour"):
        dataset_settings({"colour": 1})
    with pytest.raises(UserError, match="size_range"):
        dataset_settings({"size_range": (0.3, 0.6)})
    built = dataset_settings(Shapes(2, 8, max_shapes=1, size_range=(0.2, 0.3)))  # a dataset object records them
    assert built == {"resolution": 8, "max_shapes": 1, "size_range": [0.2, 0.3], "seed": 0, "num_images": 2}

    class Unrecorded:
        resolution = 8
    with pytest.raises(UserError, match="config node"):
        dataset_settings(Unrecorded())


def test_seed_bands_never_meet_the_datasets_images():
    def keys(seed, n):
        return {abs(seed * sc.KEY_STRIDE + i) for i in range(n)}

    def metric_keys(band):  # the first and last key of each purpose's set (sets stay below KEY_STRIDE images)
        return [(band + p) * sc.KEY_STRIDE + i for p in sc.PURPOSES.values() for i in (0, sc.KEY_STRIDE - 1)]

    # the key formula the bands rely on: image KEY_STRIDE + i of seed s is image i of seed s + 1
    assert torch.equal(render(sc.KEY_STRIDE + 5, 3, 8)[0], render(5, 4, 8)[0])
    assert torch.equal(render(5, -3, 8)[0], render(sc.KEY_STRIDE * 3 - 5, 0, 8)[0])  # and keys count as |key|
    assert sc.seed_band(0, 4096) == sc.BANDS[0]
    for seed, n in [(0, 4096), (-3, 10), (sc.BANDS[0], 5), (sc.BANDS[0] + 2, 5), (-sc.BANDS[0] - 1, 100)]:
        band = sc.seed_band(seed, n)
        lo, hi = band * sc.KEY_STRIDE, (band + len(sc.PURPOSES)) * sc.KEY_STRIDE
        assert not any(lo <= k < hi for k in keys(seed, n)), (seed, n)
        assert not keys(seed, n) & set(metric_keys(band))
    assert sc.seed_band(sc.BANDS[0] + 2, 5) == sc.BANDS[1]
    with pytest.raises(UserError, match="below 2\\*\\*40"):
        sc.seed_band(sc.BANDS[0], (sc.BANDS[-1] - sc.BANDS[0] + 8) * sc.KEY_STRIDE)


def test_cache_reused_rebuilt_when_corrupt_or_renderer_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path))
    for key, value in dict(train_images=512, heldout_images=64, epochs=1).items():  # a short recipe (a second each)
        monkeypatch.setitem(sc.RECIPE, key, value)
    settings = dict(resolution=8, max_shapes=1, size_range=(0.25, 0.42))
    before = len(sc.BUILDS)
    first = ShapeMetric(**settings)
    path = sc.BUILDS[-1][0]
    assert len(sc.BUILDS) == before + 1 and path.parent == tmp_path / "shape_metric" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    stamp = path.stat().st_mtime_ns
    again = ShapeMetric(**settings)  # from the cache: nothing trained, file untouched
    assert len(sc.BUILDS) == before + 1 and path.stat().st_mtime_ns == stamp
    weights = first.net.state_dict()
    assert all(torch.equal(v, again.net.state_dict()[k]) for k, v in weights.items())

    path.write_bytes(path.read_bytes()[:100])  # a truncated file is rebuilt
    ShapeMetric(**settings)
    assert len(sc.BUILDS) == before + 2 and sc.BUILDS[-1][0] == path
    ShapeMetric(**settings)
    assert len(sc.BUILDS) == before + 2

    source = sc.renderer_source()
    monkeypatch.setattr(sc, "renderer_source", lambda: source + "\n# edited\n")
    changed = ShapeMetric(**settings)  # a renderer edit retrains into a new file
    assert len(sc.BUILDS) == before + 3 and sc.BUILDS[-1][0] != path and sc.BUILDS[-1][0].is_file()
    # the same renders, recipe and seeds: training is deterministic, the weights are bit-identical
    assert all(torch.equal(v, changed.net.state_dict()[k]) for k, v in weights.items())


def test_cli_on_png_folder_with_run_settings(metrics, cache_home, tmp_path, capsys):
    metrics(16)  # the 16 px classifier is in the cache: the CLI does not retrain
    built = len(sc.BUILDS)
    samples = tmp_path / "eval" / "s"
    write_pngs(samples / "images", real_images(16, seed=779, n=64))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_yaml(node({"data": {"dataset": L("dataset:shapes")(
        resolution=16, **QUICKSTART)}})))
    (samples / "sampling.json").write_text(json.dumps({"run_dir": str(run_dir)}))
    metrics_file = tmp_path / "metrics.jsonl"
    assert run_cli(main, [str(samples), "--metrics", str(metrics_file)]) == 0
    out = capsys.readouterr().out
    assert "shape-FID" in out and "max_shapes 1" in out and "config.yaml" in out
    entry = json.loads(metrics_file.read_text())
    assert entry["event"] == "shape_fid" and entry["num_samples"] == 64.0 and entry["resolution"] == 16
    assert run_cli(main, [str(samples / "images"), "--max-shapes", "1", "--size-range", "0.25", "0.42", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape_fid"] == entry["shape_fid"]
    assert len(sc.BUILDS) == built


def test_cli_tool_exit_codes(metrics, cache_home, tmp_path, capsys):
    metrics(16)
    write_pngs(tmp_path / "pngs", real_images(16, seed=780, n=32))
    env = {**os.environ, "MDREG_CACHE": str(cache_home), "OMP_NUM_THREADS": "1"}
    ok = subprocess.run([sys.executable, os.path.join(REPO, "tools", "shape_fid.py"), str(tmp_path / "pngs"),
                         "--max-shapes", "1", "--size-range", "0.25", "0.42"],
                        capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "shape-FID" in ok.stdout and "16 px" in ok.stdout and "fewer than 128 samples" in ok.stdout
    assert run_cli(main, [str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SAMPLES") and "does not exist" in err
    assert run_cli(main, [str(tmp_path / "pngs"), "--resolution", "32"]) == 2
    assert "--resolution 16" in capsys.readouterr().err
