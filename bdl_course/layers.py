"""Bayes-by-Backprop layers (Blundell et al., 2015) and the closed-form Gaussian KL.

Each weight has a Gaussian posterior ``q(w) = N(mu, sigma^2)`` with ``sigma = softplus(rho)``
(always positive, unconstrained ``rho``), and a Gaussian prior ``N(prior_mu, prior_sigma^2)``.
A weight sample is ``w = mu + sigma * eps`` with ``eps ~ N(0, 1)`` (the reparameterisation
trick), so gradients flow to ``mu`` and ``rho``.

Sample dimension: an input of shape ``[N, in]`` uses one weight sample for the whole batch;
an input of shape ``[S, N, in]`` uses ``S`` independent weight samples, one per leading index,
in one batched matrix multiply. That is how ``predict.sample_predictions`` draws S predictive
samples in a single pass.

The local reparameterisation trick (Kingma, Salimans & Welling, 2015) samples the
pre-activations instead of the weights: for a factorised Gaussian posterior each output unit
of ``x W^T + b`` is Gaussian, with mean ``x W_mu^T + b_mu`` and variance
``x^2 (W_sigma^2)^T + b_sigma^2``. Every example gets its own noise, which lowers the variance
of minibatch gradients (:func:`local_reparam_linear`, ``BayesLinear(local_reparam=True)``).
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Iterator, Sequence

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
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor of shape [..., in], got {x!r}")
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


class BayesLayer(nn.Module):
    """What every Bayes-by-Backprop layer shares: Gaussian weights and biases, their KL, freezing.

    Holds ``weight_mu``/``weight_rho`` of ``weight_shape`` and, with ``bias``, ``bias_mu``/``bias_rho``
    of shape ``[out]``; ``sigma = softplus(rho)`` starts at ``init_sigma``. Subclasses
    (:class:`BayesLinear`, :class:`BayesConv2d`) set the means in ``reset_parameters`` and define
    ``forward``.
    """

    def __init__(self, prior_mu: float, prior_sigma: float, weight_shape: tuple[int, ...], bias: bool,
                 init_sigma: float, local_reparam: bool):
        super().__init__()
        check_positive("prior_sigma", prior_sigma)
        check_positive("init_sigma", init_sigma)
        self.prior_mu, self.prior_sigma = float(prior_mu), float(prior_sigma)
        rho0 = math.log(math.expm1(init_sigma))  # softplus(rho0) == init_sigma
        self.weight_mu = nn.Parameter(torch.empty(weight_shape))
        self.weight_rho = nn.Parameter(torch.full(weight_shape, rho0))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(weight_shape[0]))
            self.bias_rho = nn.Parameter(torch.full((weight_shape[0],), rho0))
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

    def _prior_repr(self) -> str:
        return (f"prior=N({self.prior_mu}, {self.prior_sigma}^2), frozen={self.frozen}"
                + (", local_reparam=True" if self.local_reparam else ""))


class BayesLinear(BayesLayer):
    """A linear layer whose every weight and bias is a Gaussian random variable.

    Args:
        prior_mu, prior_sigma: mean and (positive) std of the factorised Gaussian prior.
        in_features, out_features: sizes as in ``nn.Linear``.
        bias: whether the layer has a (stochastic) bias.
        init_sigma: the posterior std every weight starts from (small: start near a point estimate).
        local_reparam: sample pre-activations instead of weights (:func:`local_reparam_linear`):
            every example gets its own noise. Right for training and for per-example predictive
            distributions; not for drawing whole functions (curves), which need one weight sample
            shared by all inputs. The attribute can be switched at any time.

    Shapes: ``[N, in] -> [N, out]`` with one weight sample, or ``[S, N, in] -> [S, N, out]``
    with S weight samples. ``freeze()`` makes the layer use the posterior means (deterministic).
    The noise is drawn on every forward pass, on the device and in the dtype of the layer.
    """

    def __init__(self, prior_mu: float, prior_sigma: float, in_features: int, out_features: int,
                 bias: bool = True, init_sigma: float = 1e-3, local_reparam: bool = False):
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        super().__init__(prior_mu, prior_sigma, (out_features, in_features), bias, init_sigma, local_reparam)
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
            return local_reparam_linear(x, self.weight_mu, self.weight_sigma, self.bias_mu, self.bias_sigma)
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

    @torch.no_grad()
    def sample_linear(self) -> nn.Linear:
        """An ordinary ``nn.Linear`` holding one weight sample (the means if the layer is frozen)."""
        mu = self.weight_mu
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias_mu is not None,
                           device=mu.device, dtype=mu.dtype)
        noise = 0.0 if self.frozen else 1.0
        linear.weight.copy_(mu + noise * self.weight_sigma * torch.randn_like(mu))
        if self.bias_mu is not None:
            linear.bias.copy_(self.bias_mu + noise * self.bias_sigma * torch.randn_like(self.bias_mu))
        return linear


def bayes_layers(model: nn.Module) -> list[BayesLayer]:
    """Every Bayesian layer (:class:`BayesLinear`, :class:`BayesConv2d`) inside ``model``, at any depth."""
    return [m for m in model.modules() if isinstance(m, BayesLayer)]


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every Bayesian layer in ``model`` (see :func:`bayes_layers`) uses its posterior means.

    ``with frozen(model): y = model(x)`` evaluates the *mean network* (deterministic); on leaving
    the block each layer gets back the frozen state it had before.
    """
    layers = bayes_layers(model)
    before = [layer.frozen for layer in layers]
    for layer in layers:
        layer.freeze()
    try:
        yield model
    finally:
        for layer, was_frozen in zip(layers, before):
            layer.frozen = was_frozen


