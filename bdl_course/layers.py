"""Bayes-by-Backprop layers (Blundell et al., 2015) and the closed-form Gaussian KL.

Each weight has a Gaussian posterior ``q(w) = N(mu, sigma^2)`` with ``sigma = softplus(rho)``
(always positive, unconstrained ``rho``), and a Gaussian prior ``N(prior_mu, prior_sigma^2)``.
A weight sample is ``w = mu + sigma * eps`` with ``eps ~ N(0, 1)`` (the reparameterisation
trick), so gradients flow to ``mu`` and ``rho``.

Sample dimension: an input of shape ``[N, in]`` uses one weight sample for the whole batch;
an input of shape ``[S, N, in]`` uses ``S`` independent weight samples, one per leading index,
in one batched matrix multiply. That is how ``predict.sample_predictions`` draws S predictive
samples in a single pass.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .utils import check_int, check_positive


def kl_normal(mu_q: torch.Tensor, sigma_q: torch.Tensor, mu_p, sigma_p) -> torch.Tensor:
    """Elementwise ``KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2))``; all arguments broadcast.

    ``log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2``.
    """
    check_positive("sigma_q", sigma_q)
    check_positive("sigma_p", sigma_p)
    sigma_p = torch.as_tensor(sigma_p, dtype=sigma_q.dtype, device=sigma_q.device)
    return (torch.log(sigma_p) - torch.log(sigma_q)
            + (sigma_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sigma_p ** 2) - 0.5)


class BayesLinear(nn.Module):
    """A linear layer whose every weight and bias is a Gaussian random variable.

    Args:
        prior_mu, prior_sigma: mean and (positive) std of the factorised Gaussian prior.
        in_features, out_features: sizes as in ``nn.Linear``.
        bias: whether the layer has a (stochastic) bias.
        init_sigma: the posterior std every weight starts from (small: start near a point estimate).

    Shapes: ``[N, in] -> [N, out]`` with one weight sample, or ``[S, N, in] -> [S, N, out]``
    with S weight samples. ``freeze()`` makes the layer use the posterior means (deterministic).
    """

    def __init__(self, prior_mu: float, prior_sigma: float, in_features: int, out_features: int,
                 bias: bool = True, init_sigma: float = 1e-3):
        super().__init__()
        check_positive("prior_sigma", prior_sigma)
        check_positive("init_sigma", init_sigma)
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.prior_mu, self.prior_sigma = float(prior_mu), float(prior_sigma)
        rho0 = math.log(math.expm1(init_sigma))  # softplus(rho0) == init_sigma
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.full((out_features, in_features), rho0))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(out_features))
            self.bias_rho = nn.Parameter(torch.full((out_features,), rho0))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        self.frozen = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the same initial means as nn.Linear (Kaiming-uniform), so a frozen layer starts like one
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        if self.bias_mu is not None:
            nn.init.uniform_(self.bias_mu, -bound, bound)

    @property
    def weight_sigma(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def freeze(self) -> "BayesLinear":
        """Use the posterior means: the layer becomes deterministic."""
        self.frozen = True
        return self

    def unfreeze(self) -> "BayesLinear":
        """Sample fresh weights on every forward pass again."""
        self.frozen = False
        return self

    def num_stochastic(self) -> int:
        """Number of random weights and biases (each (mu, sigma) pair counts once)."""
        return self.weight_mu.numel() + (0 if self.bias_mu is None else self.bias_mu.numel())

    def kl(self) -> torch.Tensor:
        """Closed-form ``KL(q || prior)`` summed over every weight and bias; a scalar."""
        total = self._kl_sum(self.weight_mu, self.weight_sigma)
        if self.bias_mu is not None:
            total = total + self._kl_sum(self.bias_mu, self.bias_sigma)
        return total

    def _kl_sum(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # kl_normal without its input checks: sigma = softplus(rho) > 0 and the prior was
        # checked in __init__; this runs on every training step, where each op costs time.
        p_mu, p_sigma = self.prior_mu, self.prior_sigma
        return (math.log(p_sigma) - torch.log(sigma)
                + (sigma ** 2 + (mu - p_mu) ** 2) / (2 * p_sigma ** 2) - 0.5).sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3) or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape [N, {self.in_features}] or [S, N, {self.in_features}], "
                             f"got {tuple(x.shape)}")
        if self.frozen:
            return F.linear(x, self.weight_mu, self.bias_mu)
        if x.dim() == 2:
            w = self.weight_mu + self.weight_sigma * torch.randn_like(self.weight_mu)
            b = None if self.bias_mu is None else self.bias_mu + self.bias_sigma * torch.randn_like(self.bias_mu)
            return F.linear(x, w, b)
        s = x.shape[0]
        eps = torch.randn((s, *self.weight_mu.shape), dtype=x.dtype, device=x.device)
        w = self.weight_mu + self.weight_sigma * eps  # [S, out, in]
        if self.bias_mu is None:
            return torch.bmm(x, w.transpose(1, 2))
        b = self.bias_mu + self.bias_sigma * torch.randn((s, self.out_features), dtype=x.dtype, device=x.device)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # [S, N, out]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"prior=N({self.prior_mu}, {self.prior_sigma}^2), frozen={self.frozen}")


def bayes_layers(model: nn.Module) -> list[BayesLinear]:
    """Every :class:`BayesLinear` inside ``model``, at any depth."""
    return [m for m in model.modules() if isinstance(m, BayesLinear)]


def total_kl(model: nn.Module) -> torch.Tensor:
    """Sum of the closed-form KL of every Bayesian layer in ``model``; a scalar (0 if none)."""
    layers = bayes_layers(model)
    if not layers:
        return torch.zeros(())
    return torch.stack([layer.kl() for layer in layers]).sum()


def num_stochastic(model: nn.Module) -> int:
    """Number of random weights and biases in ``model`` (each (mu, sigma) pair counts once)."""
    return sum(layer.num_stochastic() for layer in bayes_layers(model))
