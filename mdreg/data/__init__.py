"""Datasets (synthetic shapes, image folders, latent stores) and data transforms."""
from mdreg.data import dwt, image_folder, latents, synthetic, transforms  # noqa: F401
