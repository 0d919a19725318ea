"""What the engine asks of each kind of component, checked on a built one: the contract a
component of your own must keep (docs/extending.md). ``python tools/registry.py check NAME``
runs the check of a registered component; each check raises one :class:`ContractError` listing
every broken promise, or returns a line saying what it checked.

* masker: ``masker(batch, grid, generator, device, ratio=None)`` returns a (B, N) bool mask, True
  = hidden, with exactly ``masker.num_masked(ratio, N)`` True per row (the backbone gathers the
  same number of visible tokens from every row), drawn only from ``generator`` (the same state
  gives the same mask: exact resume); ``ratio`` and ``num_masked`` as :class:`mdreg.masking.Masker`.
* backbone: an ``nn.Module`` with ``img_size``, ``patch_size``, ``in_chans``, ``out_chans``,
  ``grid_size`` (tokens per side), ``num_classes`` (0: unconditional) and ``null_label`` (the
  class id of "no class", None when unconditional); ``forward(x, t, y=None, ids_keep=None)``
  maps (B, in_chans, H, W) to (B, out_chans, H, W), also when ``ids_keep`` (B, K) names the
  visible tokens (a masked batch: the hidden tokens must not enter the transformer).
* objective: ``objective(net, x0, y, ids_keep=None, generator=None)`` returns an object whose
  ``loss`` is a finite scalar that back-propagates into the net, drawing only from
  ``generator``; ``objective.model_fn(net, y, guidance_scale)`` gives samplers a function of
  ``(x, t)`` shaped like ``x``.
* dataset: ``len(dataset) > 0``; ``dataset[i]`` is ``(x, label)`` with ``x`` a float (C, H, W)
  tensor of ``channels`` channels and ``resolution`` columns (pixels in [-1, 1] for pixel-space
  models; the toys' points are 1 x D) and ``label`` an int in ``[-1, num_classes)`` (-1: no class).
"""
from __future__ import annotations

import torch

from mdreg.errors import UserError


class ContractError(UserError):
    """A component that does not keep its kind's contract."""


def _fail(what: str, problems: list[str]) -> None:
    if problems:
        raise ContractError(f"{what} breaks its contract (docs/extending.md): " + "; ".join(problems))


def check_masker(masker, grid: tuple[int, int] = (4, 4), batch: int = 8) -> str:
    n, problems = grid[0] * grid[1], []
    for ratio in (0.25, 0.5, 0.9):
        mask = masker(batch, grid, torch.Generator().manual_seed(0), "cpu", ratio=ratio)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (batch, n):
            problems.append(f"at ratio {ratio} it returned {getattr(mask, 'dtype', type(mask))} "
                            f"{tuple(getattr(mask, 'shape', ()))}, not a ({batch}, {n}) bool mask")
            continue
        k = masker.num_masked(ratio, n)
        counts = sorted(set(mask.sum(1).tolist()))
        if counts != [k]:
            problems.append(f"at ratio {ratio} it hides {counts} tokens per row, not exactly num_masked = {k}")
        again = masker(batch, grid, torch.Generator().manual_seed(0), "cpu", ratio=ratio)
        if not torch.equal(mask, again):
            problems.append(f"at ratio {ratio} the same generator state gave another mask (draw only from the "
                            f"generator it is given)")
    _fail(repr(masker), problems)
    return f"{masker!r}: exactly num_masked tokens per row, reproducible from the generator (grid {grid})"


