#!/usr/bin/env python
"""Run a recipe: ``python tools/launch.py recipes/quickstart.py [overrides] [--dry-run]``."""
from mdreg.commands.entry import launch

if __name__ == "__main__":
    launch()
