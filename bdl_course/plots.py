"""The figures the lessons draw. Every function draws on a given matplotlib ``Axes``."""
from __future__ import annotations

import numpy as np
import torch


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def predictive_band(ax, x, mean, std, label: str, color: str = "C0", k: float = 2.0) -> None:
    """A mean curve with a ``mean ± k·std`` band. ``x``, ``mean``, ``std``: ``[M]`` (std, not variance)."""
    x, mean, std = _np(x), _np(mean), _np(std)
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, mean - k * std, mean + k * std, color=color, alpha=0.2, linewidth=0)


def training_data(ax, x, y, label: str = "training data") -> None:
    """Training points as black dots. ``x``, ``y``: ``[N]``."""
    ax.scatter(_np(x), _np(y), s=12, color="black", zorder=3, label=label)


def mc_error(ax, n_samples, errors, label: str = "Monte Carlo error") -> None:
    """Error of a Monte Carlo estimate against the number of samples, log-log, with a 1/sqrt(J) guide."""
    j, err = _np(n_samples).astype(float), _np(errors)
    ax.loglog(j, err, "o-", label=label)
    ax.loglog(j, err[-1] * np.sqrt(j[-1] / j), "k--", label=r"$\propto 1/\sqrt{J}$")  # through the last point
    ax.set_xlabel("number of posterior samples J")
    ax.set_ylabel("mean |error|")
    ax.legend()


def sample_boxplots(ax, samples, targets=None) -> None:
    """One box per test point from predictive samples ``[S, K]``; targets ``[K]`` as red crosses."""
    samples = _np(samples)
    ax.boxplot(samples, showfliers=False)
    if targets is not None:
        ax.scatter(np.arange(1, samples.shape[1] + 1), _np(targets), marker="x", color="red", zorder=3, label="true value")
        ax.legend()
    ax.set_xlabel("test point")
