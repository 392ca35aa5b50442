"""Training: the ELBO with its KL scaling stated explicitly, and one fit loop for every model.

With a data term that is a *mean* over a minibatch (an estimate of the per-example expected
negative log-likelihood), the matching per-example ELBO divides the KL by the number of
training examples N (not by the batch size, not by the number of parameters):

    -ELBO / N  =  E_q[ mean_n -log p(y_n | x_n, w) ]  +  KL(q || p) / N
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .utils import check_int, check_tensor

KL_SCHEMES = ("per_example", "per_batch", "per_param", "none")


def kl_weight(scheme: str, n_train: int, batch_size: int | None = None, num_params: int | None = None) -> float:
    """The factor that multiplies the KL in a per-example (mean) loss.

    ``per_example``: 1/N (the correct ELBO); ``per_batch``: 1/batch_size; ``per_param``:
    1/num_params; ``none``: 0 (maximum likelihood for the means, nothing holds sigma up).
    """
    check_int("n_train", n_train)
    if scheme == "per_example":
        return 1.0 / n_train
    if scheme == "per_batch":
        return 1.0 / check_int("batch_size", batch_size)
    if scheme == "per_param":
        return 1.0 / check_int("num_params", num_params)
    if scheme == "none":
        return 0.0
    raise ValueError(f"scheme must be one of {KL_SCHEMES}, got {scheme!r}")


def neg_elbo(nll_mean: torch.Tensor, kl: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Loss to minimise: ``nll_mean + kl_weight * kl`` (scalars). ``kl_weight`` must be >= 0."""
    if not kl_weight >= 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight!r}")
    return nll_mean + kl_weight * kl


def kl_warmup(step: int, warmup_steps: int) -> float:
    """Factor in [0, 1] for the KL term during a linear warm-up (KL annealing).

    ``min(1, step / warmup_steps)``: 0 at the first optimiser step (maximum likelihood, up to the
    weight noise), growing linearly to 1 (the full ELBO) at ``step == warmup_steps`` and staying
    there (Bowman et al., 2016; Sønderby et al., 2016). ``warmup_steps == 0``: no warm-up, always 1.
    Multiply the KL weight by it, e.g. ``neg_elbo(nll, kl, kl_warmup(step, W) / n_train)``.
    """
    check_int("step", step, minimum=0)
    check_int("warmup_steps", warmup_steps, minimum=0)
    return 1.0 if step >= warmup_steps else step / warmup_steps


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
        loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
        epochs: int, batch_size: int, lr: float = 1e-2, weight_decay: float = 0.0,
        progress: bool = True, desc: str = "training", pass_step: bool = False) -> list[float]:
    """Minimise ``loss_fn(model, x_batch, y_batch)`` with Adam over shuffled minibatches.

    ``x``: ``[N, ...]``, ``y``: ``[N, ...]`` (floats, or int64/int32 class labels) on the model's device. Shuffling indexes a
    ``randperm`` of the in-memory tensors (faster than a DataLoader for small data) and uses
    torch's global generator, so ``seed_everything`` makes a run repeatable.

    ``pass_step=True`` calls ``loss_fn(model, x_batch, y_batch, step)`` instead, with ``step`` the
    number of optimiser steps taken so far (0, 1, 2, ...): for losses that change during
    training, e.g. a KL warm-up with :func:`kl_warmup`.

    Returns the mean training loss of every epoch.
    """
    check_tensor("x", x)
    if not (isinstance(y, torch.Tensor) and y.dtype in (torch.int64, torch.int32)):  # class labels pass as they are
        check_tensor("y", y)
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")
    n = x.shape[0]
    # fused Adam: ~15% faster per step on these small networks (first use costs ~2 s per process)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                                 fused=x.device.type in ("cpu", "cuda"))
    model.train()
    history = []
    step = 0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        perm = torch.randperm(n, device=x.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = loss_fn(model, x[idx], y[idx], step) if pass_step else loss_fn(model, x[idx], y[idx])
            step += 1
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()}; lower lr (now {lr}) or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / n)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    return history
