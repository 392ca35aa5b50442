"""Functional forms of the Bayes-by-Backprop math, as ``torch.nn.functional`` is to ``torch.nn``.

- :func:`kl_normal`: the closed-form KL between two (factorised) Gaussians;
- :func:`local_reparam_linear`, :func:`local_reparam_conv2d`: the local reparameterisation trick
  (Kingma, Salimans & Welling, 2015): a sample of the pre-activations of a Gaussian layer, drawn
  directly. For a factorised Gaussian posterior each output unit of ``x W^T + b`` is Gaussian, with
  mean ``x W_mu^T + b_mu`` and variance ``x^2 (W_sigma^2)^T + b_sigma^2``; every example gets its
  own noise, which lowers the variance of minibatch gradients.

The modules in :mod:`bdl_course.layers` hold the parameters and call these.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import check_positive, check_tensor

__all__ = ["kl_normal", "local_reparam_linear", "local_reparam_conv2d"]


def kl_normal(mu_q: torch.Tensor, sigma_q: torch.Tensor, mu_p, sigma_p) -> torch.Tensor:
    """Elementwise ``KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2))``; all arguments broadcast.

    ``log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2``.
    ``mu_q``, ``sigma_q``: tensors; ``mu_p``, ``sigma_p``: tensors or numbers. NaN or infinite means
    and non-positive stds raise ``ValueError``.
    """
    check_tensor("mu_q", mu_q)
    check_tensor("sigma_q", sigma_q)
    check_positive("sigma_q", sigma_q)
    check_positive("sigma_p", sigma_p)
    if isinstance(mu_p, torch.Tensor):
        check_tensor("mu_p", mu_p)
    elif not (isinstance(mu_p, (int, float)) and not isinstance(mu_p, bool)):
        raise TypeError(f"mu_p must be a number or a tensor, got {type(mu_p).__name__}")
    elif mu_p != mu_p or abs(mu_p) == float("inf"):
        raise ValueError(f"mu_p must be finite, got {mu_p!r}")
    sigma_p = torch.as_tensor(sigma_p, dtype=sigma_q.dtype, device=sigma_q.device)
    return (torch.log(sigma_p) - torch.log(sigma_q)
            + (sigma_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sigma_p ** 2) - 0.5)


def _check_sigmas_and_bias(weight_mu, weight_sigma, bias_mu, bias_sigma) -> None:
    """Shapes shared by the local-reparameterisation samplers: sigma like mu, bias [out] or absent."""
    if weight_sigma.shape != weight_mu.shape:
        raise ValueError(f"weight_sigma must have the shape of weight_mu {tuple(weight_mu.shape)}, "
                         f"got {tuple(weight_sigma.shape)}")
    if (bias_mu is None) != (bias_sigma is None):
        raise ValueError("bias_mu and bias_sigma must be given together (or both left out)")
    if bias_mu is not None and (bias_mu.shape != (weight_mu.shape[0],) or bias_sigma.shape != bias_mu.shape):
        raise ValueError(f"bias_mu and bias_sigma must have shape [{weight_mu.shape[0]}], "
                         f"got {tuple(bias_mu.shape)} and {tuple(bias_sigma.shape)}")


def local_reparam_linear(x: torch.Tensor, weight_mu: torch.Tensor, weight_sigma: torch.Tensor,
                         bias_mu: torch.Tensor | None = None, bias_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """A sample of the pre-activations ``x W^T + b`` of a Gaussian linear layer, drawn directly.

    With independent ``W ~ N(weight_mu, weight_sigma^2)`` and ``b ~ N(bias_mu, bias_sigma^2)``,
    every output is Gaussian with

        mean = x weight_mu^T + bias_mu,        var = x^2 (weight_sigma^2)^T + bias_sigma^2,

    and is sampled as ``mean + sqrt(var) * eps`` with a fresh ``eps`` for every example (the local
    reparameterisation trick, Kingma, Salimans & Welling, 2015). Each output has the same
    distribution as with a sampled weight matrix, but examples no longer share one weight sample.

    Shapes: ``x`` ``[..., in]`` (e.g. ``[N, in]`` or ``[S, N, in]``), ``weight_mu`` and ``weight_sigma``
    ``[out, in]``, ``bias_mu`` and ``bias_sigma`` ``[out]`` (both or neither). Returns ``[..., out]``.
    ``weight_sigma`` and ``bias_sigma`` are standard deviations, not variances.
    """
    check_tensor("x", x, finite=False)  # no NaN scan: this runs on every training step
    if x.dim() < 1:
        raise ValueError(f"x must be a tensor of shape [..., in], got a scalar")
    if weight_mu.dim() != 2:
        raise ValueError(f"weight_mu must have shape [out, in], got {tuple(weight_mu.shape)}")
    if x.shape[-1] != weight_mu.shape[1]:
        raise ValueError(f"x must have last dimension {weight_mu.shape[1]} (weight_mu is [out, in] = "
                         f"{list(weight_mu.shape)}), got shape {tuple(x.shape)}")
    _check_sigmas_and_bias(weight_mu, weight_sigma, bias_mu, bias_sigma)
    mean = F.linear(x, weight_mu, bias_mu)
    var = F.linear(x ** 2, weight_sigma ** 2, None if bias_sigma is None else bias_sigma ** 2)
    # an all-zero input row without bias has variance 0, whose sqrt has an infinite gradient
    return mean + var.clamp_min(1e-16).sqrt() * torch.randn_like(mean)


def local_reparam_conv2d(x: torch.Tensor, weight_mu: torch.Tensor, weight_sigma: torch.Tensor,
                         bias_mu: torch.Tensor | None = None, bias_sigma: torch.Tensor | None = None,
                         stride: int = 1, padding: int = 0) -> torch.Tensor:
    """A sample of the pre-activations of a Gaussian 2-D convolution, drawn directly.

    With independent ``W ~ N(weight_mu, weight_sigma^2)`` and ``b ~ N(bias_mu, bias_sigma^2)``,
    every output unit of ``conv2d(x, W) + b`` is Gaussian with

        mean = conv2d(x, weight_mu) + bias_mu,        var = conv2d(x^2, weight_sigma^2) + bias_sigma^2,

    and is sampled as ``mean + sqrt(var) * eps``, with a fresh ``eps`` for every example, channel
    and position. Each output has exactly the distribution it has under a sampled kernel. Unlike
    the dense case (Kingma, Salimans & Welling, 2015), outputs at different positions of one
    image share that kernel and are correlated; this sampler ignores the correlation, as Bayesian
    CNNs trained with the trick do (Shridhar et al., 2019).

    Shapes: ``x`` ``[N, C_in, H, W]``; ``weight_mu``, ``weight_sigma`` ``[C_out, C_in, k, k]``;
    ``bias_mu``, ``bias_sigma`` ``[C_out]`` (both or neither). Returns ``[N, C_out, H', W']``.
    ``weight_sigma`` and ``bias_sigma`` are standard deviations, not variances.
    """
    check_tensor("x", x, finite=False)  # no NaN scan: this runs on every training step
    if x.dim() != 4:
        raise ValueError(f"x must be a tensor of shape [N, C_in, H, W], got shape {tuple(x.shape)}")
    if weight_mu.dim() != 4:
        raise ValueError(f"weight_mu must have shape [C_out, C_in, k, k], got {tuple(weight_mu.shape)}")
    if x.shape[1] != weight_mu.shape[1]:
        raise ValueError(f"x must have {weight_mu.shape[1]} channels (weight_mu is [C_out, C_in, k, k] = "
                         f"{list(weight_mu.shape)}), got shape {tuple(x.shape)}")
    _check_sigmas_and_bias(weight_mu, weight_sigma, bias_mu, bias_sigma)
    mean, std = _conv_mean_std(x, weight_mu, weight_sigma, bias_mu, bias_sigma, stride, padding)
    return mean + std * torch.randn_like(mean)


def _conv_mean_std(x, weight_mu, weight_sigma, bias_mu, bias_sigma, stride, padding):
    mean = F.conv2d(x, weight_mu, bias_mu, stride, padding)
    var = F.conv2d(x * x, weight_sigma ** 2, None if bias_sigma is None else bias_sigma ** 2, stride, padding)
    # a zero patch without bias has variance 0, whose sqrt has an infinite gradient
    return mean, var.clamp_min(1e-16).sqrt()
