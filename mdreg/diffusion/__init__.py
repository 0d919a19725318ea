"""Noise schedules, objectives, preconditioning and samplers (DDPM and EDM families)."""
from mdreg.diffusion import objectives, objectives_edm, samplers, samplers_edm, schedules, schedules_edm  # noqa: F401
