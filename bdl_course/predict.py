"""Predictive sampling: all S weight samples in one tensor operation, and its summaries."""
from __future__ import annotations

import math

import torch
from torch import nn

from .utils import check_int, check_tensor


@torch.no_grad()
def sample_predictions(model: nn.Module, x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """``S = n_samples`` predictive samples in one vectorised pass.

    ``x``: ``[N, in]``. The input is broadcast to ``[S, N, in]`` (no copy), and every
    Bayesian layer draws S independent weight samples, one per leading index.
    Returns ``[S, N, ...]``: whatever the model returns for ``[N, in]``, with S in front.
    """
    check_tensor("x", x, ndim=2)
    check_int("n_samples", n_samples)
    model.eval()
    return model(x.unsqueeze(0).expand(n_samples, *x.shape))


@torch.no_grad()
def sample_predictions_loop(model: nn.Module, x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """The slow way, kept only to compare against: one forward pass per example per sample.

    Same shapes as :func:`sample_predictions`; costs ``N * S`` small forward passes.
    """
    check_tensor("x", x, ndim=2)
    check_int("n_samples", n_samples)
    model.eval()
    rows = [torch.stack([model(x[i:i + 1])[0] for _ in range(n_samples)]) for i in range(x.shape[0])]
    return torch.stack(rows, dim=1)


def logmeanexp(t: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log(mean(exp(t), dim))`` computed stably with logsumexp; ``dim`` is removed."""
    return torch.logsumexp(t, dim=dim) - math.log(t.shape[dim])


def summarize(samples: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-point summaries of predictive samples ``[S, N]``: each value has shape ``[N]``.

    Keys: mean, std, min, max, range (max - min).
    """
    check_tensor("samples", samples, ndim=2)
    lo, hi = samples.min(dim=0).values, samples.max(dim=0).values
    return {"mean": samples.mean(0), "std": samples.std(0), "min": lo, "max": hi, "range": hi - lo}
