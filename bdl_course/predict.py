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


def variance_decomposition(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the predictive variance of S Gaussian predictions by the law of total variance.

    ``mu``, ``sigma``: ``[S, ...]``, the mean and std (not variance) predicted under S weight
    samples (Kendall & Gal, 2017). Returns two *variances*, each ``[...]``:

    - aleatoric ``= mean_s sigma_s^2``: the noise the model expects in the data;
    - epistemic ``= mean_s (mu_s - mean_s mu_s)^2``: how much the weight samples disagree
      (divided by S, not S - 1).

    Their sum is the variance of the uniform mixture ``(1/S) sum_s N(mu_s, sigma_s^2)``.
    """
    check_tensor("mu", mu)
    check_tensor("sigma", sigma)
    if mu.dim() == 0 or mu.shape != sigma.shape:
        raise ValueError(f"mu and sigma must have the same shape [S, ...], got {tuple(mu.shape)} and {tuple(sigma.shape)}")
    if not (sigma > 0).all():
        raise ValueError("sigma must be positive (a standard deviation)")
    aleatoric = (sigma ** 2).mean(dim=0)
    epistemic = ((mu - mu.mean(dim=0)) ** 2).mean(dim=0)
    return aleatoric, epistemic


@torch.no_grad()
def sample_log_probs(model: nn.Module, x: torch.Tensor, n_samples: int, batch_size: int = 512) -> torch.Tensor:
    """Class log-probabilities under ``S = n_samples`` weight samples, in one vectorised pass per batch.

    ``model`` maps ``[S, N, ...] -> [S, N, C]`` logits (e.g. :func:`~bdl_course.models.bayes_lenet`;
    a deterministic network gives S identical copies). ``x``: ``[N, ...]`` (e.g. images
    ``[N, C, H, W]``), broadcast to ``[S, ...]`` without a copy; ``batch_size`` inputs at a time
    bound the memory. Returns ``log_softmax`` of the logits, ``[S, N, C]``. Average the samples
    as probabilities with :func:`logmeanexp` over ``dim=0``, never as logits or labels.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty floating tensor of shape [N, ...], got {getattr(x, 'shape', x)!r}")
    check_int("n_samples", n_samples)
    check_int("batch_size", batch_size)
    model.eval()
    parts = []
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start:start + batch_size]
        logits = model(chunk.unsqueeze(0).expand(n_samples, *chunk.shape))
        if logits.dim() != 3 or logits.shape[:2] != (n_samples, chunk.shape[0]):
            raise ValueError(f"model must return logits [S, N, C] = [{n_samples}, {chunk.shape[0]}, C], "
                             f"got {tuple(logits.shape)}")
        parts.append(torch.log_softmax(logits, dim=-1))
    return torch.cat(parts, dim=1)
