"""mdreg: a config-as-code recipe registry for masked diffusion training.

Importing the package registers every built-in component (see :mod:`mdreg.registry`).
"""
__version__ = "0.1.0"

from mdreg import registry  # noqa: E402,F401
from mdreg import components  # noqa: E402,F401  (imports and registers all built-ins)
