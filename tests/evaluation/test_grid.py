"""Sample grids are real pictures of the samples: layout, colours, enlargement, padding."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mdreg.engine.sampling import save_grid

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)]


def test_four_solid_images_make_a_2x2_grid_of_exact_colours(tmp_path):
    # four 8px images in [-1, 1]: red, green, blue, black
    images = torch.stack([torch.tensor(c, dtype=torch.float32).view(3, 1, 1).expand(3, 8, 8) / 127.5 - 1
                          for c in COLOURS])
    save_grid(images, tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as png:
        assert png.format == "PNG" and png.mode == "RGB"
        pixels = np.asarray(png)
    cell, pad = 64, 2  # 8px enlarged 8x (nearest) to the 64px minimum, 2px padding around every cell
    assert pixels.shape == (2 * cell + 3 * pad, 2 * cell + 3 * pad, 3)
    for i, colour in enumerate(COLOURS):
        top, left = pad + (i // 2) * (cell + pad), pad + (i % 2) * (cell + pad)
        block = pixels[top:top + cell, left:left + cell].reshape(-1, 3)
        assert (block == colour).all(), (i, np.unique(block, axis=0))
    assert (pixels[0] == 255).all() and (pixels[:, cell + pad] == 255).all()  # white padding lines
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temporary name
