"""Bayes-by-Backprop layers (Blundell et al., 2015): the modules that hold a Gaussian posterior.

Each weight has a Gaussian posterior ``q(w) = N(mu, sigma^2)`` with ``sigma = softplus(rho)``
(always positive, unconstrained ``rho``), and a Gaussian prior ``N(prior_mu, prior_sigma^2)``.
A weight sample is ``w = mu + sigma * eps`` with ``eps ~ N(0, 1)`` (the reparameterisation
trick), so gradients flow to ``mu`` and ``rho``.

Sample dimension: an input of shape ``[N, in]`` uses one weight sample for the whole batch;
an input of shape ``[S, N, in]`` uses ``S`` independent weight samples, one per leading index,
in one batched matrix multiply. That is how :func:`bdl_course.predict.predictive` draws S
predictive samples in a single pass.

As in torch, the modules hold state and the math lives in :mod:`bdl_course.functional`
(the KL, the local reparameterisation samplers); model-level utilities (the KL of a model,
freezing, posterior samples as ordinary networks) live in :mod:`bdl_course.bnn`.

Signatures follow ``torch.nn``: shapes first, options keyword-only, ``device=`` / ``dtype=``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import functional as F_bdl
from .utils import check_int, check_positive

__all__ = ["BayesLayer", "BayesLinear", "BayesConv2d"]


class BayesLayer(nn.Module):
    """What every Bayes-by-Backprop layer shares: Gaussian weights and biases, their KL, freezing.

    Holds ``weight_mu``/``weight_rho`` of ``weight_shape`` and, with ``bias``, ``bias_mu``/``bias_rho``
    of shape ``[out]``; ``sigma = softplus(rho)`` starts at ``init_sigma``. Subclasses
    (:class:`BayesLinear`, :class:`BayesConv2d`) set the means in ``reset_parameters`` and define
    ``forward``.
    """

    def __init__(self, weight_shape: tuple[int, ...], bias: bool, prior_mu: float, prior_sigma: float,
                 init_sigma: float, local_reparam: bool, device=None, dtype=None):
        super().__init__()
        if not (isinstance(prior_mu, (int, float)) and not isinstance(prior_mu, bool)):
            raise TypeError(f"prior_mu must be a number, got {type(prior_mu).__name__}")
        if not math.isfinite(prior_mu):
            raise ValueError(f"prior_mu must be finite, got {prior_mu!r}")
        check_positive("prior_sigma", prior_sigma)
        check_positive("init_sigma", init_sigma)
        self.prior_mu, self.prior_sigma = float(prior_mu), float(prior_sigma)
        rho0 = math.log(math.expm1(init_sigma))  # softplus(rho0) == init_sigma
        factory = dict(device=device, dtype=dtype)
        self.weight_mu = nn.Parameter(torch.empty(weight_shape, **factory))
        self.weight_rho = nn.Parameter(torch.full(weight_shape, rho0, **factory))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(weight_shape[0], **factory))
            self.bias_rho = nn.Parameter(torch.full((weight_shape[0],), rho0, **factory))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        self.frozen = False
        self.local_reparam = bool(local_reparam)

    def _init_means(self, fan_in: int) -> None:
        # the same initial means as nn.Linear / nn.Conv2d (uniform in +-1/sqrt(fan_in)),
        # so a frozen layer starts like its deterministic counterpart
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        if self.bias_mu is not None:
            nn.init.uniform_(self.bias_mu, -bound, bound)

    @property
    def weight_sigma(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def freeze(self):
        """Use the posterior means: the layer becomes deterministic."""
        self.frozen = True
        return self

    def unfreeze(self):
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

    def sample_module(self) -> nn.Module:
        """One weight sample as the ordinary torch layer (the means if the layer is frozen)."""
        # the layer is built (its own random initialisation drawn) before the sample, as always: the
        # same seed gives the same posterior samples as before
        layer = self._torch_layer()
        w, b = self._draw()
        with torch.no_grad():
            layer.weight.copy_(w)
            if b is not None:
                layer.bias.copy_(b)
        return layer

    def _torch_layer(self) -> nn.Module:
        """The ordinary torch layer of this shape (``nn.Linear``, ``nn.Conv2d``), on this layer's device and dtype."""
        raise NotImplementedError

    @torch.no_grad()
    def _draw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        noise = 0.0 if self.frozen else 1.0
        w = self.weight_mu + noise * self.weight_sigma * torch.randn_like(self.weight_mu)
        b = None if self.bias_mu is None else self.bias_mu + noise * self.bias_sigma * torch.randn_like(self.bias_mu)
        return w, b

    def _prior_repr(self) -> str:
        return (f"prior=N({self.prior_mu}, {self.prior_sigma}^2), frozen={self.frozen}"
                + (", local_reparam=True" if self.local_reparam else ""))


