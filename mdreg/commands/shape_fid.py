"""``python tools/shape_fid.py SAMPLES``: the download-free shape metric of samples of the synthetic
shapes data (:mod:`mdreg.evaluation.shape_metric`)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.evaluation import shape_metric
from mdreg.evaluation.shape_metric import (
    THRESHOLD,
    ShapeMetric,
    check_size,
    dataset_settings,
    report,
    run_settings,
    to_images,
)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/shape_fid.py", description=shape_metric.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", help="folder of PNGs or .npz (arr_0 uint8 NHWC) of generated images")
    p.add_argument("--resolution", type=int, default=None, help="dataset resolution (default: the samples' size)")
    p.add_argument("--max-shapes", type=int, default=None)
    p.add_argument("--size-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    p.add_argument("--dataset-seed", type=int, default=None, help="the training data's seed (kept disjoint)")
    p.add_argument("--num-images", type=int, default=None, help="the training data's size (kept disjoint)")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="softmax confidence threshold")
    p.add_argument("--metrics", default=None, help="also append the scores to this jsonl file")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    args = p.parse_args(argv)
    import_plugins_of(args)
    samples = Path(args.samples)
    images = to_images(samples)
    node, source = run_settings(samples)
    flags = dict(resolution=args.resolution, max_shapes=args.max_shapes, size_range=args.size_range,
                 seed=args.dataset_seed, num_images=args.num_images)
    if not node.get("resolution") and args.resolution is None:
        flags["resolution"] = images.shape[-1]
    if any(v is not None for k, v in vars(args).items() if k in ("max_shapes", "size_range", "resolution")):
        source = "flags" if source.endswith("defaults") else f"{source} and flags"
    settings = dataset_settings(node, **flags)
    check_size(images, settings["resolution"])  # before (maybe) training a classifier
    metric = ShapeMetric(**settings, threshold=args.threshold)
    scores = metric.score(images)
    print(json.dumps(scores) if args.json else report(scores, metric, source))
    if args.metrics:
        entry = {"event": "shape_fid", "time": time.time(), **scores, "samples": str(samples), **metric.settings}
        with open(args.metrics, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return 0
