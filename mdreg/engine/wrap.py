"""The module the training step calls: the model, optionally compiled and DDP-wrapped.

The trainer keeps two handles on one set of parameters:

* ``trainer.model`` — the plain ``nn.Module``. Checkpoints, the EMA, hand-off and
  sampling use it, so their keys never carry ``module.`` (DDP) or ``_orig_mod.``
  (``torch.compile``) prefixes — the prefix that breaks MaskDiT's sampling scripts after
  compiling;
* ``trainer.net`` — what objectives call: ``DDP(model)`` across several processes, then
  ``torch.compile`` when ``train.compile`` is set (PyTorch's recommended order: compiling
  the DDP module lets dynamo split graphs at bucket boundaries).

Objectives read attributes such as ``net.patch_size``; :class:`ForwardProxy` forwards
calls to the wrapped module and attribute reads to the plain one, so an objective works
the same with or without wrappers (MaskDiT's loss only worked under DDP).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

class ForwardProxy:
    """Calls go to ``wrapped`` (DDP/compiled), attribute reads to ``module``."""

    def __init__(self, wrapped: nn.Module, module: nn.Module):
        self.__dict__.update(_wrapped=wrapped, _module=module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapped(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def compile_backend(setting: Any) -> str | None:
    """``train.compile``: false/null -> None, true -> ``inductor``, a string -> that backend
    (``aot_eager``/``eager`` compile without a C++ toolchain, useful to debug graph breaks)."""
    if setting is None or setting is False:
        return None
    return "inductor" if setting is True else str(setting)


def wrap(model: nn.Module, env, compile_setting: Any = False, find_unused_parameters: bool = False,
         compile_mode: str | None = None):
    """Returns ``(net, ddp)``: the callable objectives use and the DDP module (or None).
    ``compile_mode`` is torch.compile's ``mode`` (``max-autotune-no-cudagraphs``, ...)."""
    wrapped, ddp = model, None
    if env.distributed:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                  find_unused_parameters=find_unused_parameters)
        wrapped = ddp
    backend = compile_backend(compile_setting)
    if backend is not None:
        wrapped = torch.compile(wrapped, backend=backend, mode=compile_mode)
    return (model if wrapped is model else ForwardProxy(wrapped, model)), ddp
