#!/usr/bin/env python
"""List and inspect registered components: ``python tools/registry.py list [KIND]`` / ``show NAME``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.registry_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
