"""mdreg: a config-as-code recipe registry for masked diffusion training.

Importing the package imports nothing else: a built-in component's module is imported the first
time its name is looked up (:mod:`mdreg.registry`, :mod:`mdreg.components`), so a command loads
only what it uses.

CPU threads: torch's intra-op pool is GNU OpenMP, whose idle threads spin at full speed by
default. When two processes share the cores (two runs, a run beside a test suite), spinning
threads steal each other's time slices and a small model runs 3-20x slower than alone.
Unless the environment says otherwise, mdreg asks OpenMP to let idle threads sleep
(``OMP_WAIT_POLICY=PASSIVE``); it must be set before torch loads OpenMP, hence here, first.
Measured in docs/performance.md ("CPU threads"); set ``OMP_WAIT_POLICY=ACTIVE`` to undo.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
