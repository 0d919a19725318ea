#!/usr/bin/env python
"""Run a recipe: ``python tools/launch.py recipes/quickstart.py [overrides] [--dry-run]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.launch.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
