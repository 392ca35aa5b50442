"""Likelihoods: the observation model, separate from the network (TyXe's ``likelihoods`` pattern).

A likelihood knows the training-set size N and does three things with a network's *raw* outputs:

- ``nll(output, y)``: the per-example negative log-likelihood (the data term of a minibatch);
- ``neg_elbo(model, x, y)``: the per-example negative ELBO of a Bayesian model,

      nll(model(x), y) + kl_factor * KL(q || p) / N,

  so the KL is divided by the number of training examples by construction (``kl_factor`` = 1 is
  the ELBO; a warm-up moves it from 0 to 1). A deterministic model has no KL: the same call is
  the maximum-likelihood loss. ``lik(model, x, y)`` is ``neg_elbo``, so a likelihood is a
  ``loss_fn`` for :func:`bdl_course.train.fit`;
- ``predictive(output)``: outputs with the component axis first ``[S, N, ...]`` as a
  :class:`~bdl_course.predictive.Predictive`.

Likelihoods are ``nn.Module`` s: a learned noise std is a parameter, which ``train.fit`` trains
with the network's.

Examples::

    lik = Gaussian(len(x_train), noise_std=0.5, learn_noise=True)   # network ends in one unit
    bdl.train.fit(bdl.models.bayes_mlp(1, 50, 1), x_train, y_train, lik, epochs=300, batch_size=32)
    lik = Categorical(len(x_train))                                  # network ends in C logits
    warm = bdl.train.kl_warmup_callback(lik, warmup_steps=500)       # KL annealing
    bdl.train.fit(model, x_train, labels, lik, epochs=50, batch_size=64, callback=warm)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bnn import total_kl
from .predictive import Predictive, _reduce
from .utils import check_int, check_positive

__all__ = ["Likelihood", "Gaussian", "HeteroskedasticGaussian", "Categorical"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Likelihood(nn.Module):
    """What every likelihood shares: the training-set size, the ELBO, the predictive."""

    def __init__(self, dataset_size: int):
        super().__init__()
        self.dataset_size = check_int("dataset_size", dataset_size)
        self.kl_factor = 1.0

    def nll(self, output, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood of ``y`` given raw network ``output``; ``reduction`` "mean" | "sum" | "none"."""
        raise NotImplementedError

    def predictive(self, output) -> Predictive:
        """The predictive of raw outputs whose first axis holds the S components."""
        raise NotImplementedError

    def neg_elbo(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``nll(model(x), y) + kl_factor * total_kl(model) / dataset_size``: the per-example loss."""
        if not self.kl_factor >= 0:
            raise ValueError(f"kl_factor must be >= 0, got {self.kl_factor!r}")
        loss = self.nll(model(x), y)
        if self.kl_factor == 0:
            return loss
        kl = total_kl(model)
        return loss + (self.kl_factor / self.dataset_size) * kl.to(loss.device)

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.neg_elbo(model, x, y)

    def extra_repr(self) -> str:
        return f"dataset_size={self.dataset_size}, kl_factor={self.kl_factor}"


def _check_target(y, mean: torch.Tensor) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if mean.shape[mean.dim() - y.dim():] != y.shape:
        raise ValueError(f"the network's means have shape {tuple(mean.shape)}, which does not end in y's "
                         f"shape {tuple(y.shape)}; a Gaussian likelihood needs outputs [..., 1] (homoskedastic) "
                         f"or [..., 2] (heteroskedastic) for targets [...]")


def _gaussian_nll(mean, std, y, reduction):
    # no input checks beyond the shape: this runs on every training step
    nll = _HALF_LOG_2PI + torch.log(std) + 0.5 * ((y - mean) / std) ** 2
    return _reduce(nll, reduction)


class Gaussian(Likelihood):
    """Homoskedastic Gaussian noise: ``y ~ N(f(x), noise_std^2)``, one noise level for every input.

    The network ends in one unit: ``output`` ``[..., 1]`` is the mean. ``noise_std`` is fixed, or
    with ``learn_noise=True`` a parameter started at ``noise_std`` (``softplus(raw) + min_noise_std``,
    floored so that the NLL cannot run off to -inf).
    """

    def __init__(self, dataset_size: int, noise_std: float = 1.0, learn_noise: bool = False,
                 min_noise_std: float = 1e-3):
        super().__init__(dataset_size)
        check_positive("noise_std", noise_std)
        check_positive("min_noise_std", min_noise_std)
        self.learn_noise, self.min_noise_std = bool(learn_noise), float(min_noise_std)
        if self.learn_noise:
            if noise_std <= min_noise_std:
                raise ValueError(f"noise_std must exceed min_noise_std={min_noise_std}, got {noise_std}")
            raw = torch.log(torch.expm1(torch.tensor(noise_std - min_noise_std)))
            self.raw_noise = nn.Parameter(raw)
        else:
            self.register_buffer("_noise", torch.tensor(float(noise_std)))

    @property
    def noise_std(self) -> torch.Tensor:
        """The noise std, a positive scalar tensor (learned or fixed)."""
        if self.learn_noise:
            return F.softplus(self.raw_noise) + self.min_noise_std
        return self._noise

    def _mean(self, output) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"a Gaussian likelihood takes a tensor output [..., 1], got {type(output).__name__}; "
                            "a model with its own (mean, std) head goes with HeteroskedasticGaussian")
        if output.dim() == 0 or output.shape[-1] != 1:
            raise ValueError(f"a Gaussian likelihood needs the network to end in one unit (output [..., 1]), "
                             f"got output shape {tuple(output.shape)}")
        return output.squeeze(-1)

    def nll(self, output, y, reduction="mean"):
        mean = self._mean(output)
        _check_target(y, mean)
        return _gaussian_nll(mean, self.noise_std.to(mean.dtype), y, reduction)

    @torch.no_grad()
    def predictive(self, output) -> Predictive:
        mean = self._mean(output)
        return Predictive.gaussian(mean, self.noise_std.to(mean))

    def extra_repr(self):
        return super().extra_repr() + f", noise_std={self.noise_std.item():.4g}, learn_noise={self.learn_noise}"


class HeteroskedasticGaussian(Likelihood):
    """Input-dependent Gaussian noise: ``y ~ N(mean(x), std(x)^2)``.

    ``output``: ``[..., 2]`` (unit 0 the mean, unit 1 an unconstrained scale with
    ``std = softplus(scale) + min_std``), or a ``(mean, std)`` pair from a model that has its own
    Gaussian head (:class:`~bdl_course.models.HeteroskedasticRegressor`,
    :class:`~bdl_course.ensembles.GaussianEnsemble`).
    """

    def __init__(self, dataset_size: int, min_std: float = 1e-3):
        super().__init__(dataset_size)
        check_positive("min_std", min_std)
        self.min_std = float(min_std)

    def _mean_std(self, output) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(output, tuple) and len(output) == 2:
            return output
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"output must be a tensor [..., 2] or a (mean, std) pair, got {type(output).__name__}")
        if output.dim() == 0 or output.shape[-1] != 2:
            raise ValueError(f"a heteroskedastic likelihood needs the network to end in two units (mean, scale), "
                             f"got output shape {tuple(output.shape)}")
        return output[..., 0], F.softplus(output[..., 1]) + self.min_std

    def nll(self, output, y, reduction="mean"):
        mean, std = self._mean_std(output)
        _check_target(y, mean)
        return _gaussian_nll(mean, std, y, reduction)

    @torch.no_grad()
    def predictive(self, output) -> Predictive:
        mean, std = self._mean_std(output)
        return Predictive.gaussian(mean, std)

    def extra_repr(self):
        return super().extra_repr() + f", min_std={self.min_std}"


class Categorical(Likelihood):
    """Classes: ``y ~ Categorical(softmax(f(x)))``; ``output`` ``[..., C]`` logits, ``y`` integer labels."""

    def _log_probs(self, output) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"a Categorical likelihood takes logits [..., C], got {type(output).__name__}")
        if output.dim() < 2 or output.shape[-1] < 2:
            raise ValueError(f"output must be logits [N, C] or [S, N, C] with C >= 2, got shape {tuple(output.shape)}")
        return torch.log_softmax(output, dim=-1)

    def nll(self, output, y, reduction="mean"):
        log_probs = self._log_probs(output)
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of class labels, got {getattr(y, 'dtype', type(y).__name__)}")
        if log_probs.shape[log_probs.dim() - 1 - y.dim():-1] != y.shape:
            raise ValueError(f"logits of shape {tuple(output.shape)} do not match labels of shape {tuple(y.shape)}")
        picked = log_probs.gather(-1, y.expand(log_probs.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        return _reduce(-picked, reduction)

    @torch.no_grad()
    def predictive(self, output) -> Predictive:
        return Predictive.categorical(self._log_probs(output))
