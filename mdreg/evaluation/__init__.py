"""Evaluation: sample grids, FID."""
