"""Small networks built from ``torch.nn`` and :mod:`bdl_course.layers`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BayesLinear
from .utils import check_int, check_positive


def _sizes(in_features: int, hidden, out_features: int) -> list[int]:
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    sizes = [in_features, *hidden, out_features]
    for i, size in enumerate(sizes):
        check_int(f"layer size #{i}", size)
    return sizes


def mlp(in_features: int, hidden, out_features: int) -> nn.Sequential:
    """A deterministic ReLU network. ``hidden``: an int or a list of widths.

    Shapes: ``[..., in_features] -> [..., out_features]`` (leading dimensions pass through).
    """
    sizes = _sizes(in_features, hidden, out_features)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def bayes_mlp(in_features: int, hidden, out_features: int, prior_sigma: float = 1.0,
              prior_mu: float = 0.0, init_sigma: float = 1e-3) -> nn.Sequential:
    """A ReLU network of :class:`~bdl_course.layers.BayesLinear` layers (every weight random).

    Shapes: ``[N, in] -> [N, out]`` (one weight sample) or ``[S, N, in] -> [S, N, out]`` (S samples).
    """
    sizes = _sizes(in_features, hidden, out_features)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [BayesLinear(prior_mu, prior_sigma, a, b, init_sigma=init_sigma), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class GaussianRegressor(nn.Module):
    """``y ~ N(body(x), noise_std^2)`` with one learned noise level shared by all inputs.

    ``body`` maps ``[..., in] -> [..., 1]``; ``forward`` returns the mean with the last
    dimension dropped: ``[N, in] -> [N]`` or ``[S, N, in] -> [S, N]``.
    """

    def __init__(self, body: nn.Module, init_noise_std: float = 1.0, min_noise_std: float = 1e-3):
        super().__init__()
        check_positive("init_noise_std", init_noise_std)
        check_positive("min_noise_std", min_noise_std)
        if init_noise_std <= min_noise_std:
            raise ValueError(f"init_noise_std must exceed min_noise_std={min_noise_std}, got {init_noise_std}")
        self.body = body
        self.min_noise_std = min_noise_std
        raw = torch.log(torch.expm1(torch.tensor(init_noise_std - min_noise_std)))
        self.raw_noise = nn.Parameter(raw)

    @property
    def noise_std(self) -> torch.Tensor:
        """The learned noise std, a positive scalar (floored at ``min_noise_std``)."""
        return F.softplus(self.raw_noise) + self.min_noise_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if out.shape[-1] != 1:
            raise ValueError(f"body must end in one output unit, got output shape {tuple(out.shape)}")
        return out.squeeze(-1)
