"""Datasets (synthetic shapes, toy point clouds, image folders, latent stores, random tensors)
and data transforms (identity, Haar DWT, VAE latents)."""
from mdreg.data import dwt, image_folder, latents, random_tensors, synthetic, toy, transforms  # noqa: F401
