"""Import every module that registers built-in components, so that lookups never fail
because "the module was never imported" (a common MMEngine pitfall)."""
import importlib

BUILTIN_MODULES = (
    "mdreg.models",
    "mdreg.masking",
    "mdreg.diffusion",
    "mdreg.data",
    "mdreg.engine.stage",
    "mdreg.engine.lr_schedules",
    "mdreg.evaluation.stage_metrics",
)

for _module in BUILTIN_MODULES:
    importlib.import_module(_module)
