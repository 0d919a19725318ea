"""Backbones: U-ViT/MaskDM (``uvit``), DiT (``dit``), MaskDiT (``maskdit``)."""
from mdreg.models import uvit  # noqa: F401
