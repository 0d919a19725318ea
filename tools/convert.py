#!/usr/bin/env python
"""Convert checkpoints: ``python tools/convert.py OFFICIAL.pt OUT.pt --kind dit|maskdit|uvit|maskdm [--to official]``."""
from mdreg.commands.entry import convert

if __name__ == "__main__":
    convert()
