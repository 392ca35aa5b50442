"""Exact Bayesian linear regression: a model whose posterior predictive is known in closed form.

Model: ``y = phi(x)^T w + noise``, ``noise ~ N(0, 1/beta)``, prior ``w ~ N(0, I/alpha)``
(Bishop, *Pattern Recognition and Machine Learning*, 2006, section 3.3).
"""
from __future__ import annotations

import torch

from .utils import check_positive, check_tensor

__all__ = ["rbf_features", "least_squares", "posterior", "predictive"]


def rbf_features(x: torch.Tensor, centers: torch.Tensor, lengthscale: float) -> torch.Tensor:
    """Gaussian bumps plus a constant: ``[N] -> [N, K + 1]`` for ``K`` centers (column 0 is 1)."""
    check_tensor("x", x, ndim=1)
    check_tensor("centers", centers, ndim=1)
    check_positive("lengthscale", lengthscale)
    bumps = torch.exp(-0.5 * ((x[:, None] - centers[None, :].to(x)) / lengthscale) ** 2)
    return torch.cat([torch.ones_like(x)[:, None], bumps], dim=1)


def least_squares(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Maximum-likelihood weights ``argmin ||phi w - y||^2``: ``[N, D], [N] -> [D]``."""
    check_tensor("phi", phi, ndim=2)
    check_tensor("y", y, ndim=1)
    return torch.linalg.lstsq(phi, y[:, None]).solution[:, 0]


def posterior(phi: torch.Tensor, y: torch.Tensor, alpha: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior ``N(m, S)`` of the weights: ``S = (alpha I + beta phi^T phi)^-1``, ``m = beta S phi^T y``.

    ``phi``: ``[N, D]``, ``y``: ``[N]``. Returns ``m``: ``[D]`` and ``S``: ``[D, D]``.
    ``m`` is also the MAP estimate (ridge regression with penalty ``alpha / beta``).
    """
    check_tensor("phi", phi, ndim=2)
    check_tensor("y", y, ndim=1)
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    if phi.shape[0] != y.shape[0]:
        raise ValueError(f"phi and y must have the same number of rows, got {phi.shape[0]} and {y.shape[0]}")
    precision = alpha * torch.eye(phi.shape[1], dtype=phi.dtype, device=phi.device) + beta * phi.T @ phi
    cov = torch.linalg.inv(precision)
    cov = 0.5 * (cov + cov.T)  # exactly symmetric, so MultivariateNormal accepts it
    return beta * cov @ phi.T @ y, cov


def predictive(phi_star: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact posterior predictive ``N(phi^T m, 1/beta + phi^T S phi)`` at ``M`` new inputs.

    ``phi_star``: ``[M, D]``. Returns the mean ``[M]`` and the *variance* ``[M]``.
    """
    check_tensor("phi_star", phi_star, ndim=2, last_dim=mean.shape[0])
    check_positive("beta", beta)
    return phi_star @ mean, 1.0 / beta + ((phi_star @ cov) * phi_star).sum(dim=1)
