"""Metrics on predictions and targets."""
from __future__ import annotations

import math

import torch

from .utils import check_positive, check_tensor


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error; ``pred`` and ``target`` have the same shape."""
    check_tensor("pred", pred)
    check_tensor("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return torch.sqrt(torch.mean((pred - target) ** 2)).item()


def gaussian_nll(y: torch.Tensor, mu: torch.Tensor, sigma, reduction: str = "mean") -> torch.Tensor:
    """Negative log-density of ``y`` under ``N(mu, sigma^2)``, constants included.

    ``y``, ``mu`` and ``sigma`` broadcast; ``sigma`` (a std, not a variance) must be > 0.
    ``reduction``: ``"mean"`` (a scalar) or ``"none"`` (the broadcast shape).
    """
    check_positive("sigma", sigma)
    sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
    nll = 0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / (2 * sigma ** 2)
    if reduction == "mean":
        return nll.mean()
    if reduction == "none":
        return nll
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
