"""Datasets (synthetic shapes, toy point clouds, image folders, latent stores, random tensors)
and data transforms (identity, Haar DWT, VAE latents)."""
