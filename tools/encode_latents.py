#!/usr/bin/env python
"""Encode an image folder into a latent store: ``python tools/encode_latents.py IMAGES --vae DIR --out STORE``."""
from mdreg.commands.entry import encode_latents

if __name__ == "__main__":
    encode_latents()
