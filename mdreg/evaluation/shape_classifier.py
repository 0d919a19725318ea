"""The shape classifier behind shape-FID: a small CNN trained on fresh renders of
``dataset:shapes``, deterministically, and cached on disk.

Images come from :func:`mdreg.data.synthetic.render`, whose image ``i`` of seed ``s`` is
drawn from ``random.Random(s * 1_000_003 + i)`` (Python takes the absolute value of the
key). The metric draws only from seeds ``band + purpose`` (:data:`PURPOSES`) with
indices below 1_000_003, so its keys lie in ``[band * 1_000_003, (band + 4) * 1_000_003)``;
:func:`seed_band` picks the first band of :data:`BANDS` (from 2**40) that no image of the
evaluated dataset (seed, num_images) keys into: the classifier never sees a training image,
and the real reference sets are never training images either.

The trained network is cached in ``shape_metric/`` of mdreg's cache folder
(:func:`mdreg.io.cache_dir`: ``$MDREG_CACHE``, else ``$XDG_CACHE_HOME/mdreg`` or ``~/.cache/mdreg``), one file per resolution and dataset settings, named by a hash of the
renderer's source (``mdreg/data/synthetic.py``), this file's source and :data:`RECIPE`:
editing the renderer or the recipe retrains. Files are written atomically; an unreadable
or mismatching file is rebuilt.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

from mdreg.data import synthetic
from mdreg.errors import UserError
from mdreg.io import atomic_write
from mdreg.io import cache_dir as mdreg_cache_dir

KEY_STRIDE = 1_000_003  # render(): random.Random(seed * KEY_STRIDE + index)
BANDS = tuple(2 ** 40 + k * 2 ** 20 for k in range(8))
PURPOSES = {"train": 0, "heldout": 1, "reference": 2, "floor": 3}
RECIPE = dict(train_images=8192, heldout_images=2048, epochs=3, batch_size=64, lr=3e-3, weight_decay=1e-4,
              widths=(16, 32, 64), feature_dim=64, init_seed=0, shuffle_seed=1)
BUILDS = []  # (path, seconds) of every classifier trained in this process (tests count them)


def seed_band(seed: int, num_images: int) -> int:
    """The first seed band whose keys no image of the dataset (``seed``, ``num_images``) uses."""
    keys = (seed * KEY_STRIDE, seed * KEY_STRIDE + num_images - 1)
    lo = 0 if keys[0] <= 0 <= keys[1] else min(abs(k) for k in keys)
    hi = max(abs(k) for k in keys)
    for band in BANDS:
        if hi < band * KEY_STRIDE or lo >= (band + len(PURPOSES)) * KEY_STRIDE:
            return band
    raise UserError(f"dataset seed {seed} with {num_images} images overlaps every seed band of the shape metric; "
                    f"use a dataset seed below 2**40")


def render_set(count: int, seed: int, settings: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` fresh renders as uint8 (N, 3, R, R) (as a saved PNG holds them) and their labels."""
    if count > KEY_STRIDE:
        raise UserError(f"the shape metric renders at most {KEY_STRIDE} images per set, asked for {count}")
    size_range = tuple(settings["size_range"])
    images = torch.empty(count, 3, settings["resolution"], settings["resolution"], dtype=torch.uint8)
    labels = torch.empty(count, dtype=torch.long)
    for i in range(count):
        image, labels[i] = synthetic.render(i, seed, settings["resolution"], settings["max_shapes"], size_range)
        images[i] = to_uint8(image)
    return images, labels


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> 0..255, rounded as tools/sample.py saves samples."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """0..255 -> [-1, 1] floats."""
    return images.float() / 127.5 - 1


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] images to the 256 levels of a saved PNG."""
    return to_unit(to_uint8(images))


class ShapeNet(nn.Module):
    """Conv-BN-ReLU layers, stride 2 down to at most 4x4 (the stem too above 32 px), that
    map flattened into one hidden layer (the features), then the class logits."""

    def __init__(self, resolution: int, widths=(16, 32, 64), feature_dim: int = 64, classes: int = 4):
        super().__init__()

        def block(c_in, c_out, stride):
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        stem = 2 if resolution > 32 else 1
        layers, c, size = block(3, widths[0], stem), widths[0], math.ceil(resolution / stem)
        for w in widths[1:]:
            layers += block(c, w, 2)
            c, size = w, math.ceil(size / 2)
        while size > 4:
            layers += block(c, c, 2)
            size = math.ceil(size / 2)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * size * size, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of images in [-1, 1]."""
        features = self.body(x)
        return features, self.head(features)


@contextlib.contextmanager
def deterministic():
    """One thread and deterministic algorithms for the block; the caller's settings after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(strict, warn_only=warn_only)
        torch.set_num_threads(threads)


