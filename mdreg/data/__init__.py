"""Datasets (synthetic shapes, image folders, latent stores) and data transforms."""
from mdreg.data import dwt, image_folder, latents, random_tensors, synthetic, transforms  # noqa: F401
