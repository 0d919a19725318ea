#!/usr/bin/env python
"""What the shape metric sees: scores of known image sets, as a markdown table.

    OMP_NUM_THREADS=1 python tools/perf/shape_metric_calibration.py [--num 256]

The data are the quickstart's / evidence recipes' shapes (16 px, one shape of radius 0.25-0.42,
seed 0); every row is ``--num`` images scored by ``ShapeMetric`` (mdreg/evaluation/shape_metric.py)
for a dataset of ``train`` images (4096 unless the row says otherwise):

* real: fresh renders (seeds 777-779: neither the data's nor the metric's);
* memorised N: the dataset's own N training images as the samples, repeated to ``--num``
  (the first ``--num`` of them when N is larger), scored by the metric of that N-image dataset;
  "+ noise": those copies plus N(0, 0.1^2) per pixel (near-copies);
* patch means: real renders averaged over 2x2 / 4x4 pixel patches (sharp inside no patch);
* real + noise: real renders plus N(0, sigma^2) per pixel on [-1, 1], clipped;
* noise: N(0, 1) per pixel, clipped to [-1, 1];
* untrained: the quickstart's backbone freshly initialised (torch seed 0), sampled with the
  quickstart's sampler (DDIM-50, eta 1, maskdm's epsilon convention) and objective (dsm, cosine).

docs/evaluation.md, "Shape metric calibration", holds its output. About 30 s on one core once
the 16 px classifier is cached (it trains once, about 10 s, into mdreg's cache folder).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mdreg.config import instantiate, load_recipe  # noqa: E402
from mdreg.data.synthetic import SHAPES, Shapes  # noqa: E402
from mdreg.engine.sampling import generate  # noqa: E402
from mdreg.evaluation.shape_metric import ShapeMetric, to_images  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = dict(resolution=16, seed=0, max_shapes=1, size_range=(0.25, 0.42))
COLUMNS = ("shape_fid", "shape_kid", "memorised", "confident", "class_freq_gap")


def real(num: int, seed: int) -> torch.Tensor:
    return Shapes(num, **{**DATA, "seed": seed}).images


def patch_mean(images: torch.Tensor, p: int) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(images, p), scale_factor=p, mode="nearest")


def noisy(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    return (images + sigma * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))).clamp(-1, 1)


def untrained(num: int) -> torch.Tensor:
    cfg = load_recipe(os.path.join(REPO, "recipes", "quickstart.py"))
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    stage = cfg.stages.finetune
    return generate(net, instantiate(stage.objective), instantiate(stage.sample.sampler),
                    instantiate(cfg.data.transform), num, (3, 16, 16), seed=0)


@torch.no_grad()
def confidence_anatomy(metric: ShapeMetric, images: torch.Tensor) -> str:
    """Median feature norm and logit margin, and the commonest predicted class's share."""
    features, logits = metric.net(to_images(images))  # quantised as score() does
    top2 = logits.topk(2, dim=1).values
    counts = torch.bincount(logits.argmax(1), minlength=len(SHAPES))
    return (f"|features| {features.norm(dim=1).median():.1f}, margin {(top2[:, 0] - top2[:, 1]).median():.1f}, "
            f"{SHAPES[int(counts.argmax())]} {counts.max() / len(images):.0%}")


def rows(num: int):
    """(label, train images, images) of every row."""
    yield from ((f"real (seed {s})", 4096, real(num, s)) for s in (777, 778, 779))
    for n in (64, 640):
        replay = Shapes(n, **DATA).images[torch.arange(num) % n]
        yield f"memorised {n}", n, replay
        yield f"memorised {n} + noise sigma 0.1", n, noisy(replay, 0.1, 3)
    base = real(num, 777)
    yield "real, 2x2 patch means", 4096, patch_mean(base, 2)
    yield "real, 4x4 patch means", 4096, patch_mean(base, 4)
    for sigma in (0.05, 0.1, 0.2):
        yield f"real + noise sigma {sigma}", 4096, noisy(base, sigma, 1)
    yield "noise N(0, 1)", 4096, torch.randn(num, 3, 16, 16, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)
    yield "untrained quickstart model", 4096, untrained(num)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=256, help="images per row (the stage metric's default: 256)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    metrics = {}
    lines = [f"| images ({args.num} per row) | train | " + " | ".join(COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    floors, why = {}, []
    for label, n, images in rows(args.num):
        if n not in metrics:
            metrics[n] = ShapeMetric(**DATA, num_images=n)
        s = metrics[n].score(images)
        if label.startswith(("real (seed 777)", "real, 4x4", "noise", "untrained")):
            why.append(f"  {label}: " + confidence_anatomy(metrics[n], images))
        floors[n] = (s["shape_fid_floor"], s["shape_kid_floor"], s["memorised_real"], s["memorised_threshold"])
        lines.append(f"| {label} | {n} | {s['shape_fid']:.1f} | {s['shape_kid']:.1f} | {s['memorised']:.3f} | "
                     f"{s['confident']:.3f} | {s['class_freq_gap']:.1f} |")
    print("\n".join(lines))
    print()
    for n, (fid, kid, mem, thr) in sorted(floors.items()):
        print(f"floors, {n} training images: shape_fid_floor {fid:.1f}, shape_kid_floor {kid:.1f}, "
              f"memorised_real {mem:.3f} (threshold {thr:.3f} on [-1, 1] pixels)")
    print("why `confident` is high off the data (median |features|, median top-2 logit margin, commonest class):")
    print("\n".join(why))
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
