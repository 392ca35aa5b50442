"""A full-network Laplace approximation with the generalised Gauss-Newton matrix (regression).

Post hoc, on any trained network with a Gaussian likelihood of known noise std: the posterior
over all ``P`` weights is approximated by ``N(w*, (GGN + delta I)^-1)`` around the trained weights
``w*``, with ``GGN = J^T J / sigma^2`` (``J``: ``[N, P]`` Jacobian of the outputs at the training
inputs, from :func:`torch.func.jacrev`) and an isotropic prior precision ``delta``. ``delta`` is
chosen by maximising the Laplace estimate of the marginal likelihood (evidence), as laplace-torch
does (Daxberger et al., 2021; MacKay, 1992). The predictive linearises the network around ``w*``
(the "GLM" predictive of Immer et al., 2021), or plugs weight samples into the network (``"nn"``).

Why not laplace-torch itself: ``pip install laplace-torch`` (0.3) resolves only with torch
2.14 and its CUDA wheels (several GB), so it does not install beside the course's torch 2.13.0.
A full GGN is affordable here because lesson 07's network has 31 weights; for large networks use
laplace-torch's last-layer or Kronecker-factored variants.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .predictive import Predictive
from .utils import check_int, check_positive, check_tensor

__all__ = ["Laplace"]


class Laplace:
    """Full-network GGN Laplace for a regression network ``[N, D] -> [N, 1]`` (or ``[N]``).

    Usage::

        la = Laplace(net, noise_std=0.2).fit(x_train, y_train)   # net already trained (MAP)
        la.optimize_prior_precision()                             # delta by the evidence
        p = la.predictive(x_test, n_samples=200)                  # a Predictive, [200, M]

    The network's weights and train/eval mode are left as they were.
    """

    def __init__(self, model: nn.Module, noise_std: float, prior_precision: float = 1.0):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        check_positive("noise_std", noise_std)
        check_positive("prior_precision", prior_precision)
        self.model = model
        self.noise_std = float(noise_std)
        self.prior_precision = float(prior_precision)
        self._names = [name for name, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self._shapes = [params[n].shape for n in self._names]
        self.mean = torch.cat([params[n].detach().reshape(-1) for n in self._names])  # w*, [P]
        self._eig = None

    @property
    def n_params(self) -> int:
        return self.mean.numel()

    # ------------------------------------------------ the network as a function of its weights
    def _unflatten(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, shape in zip(self._names, self._shapes):
            size = math.prod(shape)
            out[name] = w[start:start + size].reshape(shape)
            start += size
        return out

    def _f(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = functional_call(self.model, self._unflatten(w), (x,))
        if out.dim() == x.dim() and out.shape[-1] == 1:
            out = out.squeeze(-1)
        if out.shape != x.shape[:1]:
            raise ValueError(f"the model must map [N, ...] inputs to [N, 1] or [N] outputs (one regression "
                             f"target), got output shape {tuple(out.shape)} for input shape {tuple(x.shape)}")
        return out

    def _eval(self, fn):
        was_training = self.model.training
        self.model.eval()
        try:
            return fn()
        finally:
            self.model.train(was_training)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, P]``: d output_i / d w at ``w*``."""
        check_tensor("x", x)
        return self._eval(lambda: jacrev(self._f)(self.mean, x))

    # ------------------------------------------------ fitting
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "Laplace":
        """Compute the GGN at the training data (``x`` ``[N, ...]``, ``y`` ``[N]``); returns ``self``."""
        check_tensor("x", x)
        check_tensor("y", y, ndim=1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")
        jac = self.jacobian(x)
        f = self._eval(lambda: self._f(self.mean, x)).detach()
        self.ggn = jac.T @ jac / self.noise_std ** 2  # [P, P]
        n = y.shape[0]
        self.log_likelihood = float(-0.5 * ((y - f) ** 2).sum() / self.noise_std ** 2
                                    - n * math.log(self.noise_std) - 0.5 * n * math.log(2 * math.pi))
        ggn64 = self.ggn.double()
        self._eig = torch.linalg.eigh(0.5 * (ggn64 + ggn64.T))  # GGN = V diag(lam) V^T, lam >= 0
        return self

    def _need_fit(self):
        if self._eig is None:
            raise RuntimeError("call fit(x_train, y_train) first")

    def log_marginal_likelihood(self, prior_precision=None) -> torch.Tensor:
        """Laplace estimate of ``log p(y | x, delta)``; ``prior_precision``: a number or a tensor of them.

        ``log p(y | w*) + log p(w* | delta) + P/2 log 2 pi - 1/2 log det(GGN + delta I)``, i.e.
        ``log p(y | w*) - delta/2 |w*|^2 + P/2 log delta - 1/2 log det(GGN + delta I)``. Exact for a
        linear model when ``w*`` is its posterior mode under ``delta``.
        """
        self._need_fit()
        delta = torch.as_tensor(self.prior_precision if prior_precision is None else prior_precision,
                                dtype=torch.float64)
        check_positive("prior_precision", delta)
        lam = self._eig.eigenvalues.clamp_min(0)
        logdet = torch.log(lam + delta[..., None]).sum(-1)
        sq = (self.mean.double() ** 2).sum()
        return self.log_likelihood - 0.5 * delta * sq + 0.5 * self.n_params * torch.log(delta) - 0.5 * logdet

    def optimize_prior_precision(self, low: float = 1e-4, high: float = 1e4, n_grid: int = 801) -> float:
        """Set ``prior_precision`` to the maximiser of :meth:`log_marginal_likelihood` on a log grid
        (``n_grid`` values from ``low`` to ``high``); returns it. Warns nothing: check that it is
        not at an end of the grid (then widen it)."""
        check_positive("low", low)
        check_positive("high", high)
        check_int("n_grid", n_grid, minimum=2)
        grid = torch.logspace(math.log10(low), math.log10(high), n_grid, dtype=torch.float64)
        self.prior_precision = float(grid[self.log_marginal_likelihood(grid).argmax()])
        return self.prior_precision

    # ------------------------------------------------ the posterior
    def posterior_covariance(self) -> torch.Tensor:
        """``(GGN + delta I)^-1``, ``[P, P]`` (float64)."""
        self._need_fit()
        v, lam = self._eig.eigenvectors, self._eig.eigenvalues.clamp_min(0)
        return (v / (lam + self.prior_precision)) @ v.T

    def _sqrt_covariance(self) -> torch.Tensor:
        v, lam = self._eig.eigenvectors, self._eig.eigenvalues.clamp_min(0)
        return v / torch.sqrt(lam + self.prior_precision)  # L with L L^T = covariance

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n_samples, P]`` weight draws from ``N(w*, (GGN + delta I)^-1)``."""
        self._need_fit()
        check_int("n_samples", n_samples)
        eps = torch.randn(n_samples, self.n_params, generator=generator, dtype=torch.float64)
        return (self.mean.double() + eps @ self._sqrt_covariance().T).to(self.mean.dtype)

    def functional_variance(self, x: torch.Tensor) -> torch.Tensor:
        """``[N]``: the variance of the linearised network's output, ``diag(J Sigma J^T)``."""
        jac = self.jacobian(x).double()
        return ((jac @ self.posterior_covariance()) * jac).sum(-1).to(x.dtype)

    def predictive(self, x: torch.Tensor, n_samples: int = 100, generator: torch.Generator | None = None,
                   link: str = "glm") -> Predictive:
        """The predictive at ``x`` ``[M, ...]`` as ``n_samples`` Gaussian components ``[n_samples, M]``.

        ``link="glm"``: outputs of the network linearised at ``w*`` (``f(x, w*) + J (w - w*)``);
        ``"nn"``: the network itself at each weight sample. Each component has the noise std.
        """
        if link not in ("glm", "nn"):
            raise ValueError(f"link must be 'glm' or 'nn', got {link!r}")
        self._need_fit()
        check_tensor("x", x)
        w = self.sample(n_samples, generator)
        if link == "glm":
            jac = self.jacobian(x)
            f0 = self._eval(lambda: self._f(self.mean, x)).detach()
            loc = f0 + (w - self.mean) @ jac.T
        else:
            loc = self._eval(lambda: vmap(self._f, in_dims=(0, None))(w, x)).detach()
        return Predictive.gaussian(loc, self.noise_std)

    def __repr__(self) -> str:
        return (f"Laplace(full GGN, n_params={self.n_params}, noise_std={self.noise_std}, "
                f"prior_precision={self.prior_precision:.4g})")
