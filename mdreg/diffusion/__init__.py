"""Noise schedules, objectives, preconditioning and samplers."""
from mdreg.diffusion import objectives, samplers, schedules  # noqa: F401
