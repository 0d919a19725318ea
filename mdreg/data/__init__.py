"""Datasets (synthetic shapes, toy point clouds, image folders, latent stores) and data transforms."""
from mdreg.data import synthetic, toy, transforms  # noqa: F401
