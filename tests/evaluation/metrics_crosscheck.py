"""Side by side: mdreg's metrics vs torch-fidelity (and pytorch-fid) on one fixed image set.

    python -m tests.evaluation.metrics_crosscheck [OUT_DIR] [--num 50] [--threads 2]

Writes into OUT_DIR (default /tmp/mdreg_metrics_crosscheck) a random-weights FID
Inception (He init, torch seed 0; tests/evaluation/test_fid.py's ``save_random_inception``),
50 sample and 50 reference PNGs rendered by ``mdreg.data.synthetic.render`` (seeds 1 and
2, 32 px), runs

* mdreg: ``compute_metrics`` (default ``--preprocess tf1``; also ``pytorch-fid``),
* torch-fidelity 0.4: ``calculate_metrics(isc, fid, kid, prc)`` with the same weights file
  (its ``inception-v3-compat`` extractor: its own TF-1.x resize, network code and formulas;
  isc_splits=1 = ADM's split of 5000 for N <= 5000, KID with its default rng_seed 2020 and
  subsets of N, precision/recall on Inception pool3 as ADM, not its default VGG16), plus
  sFID from its network via a hook on ``Mixed_6d.branch1x1`` and its FID formula (it has
  no sFID of its own),
* pytorch-fid 0.3: ``calculate_activation_statistics`` + ``calculate_frechet_distance``
  (its own resize), against mdreg's ``--preprocess pytorch-fid``,

and prints a markdown table. Random weights: the values check the code, not image quality.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import numpy as np
import torch


def _torch_fidelity(samples: Path, reference: Path, weights: Path, num: int) -> dict:
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    m = torch_fidelity.calculate_metrics(input1=str(samples), input2=str(reference), isc=True, fid=True, kid=True,
                                         prc=True, cuda=False, cache=False, verbose=False, isc_splits=1,
                                         feature_extractor="inception-v3-compat",  # its P/R default is VGG16
                                         kid_subset_size=num, feature_extractor_weights_path=str(weights),
                                         batch_size=25)
    fe = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    taps = []
    fe.Mixed_6d.branch1x1.register_forward_hook(lambda mod, args, out: taps.append(out[:, :7].permute(0, 2, 3, 1)))
    from PIL import Image

    stats = []
    for folder in (samples, reference):
        taps.clear()
        for f in sorted(folder.glob("*.png")):
            with torch.no_grad():
                fe(torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)[None].contiguous())
        stats.append(fid_features_to_statistics(torch.cat(taps).flatten(1).double()))
    sfid = fid_statistics_to_metric(stats[0], stats[1], False)["frechet_inception_distance"]
    return {"fid": m["frechet_inception_distance"], "sfid": sfid, "is": m["inception_score_mean"],
            "precision": m["precision"], "recall": m["recall"], "kid": m["kernel_inception_distance_mean"],
            "kid_std": m["kernel_inception_distance_std"]}


def _pytorch_fid(samples: Path, reference: Path, weights: Path) -> float:
    from pytorch_fid import fid_score, inception

    state = torch.load(weights, map_location="cpu", weights_only=True)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: state):
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    stats = [fid_score.calculate_activation_statistics(sorted(map(str, d.glob("*.png"))), model, 25, 2048, "cpu", 0)
             for d in (samples, reference)]
    return float(fid_score.calculate_frechet_distance(*stats[0], *stats[1]))


def main(argv=None) -> dict:
    from mdreg.evaluation.inception_metrics import compute_metrics
    from tests.evaluation.test_fid import _folder, save_random_inception

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", default="/tmp/mdreg_metrics_crosscheck")
    p.add_argument("--num", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "random_inception.pth"
    if not weights.is_file():
        save_random_inception(weights)
    samples, reference = out / f"samples{args.num}", out / f"reference{args.num}"
    for folder, seed in ((samples, 1), (reference, 2)):
        if not folder.is_dir():
            _folder(folder, seed=seed, count=args.num, res=32)
    common = dict(batch_size=25, use_cache=False, kid_subset_size=args.num)
    ours = compute_metrics(samples, reference, weights, **common)
    ours_pf = compute_metrics(samples, reference, weights, ("fid",), preprocess="pytorch-fid", **common)
    theirs = _torch_fidelity(samples, reference, weights, args.num)
    pf = _pytorch_fid(samples, reference, weights)
    rows = [("FID", "fid"), ("sFID", "sfid"), ("IS", "is"), ("Precision", "precision"), ("Recall", "recall"),
            ("KID", "kid"), ("KID std", "kid_std")]
    lines = [f"{args.num} samples vs {args.num} reference, random-weights Inception (torch seed 0, He init)", "",
             "| metric | mdreg (tf1) | torch-fidelity 0.4.0 | abs diff |", "|---|---|---|---|"]
    lines += [f"| {label} | {ours[k]:.8g} | {theirs[k]:.8g} | {abs(ours[k] - theirs[k]):.2g} |" for label, k in rows]
    lines += ["", "| metric | mdreg (--preprocess pytorch-fid) | pytorch-fid 0.3.0 | abs diff |", "|---|---|---|---|",
              f"| FID | {ours_pf['fid']:.8g} | {pf:.8g} | {abs(ours_pf['fid'] - pf):.2g} |"]
    print("\n".join(lines))
    record = {"mdreg_tf1": {k: ours[k] for _, k in rows}, "torch_fidelity": theirs,
              "mdreg_pytorch_fid_fid": ours_pf["fid"], "pytorch_fid_fid": pf}
    (out / "crosscheck.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
