"""Model-level utilities for Bayesian networks: every Bayesian layer of a model, its KL, freezing,
local reparameterisation for a whole model, and posterior samples as ordinary networks.

These act on any ``nn.Module`` that contains :mod:`bdl_course.layers` modules, at any depth
(torch keeps such helpers apart from its modules too, in ``torch.nn.utils``).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from .layers import BayesLayer
from .utils import temporarily

__all__ = ["bayes_layers", "frozen", "local_reparam", "total_kl", "num_stochastic", "sample_network",
           "average_parameters", "prune_by_snr"]


def bayes_layers(model: nn.Module) -> list[BayesLayer]:
    """Every Bayesian layer (:class:`BayesLinear`, :class:`BayesConv2d`) inside ``model``, at any depth."""
    return [m for m in model.modules() if isinstance(m, BayesLayer)]


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every Bayesian layer in ``model`` (see :func:`bayes_layers`) uses its posterior means.

    ``with frozen(model): y = model(x)`` evaluates the *mean network* (deterministic); on leaving
    the block each layer gets back the frozen state it had before.
    """
    with temporarily(bayes_layers(model), "frozen", True):
        yield model


@contextmanager
def local_reparam(model: nn.Module, on: bool = True) -> Iterator[nn.Module]:
    """Within the block every Bayesian layer in ``model`` samples with (``on=True``) or without
    (``on=False``) the local reparameterisation trick; on leaving it each layer gets back its own setting.

    ``with local_reparam(model, False): curves = model(x.expand(S, *x.shape))`` draws S whole
    functions (one weight sample shared by all inputs) from a model trained with local noise
    (TyXe's ``poutine.local_reparameterization`` handler, as a context like :func:`frozen`).
    """
    if not isinstance(on, bool):
        raise TypeError(f"on must be a bool, got {type(on).__name__}")
    with temporarily(bayes_layers(model), "local_reparam", on):
        yield model


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

    A deep copy of ``model`` in which every Bayesian layer (:class:`~bdl_course.layers.BayesLayer`:
    ``BayesLinear`` and ``BayesConv2d``), at any depth, is replaced by the ordinary torch layer
    (``nn.Linear``, ``nn.Conv2d``) holding one draw of its weights and biases (see
    ``BayesLayer.sample_module``; a frozen layer gives its means; a layer used twice stays one
    shared layer). Other modules are copied unchanged. ``model`` itself is not modified.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, BayesLayer):
        return model.sample_module()
    net = copy.deepcopy(model)
    drawn: dict[int, nn.Module] = {}
    visited: set[int] = set()

    def swap(parent: nn.Module) -> None:
        if id(parent) in visited:
            return
        visited.add(id(parent))
        for name, child in list(parent._modules.items()):  # named_children() would skip a repeated child
            if child is None:
                continue
            if isinstance(child, BayesLayer):
                if id(child) not in drawn:
                    drawn[id(child)] = child.sample_module()
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


def prune_by_snr(model: nn.Module, fraction: float, largest: bool = False) -> nn.Module:
    """A frozen copy of ``model`` with the weights of lowest (or, ``largest=True``, highest)
    signal-to-noise ratio ``|weight_mu| / weight_sigma`` set to 0 (Blundell et al., 2015, §5.1).

    The ``floor(fraction * P)`` weights are ranked globally over every Bayesian layer, where P is
    the number of weights of all of them together (biases are neither ranked nor pruned). Every
    Bayesian layer of the copy is frozen, so it predicts with its (pruned) mean weights.
    ``model`` itself is not modified. ``fraction``: a number in [0, 1].
    """
    import math

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
        raise TypeError(f"fraction must be a number in [0, 1], got {type(fraction).__name__}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1] (the share of weights to prune), got {fraction!r}")
    if not isinstance(largest, bool):
        raise TypeError(f"largest must be a bool, got {type(largest).__name__}")
    pruned = copy.deepcopy(model)
    layers = bayes_layers(pruned)
    if not layers:
        raise ValueError("model has no Bayesian layers: there is no signal-to-noise ratio to prune by")
    with torch.no_grad():
        snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
        k = math.floor(fraction * snr.numel())
        drop = torch.zeros(snr.numel(), dtype=torch.bool, device=snr.device)
        drop[snr.argsort(descending=largest)[:k]] = True
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