def total_kl(model: nn.Module) -> torch.Tensor:
    """Sum of the closed-form KL of every Bayesian layer in ``model``; a scalar (0 if none)."""
    layers = bayes_layers(model)
    if not layers:
        return torch.zeros(())
    return torch.stack([layer.kl() for layer in layers]).sum()


def num_stochastic(model: nn.Module) -> int:
    """Number of random weights and biases in ``model`` (each (mu, sigma) pair counts once)."""
    return sum(layer.num_stochastic() for layer in bayes_layers(model))


# ---------------------------------------------------------------- posterior samples as ordinary networks

def sample_network(model: nn.Module) -> nn.Module:
    """One posterior sample of ``model`` as an ordinary, deterministic network.

    A deep copy of ``model`` in which every :class:`BayesLinear`, at any depth, is replaced by an
    ``nn.Linear`` holding one draw of its weights and biases (a layer used twice stays one shared
    layer). Other modules are copied unchanged. ``model`` itself is not modified.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, BayesLinear):
        return model.sample_linear()
    net = copy.deepcopy(model)
    drawn: dict[int, nn.Linear] = {}
    visited: set[int] = set()

    def swap(parent: nn.Module) -> None:
        if id(parent) in visited:
            return
        visited.add(id(parent))
        for name, child in list(parent._modules.items()):  # named_children() would skip a repeated child
            if child is None:
                continue
            if isinstance(child, BayesLinear):
                if id(child) not in drawn:
                    drawn[id(child)] = child.sample_linear()
                parent._modules[name] = drawn[id(child)]
            else:
                swap(child)

    swap(net)
    return net


def average_parameters(nets: Sequence[nn.Module]) -> nn.Module:
    """One network whose every parameter is the mean of that parameter over ``nets``.

    ``nets``: networks of one architecture (same parameter names and shapes), e.g. posterior
    samples from :func:`sample_network`. Returns a new network (a copy of ``nets[0]`` with the
    averaged parameters); ``nets`` are not modified. Buffers are copied from ``nets[0]``.
    This averages *weights*; the Bayesian predictive averages *outputs* instead.
    """
    nets = list(nets) if not isinstance(nets, nn.Module) else None
    if not nets:
        raise ValueError("nets must be a non-empty sequence of networks (not a single network)")
    shapes = [{name: p.shape for name, p in net.named_parameters()} for net in nets]
    for i, s in enumerate(shapes[1:], start=1):
        if s != shapes[0]:
            raise ValueError(f"nets must share one architecture: nets[{i}] has parameters "
                             f"{sorted(s)} / shapes differing from nets[0]")
    mean = copy.deepcopy(nets[0])
    params = [dict(net.named_parameters()) for net in nets]
    with torch.no_grad():
        for name, p in mean.named_parameters():
            p.copy_(torch.stack([ps[name] for ps in params]).mean(dim=0))
    return mean


# ---------------------------------------------------------------- Bayesian convolutions

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
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a tensor of shape [N, C_in, H, W], got {getattr(x, 'shape', x)!r}")
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


class BayesConv2d(BayesLayer):
    """A 2-D convolution whose every kernel weight and bias is a Gaussian random variable.

    Bayes by Backprop (Blundell et al., 2015) for convolutions: ``q(w) = N(mu, sigma^2)`` per
    weight with ``sigma = softplus(rho)``, a Gaussian prior ``N(prior_mu, prior_sigma^2)`` and the
    closed-form KL, exactly as :class:`BayesLinear`.

    Args:
        prior_mu, prior_sigma: mean and (positive) std of the factorised Gaussian prior.
        in_channels, out_channels, kernel_size, stride, padding: as in ``nn.Conv2d`` (square
            kernels, ints).
        bias: whether the layer has a (stochastic) bias.
        init_sigma: the posterior std every weight starts from (small: start near a point estimate).
        local_reparam: sample pre-activations instead of kernels (:func:`local_reparam_conv2d`):
            every example, channel and position gets its own noise (lower-variance gradients, two
            convolutions per call). Otherwise one kernel sample is drawn per weight sample.

    Shapes: ``[N, C_in, H, W] -> [N, C_out, H', W']`` with one weight sample, or
    ``[S, N, C_in, H, W] -> [S, N, C_out, H', W']`` with S weight samples, in one (grouped)
    convolution. An input broadcast along S, such as ``x.expand(S, *x.shape)``, is never copied:
    it is convolved once with all ``S * C_out`` sampled kernels (or, with local noise, once for
    the mean and once for the variance). ``freeze()`` makes the layer use the posterior means.
    """

    def __init__(self, prior_mu: float, prior_sigma: float, in_channels: int, out_channels: int,
                 kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True,
                 init_sigma: float = 1e-3, local_reparam: bool = False):
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        kernel_size = check_int("kernel_size", kernel_size)
        super().__init__(prior_mu, prior_sigma, (out_channels, in_channels, kernel_size, kernel_size), bias,
                         init_sigma, local_reparam)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride = check_int("stride", stride)
        self.padding = check_int("padding", padding, minimum=0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_means(self.in_channels * self.kernel_size ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"x must have shape [N, {self.in_channels}, H, W] or [S, N, {self.in_channels}, H, W], "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        conv = dict(stride=self.stride, padding=self.padding)
        if self.frozen or self.local_reparam:
            lead = x.shape[:-3]
            shared = x.dim() == 5 and x.stride(0) == 0  # one input for all S samples: convolve it once
            flat = x[0] if shared else x.reshape(-1, *x.shape[-3:])
            if self.frozen:
                out = F.conv2d(flat, self.weight_mu, self.bias_mu, **conv)
                return out.expand(*lead, *out.shape[1:]) if shared else out.reshape(*lead, *out.shape[1:])
            mean, std = _conv_mean_std(flat, self.weight_mu, self.weight_sigma, self.bias_mu, self.bias_sigma,
                                       self.stride, self.padding)
            if shared:
                return mean + std * torch.randn((lead[0], *mean.shape), dtype=mean.dtype, device=mean.device)
            return (mean + std * torch.randn_like(mean)).reshape(*lead, *mean.shape[1:])
        if x.dim() == 4:
            w = self.weight_mu + self.weight_sigma * torch.randn_like(self.weight_mu)
            b = None if self.bias_mu is None else self.bias_mu + self.bias_sigma * torch.randn_like(self.bias_mu)
            return F.conv2d(x, w, b, **conv)
        # S kernel samples in one grouped convolution: the S copies of the input become channel groups
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

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, " + self._prior_repr())
