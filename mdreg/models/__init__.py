"""Backbones: U-ViT/MaskDM (``uvit``, ``uvit_dwt``), DiT (``dit``), MaskDiT (``maskdit``), their
named sizes, official-checkpoint loading (:func:`load_official`) and FLOP counting
(:func:`forward_gmacs`)."""
from mdreg.models import dit, maskdit, uvit, uvit_dwt  # noqa: F401
from mdreg.models.flops import count_parameters, forward_gmacs  # noqa: F401
from mdreg.models.official import load_official, to_mdreg, to_official  # noqa: F401
