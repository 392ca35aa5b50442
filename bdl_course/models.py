"""Small networks built from ``torch.nn`` and :mod:`bdl_course.layers`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BayesConv2d, BayesLinear
from .utils import check_int, check_positive

__all__ = ["mlp", "bayes_mlp", "HeteroskedasticRegressor", "RBFFeatures",
           "LeNet", "lenet", "bayes_lenet"]


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
        layers += [BayesLinear(a, b, prior_mu=prior_mu, prior_sigma=prior_sigma, init_sigma=init_sigma), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class HeteroskedasticRegressor(nn.Module):
    """``y ~ N(mean(x), std(x)^2)``: a Gaussian head whose noise level depends on the input.

    ``body`` maps ``[..., in] -> [..., 2]``: unit 0 is the mean, unit 1 an unconstrained scale
    ``s`` with ``std = softplus(s) + min_std`` -- positive, and floored so that the Gaussian NLL
    cannot run off to ``-inf`` by shrinking ``std`` on a point the mean happens to fit exactly.
    ``forward`` returns ``(mean, std)``, each ``[N]`` for ``x`` ``[N, in]``, or each ``[S, N]``
    for ``[S, N, in]`` (S weight samples of a Bayesian body).
    """

    def __init__(self, body: nn.Module, min_std: float = 1e-3):
        super().__init__()
        check_positive("min_std", min_std)
        self.body = body
        self.min_std = min_std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(x)
        if out.shape[-1] != 2:
            raise ValueError(f"body must end in two output units (mean, scale), got output shape {tuple(out.shape)}")
        return out[..., 0], F.softplus(out[..., 1]) + self.min_std


class RBFFeatures(nn.Module):
    """Fixed Gaussian bumps of a scalar input, a *local* first layer: ``[..., 1] -> [..., K]``.

    Feature ``k`` is ``exp(-(x - centers[k])^2 / (2 lengthscale^2))``, close to 0 more than a few
    lengthscales from its center, so a weight fed by it only matters near that center. Nothing
    here is trained. (Unlike :func:`bdl_course.conjugate.rbf_features` there is no constant
    column -- the next layer has a bias -- and any leading dimensions pass through.)
    """

    def __init__(self, centers, lengthscale: float):
        super().__init__()
        centers = torch.as_tensor(centers, dtype=torch.get_default_dtype())
        if centers.dim() != 1 or centers.numel() == 0 or not torch.isfinite(centers).all():
            raise ValueError(f"centers must be a non-empty 1-D sequence of finite numbers, got shape {tuple(centers.shape)}")
        check_positive("lengthscale", lengthscale)
        self.register_buffer("centers", centers.clone())
        self.lengthscale = float(lengthscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != 1:
            raise ValueError(f"x must have shape [..., 1] (one scalar input per row), got {tuple(x.shape)}")
        return torch.exp(-0.5 * ((x - self.centers.to(x.dtype)) / self.lengthscale) ** 2)

    def extra_repr(self) -> str:
        return f"{self.centers.numel()} centers in [{self.centers.min():.3g}, {self.centers.max():.3g}], lengthscale={self.lengthscale}"


# ---------------------------------------------------------------- convolutional networks

class LeNet(nn.Module):
    """A LeNet-style classifier: two (convolution -> ReLU -> 2x2 max-pool) blocks, then dense layers.

    ``conv(k) - ReLU - pool - conv(k) - ReLU - pool - flatten - [linear - ReLU]* - linear``; the
    convolutions keep the image size (padding ``k // 2``), the pools halve it, so ``image_size``
    must be divisible by 4. Built by :func:`lenet` (ordinary layers) or :func:`bayes_lenet`
    (:class:`~bdl_course.layers.BayesConv2d` and :class:`~bdl_course.layers.BayesLinear`).

    Shapes: ``[N, C, H, W] -> [N, n_classes]`` logits; a Bayesian LeNet also takes
    ``[S, N, C, H, W] -> [S, N, n_classes]`` (S weight samples, one pass). An ordinary LeNet
    treats leading dimensions as a batch, so both kinds take the same inputs.
    """

    def __init__(self, convs: list[nn.Module], dense: list[nn.Module], in_channels: int, image_size: int):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.dense = nn.ModuleList(dense)
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, s = self.in_channels, self.image_size
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if x.dim() not in (4, 5) or tuple(x.shape[-3:]) != (c, s, s):
            raise ValueError(f"x must have shape [N, {c}, {s}, {s}] or [S, N, {c}, {s}, {s}], "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        lead = x.shape[:-3]
        h = x
        for conv in self.convs:
            if not isinstance(conv, BayesConv2d):  # nn.Conv2d takes one batch dimension
                h = conv(h.reshape(-1, *h.shape[-3:])).reshape(*lead, -1, *h.shape[-2:])
            else:
                h = conv(h)
            h = F.relu(_max_pool2(h))  # = max-pool of the ReLU (they commute), 4x fewer elements
        h = h.flatten(-3)
        for i, layer in enumerate(self.dense):
            h = layer(h) if i == 0 else layer(F.relu(h))
        return h


def _max_pool2(h: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling with stride 2 over the last two dimensions of ``[..., C, H, W]`` (H, W even)."""
    if torch.is_grad_enabled() and h.requires_grad:  # training: max_pool2d's backward is the cheaper one
        flat = F.max_pool2d(h.reshape(-1, *h.shape[-3:]), 2)
        return flat.reshape(*h.shape[:-2], *flat.shape[-2:])
    # predicting: the max of four strided views, several times faster than max_pool2d on a CPU
    return torch.maximum(torch.maximum(h[..., ::2, ::2], h[..., 1::2, ::2]),
                         torch.maximum(h[..., ::2, 1::2], h[..., 1::2, 1::2]))


def _lenet_layers(in_channels, image_size, n_classes, channels, hidden, kernel_size, conv, linear):
    check_int("in_channels", in_channels)
    check_int("n_classes", n_classes, minimum=2)
    check_int("kernel_size", kernel_size)
    if not isinstance(image_size, int) or isinstance(image_size, bool):
        raise TypeError(f"image_size must be an int divisible by 4 (two 2x2 poolings), got {image_size!r}")
    if image_size < 4 or image_size % 4:
        raise ValueError(f"image_size must be an int divisible by 4 (two 2x2 poolings), got {image_size!r}")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (padding k // 2 keeps the image size), got {kernel_size}")
    channels = list(channels)
    if len(channels) != 2:
        raise ValueError(f"channels must hold the widths of the two convolutions, got {channels!r}")
    for i, width in enumerate(channels):
        check_int(f"channels[{i}]", width)
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    for i, width in enumerate(hidden):
        check_int(f"hidden[{i}]", width)
    convs = [conv(a, b) for a, b in zip([in_channels, channels[0]], channels)]
    sizes = [channels[1] * (image_size // 4) ** 2, *hidden, n_classes]
    return convs, [linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]


def lenet(in_channels: int = 1, image_size: int = 8, n_classes: int = 10, channels=(16, 32),
          hidden=(), kernel_size: int = 3) -> LeNet:
    """A deterministic :class:`LeNet` (``nn.Conv2d`` and ``nn.Linear``). ``hidden``: widths of the
    dense hidden layers (an int, a list, or ``()`` for none).

    Shapes: ``[N, C, H, W] -> [N, n_classes]`` logits (leading dimensions pass through).
    """
    convs, dense = _lenet_layers(in_channels, image_size, n_classes, channels, hidden, kernel_size,
                                 lambda a, b: nn.Conv2d(a, b, kernel_size, padding=kernel_size // 2),
                                 nn.Linear)
    return LeNet(convs, dense, in_channels, image_size)


def bayes_lenet(in_channels: int = 1, image_size: int = 8, n_classes: int = 10, channels=(16, 32),
                hidden=(), kernel_size: int = 3, prior_sigma: float = 1.0, prior_mu: float = 0.0,
                init_sigma: float = 1e-3, local_reparam: bool = True) -> LeNet:
    """The Bayesian twin of :func:`lenet`: every weight and bias Gaussian, prior ``N(prior_mu, prior_sigma^2)``.

    ``local_reparam`` samples pre-activations instead of weights in every layer (see
    :func:`~bdl_course.functional.local_reparam_conv2d`). Shapes: ``[N, C, H, W] -> [N, n_classes]``
    (one weight sample) or ``[S, N, C, H, W] -> [S, N, n_classes]`` (S samples).
    """
    check_positive("prior_sigma", prior_sigma)
    convs, dense = _lenet_layers(
        in_channels, image_size, n_classes, channels, hidden, kernel_size,
        lambda a, b: BayesConv2d(a, b, kernel_size, padding=kernel_size // 2, prior_mu=prior_mu,
                                 prior_sigma=prior_sigma, init_sigma=init_sigma, local_reparam=local_reparam),
        lambda a, b: BayesLinear(a, b, prior_mu=prior_mu, prior_sigma=prior_sigma, init_sigma=init_sigma,
                                 local_reparam=local_reparam))
    return LeNet(convs, dense, in_channels, image_size)
