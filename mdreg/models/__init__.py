"""Backbones: U-ViT/MaskDM (``uvit``, ``uvit_dwt``), DiT (``dit``), MaskDiT (``maskdit``), the
Figure-1 toy's ``coord_transformer``, their named sizes, official-checkpoint loading
(:func:`load_official`) and FLOP counting (:func:`forward_gmacs`)."""
from mdreg.models import coord_transformer, dit, maskdit, uvit, uvit_dwt  # noqa: F401
from mdreg.models.flops import count_parameters, forward_gmacs  # noqa: F401
from mdreg.models.official import load_official, to_mdreg, to_official  # noqa: F401
