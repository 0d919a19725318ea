"""torch.compile / DDP wrappers never leak into checkpoints or the EMA."""
from __future__ import annotations

import torch

from mdreg.engine.handoff import strip_prefixes
from mdreg.engine.step import ForwardProxy, compile_backend
from tests.conftest import final_state, make_trainer


def test_compiled_training_saves_plain_keys_and_matches_eager(recipe_factory):
    """``train.compile=eager`` (dynamo tracing without a C++ toolchain, so the test stays
    fast) must train the same weights and write checkpoints without ``_orig_mod.``."""
    recipe = recipe_factory(steps=3, masker="patch", ratio=0.5, objective="mdsm")
    plain = make_trainer(recipe, ["train.run_name=plain"])
    plain.fit()
    compiled = make_trainer(recipe, ["train.run_name=compiled", "train.compile=eager"])
    assert isinstance(compiled.net, ForwardProxy)
    assert isinstance(compiled.net._wrapped, torch._dynamo.eval_frame.OptimizedModule)
    compiled.fit()
    state = torch.load(compiled.last_good, weights_only=True)
    for part in ("model", "ema"):
        assert not any("_orig_mod" in k or k.startswith("module.") for k in state[part])
        assert list(state[part]) == list(plain.parts.model.state_dict())
    a, b = final_state(plain), final_state(compiled)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)


def test_proxy_reads_attributes_from_the_plain_module():
    module = torch.nn.Linear(2, 3)
    calls = []
    proxy = ForwardProxy(lambda x: calls.append(x) or x, module)
    assert proxy.out_features == 3 and proxy(5) == 5 and calls == [5]


def test_strip_prefixes_and_backends():
    state = {"_orig_mod.module.a": 1, "module.b": 2, "c": 3}
    assert strip_prefixes(state) == {"a": 1, "b": 2, "c": 3}
    assert compile_backend(False) is None and compile_backend(None) is None
    assert compile_backend(True) == "inductor" and compile_backend("aot_eager") == "aot_eager"