def check_backbone(model: torch.nn.Module, batch: int = 2) -> str:
    missing = [a for a in ("img_size", "patch_size", "in_chans", "out_chans", "grid_size", "num_classes", "null_label")
               if not hasattr(model, a)]
    _fail(type(model).__name__, [f"it has no attribute {a!r}" for a in missing])
    problems = []
    if bool(model.num_classes) != (model.null_label is not None):
        problems.append(f"num_classes={model.num_classes} but null_label={model.null_label} (a conditional model "
                        f"needs a null class for guidance, an unconditional one has none)")
    x = torch.randn(batch, model.in_chans, model.img_size, model.img_size)
    t = torch.rand(batch) * 100
    y = torch.arange(batch) % model.num_classes if model.num_classes else None
    want = (batch, model.out_chans, model.img_size, model.img_size)
    n = model.grid_size[0] * model.grid_size[1]
    keep = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(i))[:n // 2] for i in range(batch)])
    with torch.no_grad():
        for ids_keep, label in ((None, "all tokens"), (keep.sort(1).values, "half the tokens visible")):
            out = model(x, t, y, ids_keep=ids_keep)
            if tuple(out.shape) != want:
                problems.append(f"with {label} it returned {tuple(out.shape)}, not {want}")
    _fail(type(model).__name__, problems)
    return f"{type(model).__name__}: (B, {model.in_chans}, {model.img_size}, {model.img_size}) -> {want[1:]}, with " \
           f"all tokens and with half of them visible"


def check_objective(objective, model: torch.nn.Module, batch: int = 4) -> str:
    x0 = torch.rand(batch, model.in_chans, model.img_size, model.img_size) * 2 - 1
    y = torch.arange(batch) % model.num_classes if model.num_classes else None
    problems = []
    losses = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        out = objective(model, x0, y, ids_keep=None, generator=torch.Generator().manual_seed(0))
        loss = getattr(out, "loss", None)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0 or not torch.isfinite(loss):
            _fail(repr(objective), [f"it returned {out!r}; its .loss must be a finite scalar tensor"])
        if loss.requires_grad:
            loss.backward()
        losses.append(float(loss))
    if not any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()):
        problems.append("its loss does not back-propagate into the net")
    if losses[0] != losses[1]:
        problems.append("the same generator state gave another loss (draw noise and timesteps only from the generator)")
    fn = objective.model_fn(model, y=y, guidance_scale=1.0)
    with torch.no_grad():
        eps = fn(x0, torch.full((batch,), 10, dtype=torch.long))
    if tuple(eps.shape) != tuple(x0.shape):
        problems.append(f"model_fn(net, y, guidance_scale)(x, t) returned {tuple(eps.shape)}, not {tuple(x0.shape)}")
    _fail(repr(objective), problems)
    return f"{objective!r}: a finite scalar loss that trains the net, reproducible from the generator; model_fn for " \
           f"samplers"


def check_dataset(dataset) -> str:
    size = len(dataset)
    _fail(type(dataset).__name__, [] if size > 0 else ["it is empty"])
    problems = []
    item = dataset[0]
    if not (isinstance(item, tuple) and len(item) == 2):
        _fail(type(dataset).__name__, [f"dataset[0] is {type(item).__name__}, not an (x, label) pair"])
    x, label = item
    channels, resolution = getattr(dataset, "channels", None), getattr(dataset, "resolution", None)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 3 or x.shape[0] != channels \
            or (resolution and x.shape[-1] != resolution):
        problems.append(f"dataset[0][0] is {getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}, not a float "
                        f"(C, H, W) tensor with C = channels = {channels} and W = resolution = {resolution}")
    classes = int(getattr(dataset, "num_classes", 0) or 0)
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < max(classes, 0) and label != -1:
        problems.append(f"dataset[0][1] is {label!r}, not an int in [-1, num_classes={classes})")
    _fail(type(dataset).__name__, problems)
    return f"{type(dataset).__name__}: {size} items of {tuple(x.shape)}, labels in [-1, {classes})"


# a small backbone to check an objective with (``tools/registry.py check objective:NAME``)
SMALL_BACKBONES = {
    "uvit": dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=3, num_heads=2),
    "dit": dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2, num_classes=4),
    "maskdit": dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2, num_classes=4,
                    decoder_hidden_size=32, decoder_depth=1, decoder_num_heads=2),
}


def check_registered(ref: str, kwargs: dict, backbone: str = "uvit") -> str:
    """Build the registered ``kind:name`` with ``kwargs`` and check it against its kind's contract
    (an objective: on a small ``backbone``, with a DDPM schedule unless ``kwargs`` gives one)."""
    from mdreg.registry import lookup, lookup_entry

    entry = lookup_entry(ref if ":" in ref else next(iter(_kinds(ref))))
    build = entry.obj
    if entry.kind == "masker":
        return check_masker(build(**kwargs))
    if entry.kind == "backbone":
        return check_backbone(build(**kwargs))
    if entry.kind == "dataset":
        return check_dataset(build(**kwargs))
    if entry.kind == "objective":
        if backbone not in SMALL_BACKBONES:
            raise UserError(f"--backbone {backbone}: choose one of {', '.join(SMALL_BACKBONES)}")
        model = lookup(f"backbone:{backbone}")(**SMALL_BACKBONES[backbone])
        if "schedule" not in kwargs:
            edm = entry.name in ("edm", "maskdit")
            kwargs = {**kwargs, "schedule": lookup("noise_schedule:edm")() if edm else
                      lookup("noise_schedule:ddpm_linear")(num_timesteps=100)}
        return check_objective(build(**kwargs), model)
    raise UserError(f"{entry.ref}: there is no contract check for kind {entry.kind!r} (checked kinds: masker, "
                    f"backbone, objective, dataset)")


def _kinds(name: str) -> list[str]:
    from mdreg.registry import find

    found = [e.ref for e in find(name)]
    if not found:
        raise UserError(f"no component is registered as {name!r}; `python tools/registry.py list` shows all")
    return found
