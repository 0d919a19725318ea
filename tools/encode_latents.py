#!/usr/bin/env python
"""Encode an image folder into a latent store: ``python tools/encode_latents.py IMAGES --vae DIR --out STORE``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.data.encode_latents import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