class BayesLinear(BayesLayer):
    """A linear layer whose every weight and bias is a Gaussian random variable.

    Args:
        in_features, out_features: sizes as in ``nn.Linear``.
        bias: whether the layer has a (stochastic) bias.
        prior_mu, prior_sigma (keyword-only): mean and (positive) std of the factorised Gaussian prior.
        init_sigma: the posterior std every weight starts from (small: start near a point estimate).
        local_reparam: sample pre-activations instead of weights (:func:`~bdl_course.functional.local_reparam_linear`):
            every example gets its own noise. Right for training and for per-example predictive
            distributions; not for drawing whole functions (curves), which need one weight sample
            shared by all inputs. The attribute can be switched at any time, or for a whole model
            within ``with bdl_course.bnn.local_reparam(model, on):``.
        device, dtype: where the parameters are created, as in ``nn.Linear``.

    Shapes: ``[N, in] -> [N, out]`` with one weight sample, or ``[S, N, in] -> [S, N, out]``
    with S weight samples. ``freeze()`` makes the layer use the posterior means (deterministic).
    The noise is drawn on every forward pass, on the device and in the dtype of the layer.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, prior_mu: float = 0.0,
                 prior_sigma: float = 1.0, init_sigma: float = 1e-3, local_reparam: bool = False,
                 device=None, dtype=None):
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")
        super().__init__((out_features, in_features), bias, prior_mu, prior_sigma, init_sigma, local_reparam,
                         device, dtype)
        self.in_features, self.out_features = in_features, out_features
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_means(self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3) or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape [N, {self.in_features}] or [S, N, {self.in_features}], "
                             f"got {tuple(x.shape)}")
        if self.frozen:
            return F.linear(x, self.weight_mu, self.bias_mu)
        if self.local_reparam:
            return F_bdl.local_reparam_linear(x, self.weight_mu, self.weight_sigma, self.bias_mu, self.bias_sigma)
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
        return f"in_features={self.in_features}, out_features={self.out_features}, " + self._prior_repr()

    def _torch_layer(self) -> nn.Linear:
        mu = self.weight_mu
        return nn.Linear(self.in_features, self.out_features, bias=self.bias_mu is not None,
                         device=mu.device, dtype=mu.dtype)


class BayesConv2d(BayesLayer):
    """A 2-D convolution whose every kernel weight and bias is a Gaussian random variable.

    Bayes by Backprop (Blundell et al., 2015) for convolutions: ``q(w) = N(mu, sigma^2)`` per
    weight with ``sigma = softplus(rho)``, a Gaussian prior ``N(prior_mu, prior_sigma^2)`` and the
    closed-form KL, exactly as :class:`BayesLinear`.

    Args:
        in_channels, out_channels, kernel_size: as in ``nn.Conv2d`` (square kernels, ints).
        stride, padding, bias (keyword-only): as in ``nn.Conv2d``; ``bias``: a stochastic bias.
        prior_mu, prior_sigma (keyword-only): mean and (positive) std of the factorised Gaussian prior.
        init_sigma: the posterior std every weight starts from (small: start near a point estimate).
        local_reparam: sample pre-activations instead of kernels (:func:`local_reparam_conv2d`):
            every example, channel and position gets its own noise (lower-variance gradients, two
            convolutions per call). Otherwise one kernel sample is drawn per weight sample.
        device, dtype: where the parameters are created.

    Shapes: ``[N, C_in, H, W] -> [N, C_out, H', W']`` with one weight sample, or
    ``[S, N, C_in, H, W] -> [S, N, C_out, H', W']`` with S weight samples, in one (grouped)
    convolution. An input broadcast along S, such as ``x.expand(S, *x.shape)``, is never copied:
    it is convolved once with all ``S * C_out`` sampled kernels (or, with local noise, once for
    the mean and once for the variance). ``freeze()`` makes the layer use the posterior means.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, bias: bool = True, prior_mu: float = 0.0, prior_sigma: float = 1.0,
                 init_sigma: float = 1e-3, local_reparam: bool = False, device=None, dtype=None):
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        kernel_size = check_int("kernel_size", kernel_size)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), bias, prior_mu, prior_sigma,
                         init_sigma, local_reparam, device, dtype)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride = check_int("stride", stride)
        self.padding = check_int("padding", padding, minimum=0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_means(self.in_channels * self.kernel_size ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"x must have shape [N, {self.in_channels}, H, W] or [S, N, {self.in_channels}, H, W], "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        if self.frozen or self.local_reparam:
            return self._forward_moments(x)
        return self._forward_kernel_samples(x)

    def _forward_moments(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen (the mean kernel) or local reparameterisation (output mean and std, then noise):
        both convolve the images with fixed kernels, so the S leading copies fold into the batch."""
        lead = x.shape[:-3]
        shared = x.dim() == 5 and x.stride(0) == 0  # one input for all S samples: convolve it once
        flat = x[0] if shared else x.reshape(-1, *x.shape[-3:])
        if self.frozen:
            out = F.conv2d(flat, self.weight_mu, self.bias_mu, stride=self.stride, padding=self.padding)
            return out.expand(*lead, *out.shape[1:]) if shared else out.reshape(*lead, *out.shape[1:])
        mean, std = F_bdl._conv_mean_std(flat, self.weight_mu, self.weight_sigma, self.bias_mu, self.bias_sigma,
                                         self.stride, self.padding)
        if shared:
            return mean + std * torch.randn((lead[0], *mean.shape), dtype=mean.dtype, device=mean.device)
        return (mean + std * torch.randn_like(mean)).reshape(*lead, *mean.shape[1:])

    def _forward_kernel_samples(self, x: torch.Tensor) -> torch.Tensor:
        """One kernel sample for ``[N, ...]``; S kernel samples in one grouped convolution for ``[S, N, ...]``."""
        conv = dict(stride=self.stride, padding=self.padding)
        if x.dim() == 4:
            w = self.weight_mu + self.weight_sigma * torch.randn_like(self.weight_mu)
            b = None if self.bias_mu is None else self.bias_mu + self.bias_sigma * torch.randn_like(self.bias_mu)
            return F.conv2d(x, w, b, **conv)
        # the S copies of the input become channel groups
        s, n = x.shape[:2]
        eps = torch.randn((s, *self.weight_mu.shape), dtype=x.dtype, device=x.device)
        w = (self.weight_mu + self.weight_sigma * eps).reshape(s * self.out_channels, *self.weight_mu.shape[1:])
        b = None
        if self.bias_mu is not None:
            b = self.bias_mu + self.bias_sigma * torch.randn((s, self.out_channels), dtype=x.dtype, device=x.device)
            b = b.reshape(-1)
        if x.stride(0) == 0:  # one input for all S samples: one convolution with S * C_out kernels
            out = F.conv2d(x[0], w, b, **conv)
        else:
            grouped = x.transpose(0, 1).reshape(n, s * self.in_channels, *x.shape[-2:])
            out = F.conv2d(grouped, w, b, groups=s, **conv)  # [N, S * C_out, H', W']
        return out.reshape(n, s, self.out_channels, *out.shape[-2:]).transpose(0, 1)

    def _torch_layer(self) -> nn.Conv2d:
        mu = self.weight_mu
        return nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding, bias=self.bias_mu is not None, device=mu.device, dtype=mu.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, " + self._prior_repr())
