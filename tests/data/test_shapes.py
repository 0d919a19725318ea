"""The built-in synthetic dataset: deterministic, structured, labelled."""
import torch

from mdreg.data.synthetic import SHAPES, Shapes


def test_same_seed_same_pixels_other_seed_other_pixels():
    a, b, c = Shapes(16, 16, seed=0), Shapes(16, 16, seed=0), Shapes(16, 16, seed=1)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_images_have_structure_and_valid_range():
    d = Shapes(64, 32, seed=0)
    x, label = d[0]
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert 0 <= label < len(SHAPES) and d.num_classes == len(SHAPES)
    per_image_std = d.images.flatten(1).std(1)
    assert (per_image_std > 0.05).all()            # every image has a shape on its background
    assert len(set(d.labels.tolist())) == len(SHAPES)
    assert len({tuple(img.flatten().tolist()) for img in d.images}) == 64  # all distinct