@torch.no_grad()
def accuracy(net: ShapeNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Share of uint8 ``images`` classified as ``labels``."""
    hits = sum(int((net(to_unit(images[i:i + batch_size]))[1].argmax(1) == labels[i:i + batch_size]).sum())
               for i in range(0, len(images), batch_size))
    return hits / len(images)


def train(settings: dict, band: int) -> tuple[ShapeNet, dict]:
    """A classifier for ``settings`` trained from scratch on renders of seed ``band``; its
    held-out accuracy on seed ``band + 1`` and the class frequencies of both sets' labels."""
    start, cpu = time.perf_counter(), time.process_time()
    r = RECIPE
    with deterministic():
        images, labels = render_set(r["train_images"], band + PURPOSES["train"], settings)
        torch.manual_seed(r["init_seed"])
        net = ShapeNet(settings["resolution"], r["widths"], r["feature_dim"], len(synthetic.SHAPES))
        steps = r["epochs"] * (len(images) // r["batch_size"])
        opt = torch.optim.AdamW(net.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=steps, pct_start=0.15)
        gen = torch.Generator().manual_seed(r["shuffle_seed"])
        for _ in range(r["epochs"]):
            order = torch.randperm(len(images), generator=gen)
            for b in range(len(images) // r["batch_size"]):
                idx = order[b * r["batch_size"]:(b + 1) * r["batch_size"]]
                loss = nn.functional.cross_entropy(net(to_unit(images[idx]))[1], labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        held, held_labels = render_set(r["heldout_images"], band + PURPOSES["heldout"], settings)
        info = {"heldout_accuracy": accuracy(net, held, held_labels), "train_accuracy": accuracy(net, images, labels),
                "class_freq": torch.bincount(torch.cat([labels, held_labels]), minlength=len(synthetic.SHAPES))
                .double().div(len(labels) + len(held_labels)).tolist(),
                "build_seconds": time.perf_counter() - start, "build_cpu_seconds": time.process_time() - cpu}
    return net, info


def cache_dir() -> Path:
    return mdreg_cache_dir() / "shape_metric"


def renderer_source() -> str:
    """The renderer's source code (its hash keys the cache)."""
    return inspect.getsource(synthetic)


def cache_key(settings: dict, band: int) -> str:
    """Hash of the renderer's source, this module's source, the recipe and the settings."""
    parts = [renderer_source(), inspect.getsource(sys.modules[__name__]),
             json.dumps(RECIPE, sort_keys=True), json.dumps(settings, sort_keys=True), str(band)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def cache_path(settings: dict, band: int, folder: Path | None = None) -> Path:
    lo, hi = settings["size_range"]
    name = f"shapenet-r{settings['resolution']}-m{settings['max_shapes']}-s{lo:g}-{hi:g}-{cache_key(settings, band)}.pt"
    return (Path(folder) if folder else cache_dir()) / name


def _load(path: Path, settings: dict) -> tuple[ShapeNet, dict] | None:
    """The cached classifier at ``path``, or None when it is missing, unreadable or for other settings."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["settings"] != settings or state["recipe"] != json.loads(json.dumps(RECIPE)):
            return None
        net = ShapeNet(settings["resolution"], RECIPE["widths"], RECIPE["feature_dim"], len(synthetic.SHAPES))
        net.load_state_dict(state["weights"])
        return net.eval(), dict(state["info"])
    except Exception:  # missing, truncated, not a torch file, wrong keys or shapes: rebuild
        return None


def load_or_train(settings: dict, band: int, folder: Path | None = None) -> tuple[ShapeNet, dict]:
    """The classifier for ``settings`` from the cache, trained (and cached) when needed."""
    path = cache_path(settings, band, folder)
    found = _load(path, settings) if path.is_file() else None
    if found is not None:
        return found
    net, info = train(settings, band)
    state = {"settings": settings, "recipe": json.loads(json.dumps(RECIPE)), "info": info,
             "weights": net.state_dict()}
    try:
        atomic_write(path, lambda fh: torch.save(state, fh), binary=True)
    except OSError as exc:  # an unwritable cache costs a retrain next time, not the metric
        print(f"warning: could not cache the shape classifier at {path}: {exc}")
    BUILDS.append((path, info["build_seconds"]))
    return net.eval(), info
