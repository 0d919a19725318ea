"""The DSM/MDSM prediction target (eps, v or x0): the loss regresses it, and samplers still get
epsilon. A network that outputs the exact target must give zero loss and the exact noise."""
from __future__ import annotations

import pytest
import torch

from mdreg.diffusion.objectives import DSM
from mdreg.diffusion.schedules import DDPMCosine


class Oracle(torch.nn.Module):
    """Outputs ``objective.target(x0, noise, t)`` for the x0 and noise it was given."""

    def __init__(self, objective, x0, noise):
        super().__init__()
        self.objective, self.x0, self.noise = objective, x0, noise

    def forward(self, x_t, t, y=None, ids_keep=None):
        return self.objective.target(self.x0, self.noise, t.long())


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_the_target_gives_zero_loss_and_samplers_get_the_noise(prediction):
    schedule = DDPMCosine(num_timesteps=1000)
    objective = DSM(schedule, prediction=prediction)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([1, 250, 600, 998])
    x_t = schedule.add_noise(x0, t, noise)
    eps = objective.model_fn(Oracle(objective, x0, noise))(x_t, t)
    torch.testing.assert_close(eps, noise, rtol=1e-4, atol=2e-4 if prediction == "x0" else 1e-5)


def test_v_is_sqrt_abar_eps_minus_sqrt_one_minus_abar_x0():
    schedule = DDPMCosine(num_timesteps=1000)
    x0, noise, t = torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0), torch.tensor([500])
    a = float(schedule.alphas_cumprod[500])
    want = a ** 0.5 * 2.0 - (1 - a) ** 0.5 * 1.0
    assert torch.allclose(DSM(schedule, prediction="v").target(x0, noise, t), torch.full_like(x0, want))
    with pytest.raises(ValueError, match="prediction must be one of eps, v, x0"):
        DSM(schedule, prediction="score")
