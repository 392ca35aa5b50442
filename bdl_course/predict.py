"""Producing predictives: every method's :class:`~bdl_course.predictive.Predictive` through one call.

:func:`predictive` runs a model on ``[S, N, ...]`` (the input broadcast along S without a copy),
so a Bayes-by-Backprop network draws S weight samples in one batched pass, and hands the raw
outputs to a likelihood (:mod:`bdl_course.likelihoods`). Wrappers that are not a plain forward
pass -- :func:`mc_dropout` for any network containing dropout, and the ensembles of
:mod:`bdl_course.ensembles` -- define ``predictive(x, likelihood, n_samples)`` and are delegated to.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from .predictive import Predictive
from .utils import check_int, check_tensor, temporarily

__all__ = ["predictive", "mc_dropout", "MCDropout", "eval_mode", "sample_predictions_loop", "summarize"]


@contextmanager
def eval_mode(model: nn.Module, keep_on: tuple[type, ...] = ()) -> Iterator[nn.Module]:
    """Within the block every module of ``model`` is in eval mode, except those of the types in
    ``keep_on`` (put in train mode); on leaving it every module gets back its own mode."""
    with temporarily(model.modules(), "training", lambda m: bool(keep_on) and isinstance(m, keep_on)):
        yield model


def _check_x(x) -> None:
    check_tensor("x", x)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of inputs [N, ...] (e.g. [N, D] or [N, C, H, W]), "
                         f"got shape {tuple(x.shape)}")


def _forward_in_batches(model: nn.Module, x: torch.Tensor, n_samples: int, batch_size: int | None):
    """Raw outputs of ``model`` on ``x`` broadcast to ``[S, N, ...]``; a tensor or a tuple of tensors."""
    size = x.shape[0] if batch_size is None else batch_size
    parts = []
    for start in range(0, x.shape[0], size):
        chunk = x[start:start + size]
        parts.append(model(chunk.unsqueeze(0).expand(n_samples, *chunk.shape)))
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(items, dim=1) for items in zip(*parts))
    return torch.cat(parts, dim=1)


@torch.no_grad()
def predictive(model: nn.Module, x: torch.Tensor, likelihood=None, n_samples: int = 1,
               batch_size: int | None = None) -> Predictive:
    """The predictive of ``model`` at the inputs ``x`` as S components, for any method.

    ``x``: ``[N, ...]``. A plain model is run once on ``x`` broadcast to ``[S, N, ...]`` (no copy):
    every Bayesian layer draws S weight samples, one per leading index; a deterministic network
    (MLE, MAP) gives S equal components, so leave ``n_samples=1``. Its raw outputs go to
    ``likelihood.predictive`` (e.g. :class:`~bdl_course.likelihoods.Gaussian`). The model runs in
    eval mode and every module gets back its own train/eval mode afterwards. ``batch_size``: at
    most that many inputs per pass, to bound memory.

    A wrapper that defines ``predictive(x, likelihood, n_samples)`` (:func:`mc_dropout`,
    :class:`~bdl_course.ensembles.DeepEnsemble`, :class:`~bdl_course.ensembles.GaussianEnsemble`)
    is delegated to. Returns a :class:`~bdl_course.predictive.Predictive` with S = ``n_samples``
    components (an ensemble: one per member).

    Examples::

        lik = bdl.likelihoods.Gaussian(n_train, noise_std=0.3)
        bdl.train.fit(bnn, x_train, y_train, lik, epochs=200, batch_size=32)      # the per-example -ELBO
        p = bdl.predict.predictive(bnn, x_test, lik, n_samples=100)               # BBB: 100 weight samples
        p = bdl.predict.predictive(bdl.predict.mc_dropout(net), x_test, lik, 100)  # MC dropout: 100 masks
        p.mean(), p.std(), p.interval(0.95), p.nll(y_test)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_int("n_samples", n_samples)
    if batch_size is not None:
        check_int("batch_size", batch_size)
    if hasattr(model, "predictive") and callable(model.predictive):
        return model.predictive(x, likelihood, n_samples=n_samples, batch_size=batch_size)
    _check_x(x)
    if likelihood is None or not callable(getattr(likelihood, "predictive", None)):
        raise TypeError(f"likelihood must be a bdl_course.likelihoods object (Gaussian, HeteroskedasticGaussian, "
                        f"Categorical), got {type(likelihood).__name__}")
    with eval_mode(model):
        out = _forward_in_batches(model, x, n_samples, batch_size)
    return likelihood.predictive(out)


class MCDropout(nn.Module):
    """MC dropout (Gal & Ghahramani, 2016) for any network that contains ``nn.Dropout`` modules.

    ``forward`` is the wrapped network's (dropout on in train mode, off in eval mode, as usual).
    :meth:`predictive` draws ``n_samples`` dropout masks in one pass over ``[S, N, ...]``: only the
    dropout modules are switched on (batch norm and the rest stay in eval mode), and every module
    gets back its own mode afterwards. Each input row gets its own masks: right for the predictive
    at each input, not for drawing whole functions (curves) across inputs.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if hasattr(net, "predictive"):
            raise TypeError(f"{type(net).__name__} has its own predictive(x, likelihood, n_samples); for MC dropout "
                            f"inside it call that with n_samples > 1")
        if not any(isinstance(m, nn.modules.dropout._DropoutNd) for m in net.modules()):
            raise ValueError("net contains no nn.Dropout module: every MC dropout sample would be the same "
                             "network; add nn.Dropout(p) layers (e.g. after each hidden activation)")
        self.net = net

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    @torch.no_grad()
    def predictive(self, x: torch.Tensor, likelihood=None, n_samples: int = 100,
                   batch_size: int | None = None) -> Predictive:
        """S = ``n_samples`` dropout masks as the components of the predictive at ``x`` ``[N, ...]``."""
        check_int("n_samples", n_samples)
        _check_x(x)
        if likelihood is None or not callable(getattr(likelihood, "predictive", None)):
            raise TypeError(f"likelihood must be a bdl_course.likelihoods object, got {type(likelihood).__name__}")
        with eval_mode(self.net, keep_on=(nn.modules.dropout._DropoutNd,)):
            out = _forward_in_batches(self.net, x, n_samples, batch_size)
        return likelihood.predictive(out)


def mc_dropout(net: nn.Module) -> MCDropout:
    """Wrap ``net`` (any network with ``nn.Dropout`` modules) for MC dropout; see :class:`MCDropout`."""
    return MCDropout(net)


@torch.no_grad()
def sample_predictions_loop(model: nn.Module, x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """The slow way, kept only to compare against: one forward pass per example per sample.

    ``x``: ``[N, in]``; returns the raw outputs ``[S, N, ...]`` that :func:`predictive` hands its
    likelihood, at the cost of ``N * S`` small forward passes.
    """
    check_tensor("x", x, ndim=2)
    check_int("n_samples", n_samples)
    with eval_mode(model):
        rows = [torch.stack([model(x[i:i + 1])[0] for _ in range(n_samples)]) for i in range(x.shape[0])]
    return torch.stack(rows, dim=1)


def summarize(samples: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-point summaries of predictive samples ``[S, N]``: each value has shape ``[N]``.

    Keys: mean, std, min, max, range (max - min).
    """
    check_tensor("samples", samples, ndim=2)
    lo, hi = samples.min(dim=0).values, samples.max(dim=0).values
    return {"mean": samples.mean(0), "std": samples.std(0), "min": lo, "max": hi, "range": hi - lo}
