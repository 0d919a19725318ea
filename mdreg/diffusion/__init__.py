"""Noise schedules, objectives, preconditioning and samplers (DDPM and EDM families)."""
