#!/usr/bin/env python
"""Training throughput: ``python tools/bench.py --model maskdit_xl_2 --batch 128 --precision bf16``."""
from mdreg.commands.entry import bench

if __name__ == "__main__":
    bench()
