"""Seeding, device choice and the package's input checks.

Convention for every public function of the package: a value of the wrong *type* raises
``TypeError``, a value of the right type but the wrong shape or value (NaN included) raises
``ValueError``; the message names the argument, what was expected and what was given.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a lesson prints the same numbers twice."""
    # (PYTHONHASHSEED is not set here: it only acts when an interpreter starts; the Makefile
    # and tools/nbcourse.py set it for the kernels they launch)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_devices() -> list[torch.device]:
    """Every CUDA device, or ``[cpu]`` when there is none (d2l's ``try_all_gpus``): where to spread
    an ensemble's members (``GaussianEnsemble(..., devices=get_devices())``)."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [torch.device(f"cuda:{i}") for i in range(n)] or [torch.device("cpu")]


def check_tensor(name: str, value, ndim: int | tuple[int, ...] | None = None,
                 last_dim: int | None = None, finite: bool = True) -> torch.Tensor:
    """Return ``value`` if it is a finite floating tensor of the expected rank, else raise.

    ``finite=False`` skips the NaN/inf scan (for callers that allow ``-inf`` log-probabilities
    and check the rest themselves). The error names the argument, what was expected and what was given.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.dim() not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(value.shape)}")
    if last_dim is not None and (value.dim() == 0 or value.shape[-1] != last_dim):
        raise ValueError(f"{name} must have last dimension {last_dim}, got shape {tuple(value.shape)}")
    if finite and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values; clean or impute the data first")
    return value


def check_positive(name: str, value) -> None:
    """Raise if a scale (a number or a tensor) is not strictly positive and finite."""
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value).all() and (value > 0).all())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        ok = bool(np.isfinite(value) and value > 0)
    else:
        raise TypeError(f"{name} must be a positive number or tensor (a standard deviation or precision), "
                        f"got {type(value).__name__} {value!r}")
    if not ok:
        raise ValueError(f"{name} must be positive and finite (a standard deviation or precision), got {value!r}")


def check_int(name: str, value, minimum: int = 1) -> int:
    """Raise unless ``value`` is an int >= ``minimum`` (TypeError: not an int; ValueError: too small)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


@contextmanager
def temporarily(objects: Iterable, name: str, value) -> Iterator[None]:
    """Within the block attribute ``name`` of every object is ``value`` (or ``value(obj)`` if
    ``value`` is callable); on leaving it, even by an exception, each object gets back its own."""
    objects = list(objects)
    before = [getattr(obj, name) for obj in objects]
    try:
        for obj in objects:
            setattr(obj, name, value(obj) if callable(value) else value)
        yield
    finally:
        for obj, old in zip(objects, before):
            setattr(obj, name, old)
