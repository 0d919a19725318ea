"""The FID Inception network and one pass that yields every feature the metrics use.

Network: pytorch-fid's port of the TF "inception-2015-12-05" graph that TTUR's FID and
ADM's evaluator run (``fid_inception_v3``: torchvision's Inception3 with the FID blocks,
1008 classes), its weights read from a LOCAL file (``--inception-weights``:
``pt_inception-2015-12-05-6726825d.pth`` from pytorch-fid's releases). One forward pass
per batch returns, as float32:

* ``pool`` (N, 2048): ``avgpool`` after ``Mixed_7c`` = the graph's ``pool_3:0`` (FID, P/R, KID);
* ``spatial`` (N, 2023): the first 7 channels of ``Mixed_6d.branch1x1`` (conv + BN + ReLU),
  17x17, flattened in NHWC order = ADM's ``mixed_6/conv:0[..., :7]`` reshaped (sFID). The
  graph's ``mixed_6`` is the 4th 17x17 block (``mixed_4``..``mixed_7`` = ``Mixed_6b``..``6e``;
  torch-fidelity's utils/util_convert_inception_weights.py maps ``mixed_6/conv/*`` to
  ``Mixed_6d.branch1x1.*``) and its ``conv`` is the 1x1 branch; the order matters because a
  published ``mu_s``/``sigma_s`` is indexed that way;
* ``logits`` (N, 1008): ``pool @ fc.weight.T`` without the bias = ADM's IS input
  (``softmax/logits/MatMul`` of pool_3 and the weight, its softmax over 1008 classes).

Preprocessing (``PREPROCESS``), applied to uint8 RGB in [0, 255]:

* ``tf1`` (default): the graph's own ``ResizeBilinear`` to 299x299 as TF 1.x computes it
  (align_corners=False, no half-pixel centres: source = dest * in/out) on the [0, 255]
  floats — torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` — then
  ``(x - 128) / 128`` (the graph's ``Sub``/``Mul``): what ADM feeds (``ExpandDims:0``);
* ``pytorch-fid``: pytorch-fid's ``F.interpolate(bilinear, align_corners=False)`` (half-pixel
  centres) on x/255, then ``2x - 1`` — the numbers ``python -m pytorch_fid`` gives.

The pass runs in full float32 (TF32 off, as on CPU). ``pool_dims`` < 2048 (64/192/768: an
earlier block, averaged, as pytorch-fid's ``--dims``) serves only quick FID checks (tests);
those passes stop early and give no ``spatial``/``logits``.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mdreg.errors import UserError

WANTED = ("the metrics need pytorch-fid's FID Inception weights pt_inception-2015-12-05-6726825d.pth "
          "(from pytorch-fid's GitHub releases) as --inception-weights")
POOL_DIMS = (64, 192, 768, 2048)
SPATIAL_CHANNELS = 7  # ADM: mixed_6/conv[..., :7] -> 17 * 17 * 7 = 2023


def weights_digest(weights: str | Path) -> str:
    """sha256 of the weights file (part of the reference-feature cache key)."""
    digest = hashlib.sha256()
    with open(weights, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_inception(weights: str | Path, device="cpu") -> torch.nn.Module:
    """pytorch-fid's FID Inception3 (with its 1008-class ``fc``) built from a local file;
    a missing or unfitting file is a :class:`UserError`."""
    weights = Path(weights)
    if not weights.is_file():
        raise UserError(f"--inception-weights {weights}: file not found. FID needs the FID Inception weights "
                        f"(pt_inception-2015-12-05-6726825d.pth from pytorch-fid's releases) as a local file; "
                        f"nothing is downloaded at run time")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for unreadable files
        raise UserError(f"--inception-weights {weights}: not a readable PyTorch weights file; {WANTED}") from None
    if not isinstance(state, dict):
        raise UserError(f"--inception-weights {weights} holds a {type(state).__name__}, not a state dict; {WANTED}")
    try:
        net = fid_inception_v3(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # load_state_dict: missing/unexpected/shape
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:200] + " ..."
        raise UserError(f"--inception-weights {weights}: its tensors do not fit the FID InceptionV3 ({detail}); "
                        f"{WANTED}") from None
    return net.to(device).eval().requires_grad_(False)


def fid_inception_v3(state: dict) -> torch.nn.Module:
    """pytorch-fid's FID Inception3 with ``state`` loaded: torchvision's InceptionV3 (1008 classes,
    no aux logits) with pytorch-fid's FID blocks, as its ``fid_inception_v3`` assembles it, built
    here from the blocks it exports because that function downloads its weights."""
    import torchvision
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = (FIDInceptionA(192, pool_features=32),
                                                FIDInceptionA(256, pool_features=64),
                                                FIDInceptionA(288, pool_features=64))
    net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = (FIDInceptionC(768, channels_7x7=c) for c in (128, 160, 160, 192))
    net.Mixed_7b, net.Mixed_7c = FIDInceptionE_1(1280), FIDInceptionE_2(2048)
    net.load_state_dict(state)
    return net


def _tf1(x: torch.Tensor) -> torch.Tensor:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return (interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False) - 128) / 128


def _pytorch_fid(x: torch.Tensor) -> torch.Tensor:
    return 2 * F.interpolate(x / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1


PREPROCESS = {"tf1": _tf1, "pytorch-fid": _pytorch_fid}


def check_preprocess(name: str) -> None:
    if name not in PREPROCESS:
        raise UserError(f"--preprocess {name}: choose one of {', '.join(PREPROCESS)}")


def spatial_features(branch: torch.Tensor) -> torch.Tensor:
    """ADM's sFID vector: first 7 channels of (N, C, 17, 17), flattened as NHWC."""
    return branch[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(len(branch), -1)


def _avg(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


@contextmanager
def full_fp32():
    """TF32 off for convolutions and matmuls (cuDNN allows it by default on Ampere+), restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def forward(net, images: np.ndarray, preprocess: str = "tf1", pool_dims: int = 2048, device="cpu") -> dict:
    """Features of one uint8 (B, H, W, 3) batch: ``pool`` and, for pool_dims 2048,
    ``spatial`` and ``logits`` (see the module docstring)."""
    with full_fp32():
        return _forward(net, images, preprocess, pool_dims, device)


def _forward(net, images: np.ndarray, preprocess: str, pool_dims: int, device) -> dict:
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).to(device).permute(0, 3, 1, 2).float()
    x = PREPROCESS[preprocess](x)
    x = net.maxpool1(net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x))))
    if pool_dims == 64:
        return {"pool": _avg(x).float().cpu()}
    x = net.maxpool2(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x)))
    if pool_dims == 192:
        return {"pool": _avg(x).float().cpu()}
    for block in (net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c):
        x = block(x)
    spatial = spatial_features(net.Mixed_6d.branch1x1(x))
    x = net.Mixed_6e(net.Mixed_6d(x))
    if pool_dims == 768:
        return {"pool": _avg(x).float().cpu()}
    pool = _avg(net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(x))))
    logits = pool @ net.fc.weight.T
    return {"pool": pool.float().cpu(), "spatial": spatial.float().cpu(), "logits": logits.float().cpu()}


def extract(net, batches, preprocess: str = "tf1", pool_dims: int = 2048, device="cpu") -> dict:
    """Concatenated :func:`forward` features (numpy float32) over uint8 batches."""
    if pool_dims not in POOL_DIMS:
        raise UserError(f"--dims {pool_dims}: choose one of {list(POOL_DIMS)}")
    check_preprocess(preprocess)
    parts: dict[str, list] = {}
    for batch in batches:
        for key, value in forward(net, batch, preprocess, pool_dims, device).items():
            parts.setdefault(key, []).append(value.numpy())
    if not parts:
        return {}
    return {key: np.concatenate(value) for key, value in parts.items()}
