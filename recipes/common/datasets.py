"""The papers' datasets as config nodes whose location the user sets once, in ``paths``.

A recipe carries a ``paths`` section (``paths = paths_of("celeba")``) and its dataset nodes
and FID references interpolate it, so one override moves both:

    python tools/launch.py recipes/maskdm_celeba64_table1.py paths.celeba=/datasets/celeba/img_align_celeba
    MDREG_DATA=/datasets python tools/launch.py recipes/maskdit_in256.py   # every default under /datasets

Defaults are ``$MDREG_DATA/<name>`` (``/data/<name>`` without the variable). Image sets are
``image_folder`` nodes: images found recursively under the folder, resized and centre-cropped
to the resolution (MaskDM sec. 4.1: CelebA 64x64, CelebA-HQ and VGGFace2 256x256, aspect
ratio kept). ImageNet is a ``latents`` store (MaskDiT appendix 6.1: the SD VAE's moments per
image, encoded once with ``tools/encode_latents.py``; 8x32x32 at 256px, 8x64x64 at 512px).
"""
from mdreg.config import L

_ROOT = "${oc.env:MDREG_DATA,/data}"
_LOCATIONS = {
    "celeba": f"{_ROOT}/celeba",                    # CelebA (aligned), MaskDM sec. 4.2
    "celebahq": f"{_ROOT}/celebahq",                # CelebA-HQ, 30k images, MaskDM sec. 4.3/4.4
    "vggface2": f"{_ROOT}/vggface2",                # VGGFace2 training images, MaskDM sec. 4.4
    "imagenet256_latents": f"{_ROOT}/imagenet256_latents",  # MaskDiT: 1.28M images at 256px as VAE moments
    "imagenet512_latents": f"{_ROOT}/imagenet512_latents",  # MaskDiT official 512px setting
    "adm_ref_256": f"{_ROOT}/fid_refs/VIRTUAL_imagenet256_labeled.npz",  # ADM's reference batch (MaskDiT 4.1)
    "adm_ref_512": f"{_ROOT}/fid_refs/VIRTUAL_imagenet512.npz",
}


def paths_of(*names: str) -> dict:
    """The ``paths`` section of a recipe that uses these datasets/references."""
    unknown = [n for n in names if n not in _LOCATIONS]
    if unknown:
        raise KeyError(f"unknown dataset path {unknown[0]!r}; known: {', '.join(_LOCATIONS)}")
    return {name: _LOCATIONS[name] for name in names}


def image_folder(name: str, resolution: int, fraction: float = 1.0, subset_seed: int = 0):
    """Images under ``${paths.<name>}``; ``fraction`` < 1 keeps a fixed random subset (MaskDM Table 3's
    10% / 1% of CelebA-HQ), the same for every run with the same ``subset_seed``."""
    extra = dict(fraction=fraction, subset_seed=subset_seed) if fraction < 1.0 else {}
    return L("dataset:image_folder")(root="${paths.%s}" % name, resolution=resolution, **extra)


def latents(name: str):
    """A VAE latent store under ``${paths.<name>}`` (use with ``transform:latent``)."""
    return L("dataset:latents")(root="${paths.%s}" % name)
