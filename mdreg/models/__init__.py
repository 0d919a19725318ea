"""Backbones: U-ViT/MaskDM (``uvit``, ``uvit_dwt``), DiT (``dit``), MaskDiT (``maskdit``), the
Figure-1 toy's ``coord_transformer``, their named sizes (``presets.py``), official-checkpoint
loading (``official.py``) and FLOP counting (``flops.py``). Each registers itself when its name
is first looked up (:mod:`mdreg.components`)."""
