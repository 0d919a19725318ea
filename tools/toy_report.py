#!/usr/bin/env python
"""Measure MaskDM's Figure-1 toy runs: ``python tools/toy_report.py recipes/toy_swissroll.py [overrides]``."""
from mdreg.commands.entry import toy_report

if __name__ == "__main__":
    toy_report()
