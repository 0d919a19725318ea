"""The Figure-1 toy point clouds: deterministic, scaled into [-1, 1], the right shapes."""
import math

import torch

from mdreg.config import L, instantiate
from mdreg.data.toy import Rose, SwissRoll, rose_points


def test_same_seed_same_points_and_unit_scale():
    a, b, c = SwissRoll(500, seed=0), SwissRoll(500, seed=0), SwissRoll(500, seed=1)
    assert torch.equal(a.points, b.points) and not torch.equal(a.points, c.points)
    for data in (a, Rose(500, seed=3)):
        assert 0.8 < data.points.abs().max() <= 1.01
        x, label = data[0]
        assert x.shape == (1, 1, data.dim) and label == -1
        assert (data.channels, data.resolution, data.input_hw) == (1, data.dim, (1, data.dim))


def test_swissroll_is_a_spiral_whose_angle_grows_with_its_radius():
    from mdreg.data.toy import swissroll_points

    raw = swissroll_points(2000, seed=0, noise=0.0)  # (t cos t, t sin t), t in [1.5 pi, 4.5 pi]
    t = raw.norm(dim=1)
    assert t.min() >= 1.5 * math.pi - 1e-9 and t.max() <= 4.5 * math.pi + 1e-9
    assert torch.allclose(torch.cos(t), raw[:, 0] / t) and torch.allclose(torch.sin(t), raw[:, 1] / t)
    noisy = SwissRoll(2000, seed=0, noise=0.3).points
    clean = SwissRoll(2000, seed=0, noise=0.0).points
    assert 0.005 < (noisy - clean).abs().mean() < 0.05  # noise of std 0.3 in units where the roll spans ~28


def test_rose_is_a_centred_3d_surface_of_petals():
    data = Rose(5000, seed=0)
    pts = data.points
    assert pts.shape == (5000, 3)
    assert torch.allclose((pts.amax(0) + pts.amin(0)) / 2, torch.zeros(3), atol=0.05)  # centred frame (extremes are rare)
    raw = rose_points(5000, seed=0)
    petal = torch.remainder(3.6 * torch.atan2(raw[:, 1], raw[:, 0]), 2 * math.pi)
    assert petal.std() > 1.0  # points spread over many petals, not one curve


def test_registered_and_configurable_by_name():
    data = instantiate(L("dataset:swissroll")(num_points=10, seed=2))
    assert len(data) == 10 and isinstance(data, SwissRoll)
    assert isinstance(instantiate(L("dataset:rose")(num_points=10)), Rose)


def test_every_seed_and_size_shares_one_frame():
    """Training data (seed 0) and held-out references (other seeds) must be comparable:
    the frame is a constant of the distribution, not of the sample."""
    from mdreg.evaluation.formulas import mmd
    from mdreg.data.toy import rose_frame

    center, scale = rose_frame()
    assert torch.allclose(Rose(300, seed=4).points, ((rose_points(300, seed=4) - center) / scale).float())
    for cls in (SwissRoll, Rose):
        assert abs(mmd(cls(1500, seed=1).points, cls(3000, seed=2).points)) < 0.003
