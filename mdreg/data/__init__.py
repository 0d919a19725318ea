"""Datasets (synthetic shapes, image folders, latent stores) and data transforms."""
from mdreg.data import synthetic, transforms  # noqa: F401
