"""Backbones: U-ViT/MaskDM (``uvit``), DiT (``dit``), MaskDiT (``maskdit``), the toy's ``coord_transformer``."""
from mdreg.models import coord_transformer, uvit  # noqa: F401
