#!/usr/bin/env python
"""FID, sFID, IS, precision/recall, KID: ``python tools/metrics.py SAMPLES REFERENCE --inception-weights PATH``."""
from mdreg.commands.entry import metrics

if __name__ == "__main__":
    metrics()
