"""Noise schedules, objectives, preconditioning and samplers (DDPM and EDM families)."""
from mdreg.diffusion import (objectives, objectives_edm, objectives_hybrid, samplers, samplers_edm,  # noqa: F401
                             samplers_learned, schedules, schedules_edm)
