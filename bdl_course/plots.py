"""The figures the lessons draw. Every function draws on a given matplotlib ``Axes``."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["predictive_band", "against_reference", "shade_regions", "training_data", "mc_error", "sample_boxplots", "sample_curves",
           "reliability_diagram", "image_grid"]


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def predictive_band(ax, x, mean, std=None, label: str | None = None, color: str = "C0", k: float = 2.0,
                    level: float = 0.95) -> None:
    """A mean curve with a band. ``x``: ``[M]``.

    ``mean``: a :class:`~bdl_course.predictive.Predictive` at the M inputs (``std`` left out): its
    mixture mean and its exact central ``level`` interval; or a tensor ``[M]`` of means with
    ``std`` ``[M]`` (a std, not a variance): the band is ``mean ± k·std``.
    """
    from .predictive import Predictive

    if isinstance(mean, Predictive):
        if std is not None:
            raise ValueError("std must be left out when mean is a Predictive (it has its own interval)")
        lo, hi = (_np(t) for t in mean.interval(level))
        x, mean = _np(x), _np(mean.mean())
    else:
        if std is None:
            raise TypeError("std is required with a tensor of means (or pass a Predictive)")
        x, mean, std = _np(x), _np(mean), _np(std)
        lo, hi = mean - k * std, mean + k * std
    if mean.shape != x.shape:
        raise ValueError(f"the predictive must be at the {x.shape[0]} points of x, got mean of shape {mean.shape}")
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def shade_regions(ax, intervals, label: str | None = "no data", color: str = "grey", alpha: float = 0.15) -> None:
    """Grey vertical bands over the x-intervals ``[(a, b), ...]`` (e.g. the gaps without training
    data); one legend entry, ``label``, for all of them (None: no entry)."""
    intervals = [tuple(map(float, pair)) for pair in intervals]
    for a, b in intervals:
        if not a < b:
            raise ValueError(f"each interval must be (a, b) with a < b, got {(a, b)}")
    for i, (a, b) in enumerate(intervals):
        ax.axvspan(a, b, color=color, alpha=alpha, linewidth=0, label=label if i == 0 else None)


def against_reference(ax, x, predictive, reference, label: str, color: str = "C0", level: float = 0.95,
                      reference_label: str = "HMC") -> None:
    """One method's predictive (mean and central ``level`` band, filled) with a reference predictive's
    band drawn as dashed lines on top, e.g. HMC in every panel of lesson 07. ``x``: ``[M]``;
    ``predictive``, ``reference``: :class:`~bdl_course.predictive.Predictive` at those M inputs."""
    predictive_band(ax, x, predictive, label=label, color=color, level=level)
    lo, hi = (_np(t) for t in reference.interval(level))
    ax.plot(_np(x), lo, "k--", linewidth=1, label=f"{reference_label} {level:.0%} band")
    ax.plot(_np(x), hi, "k--", linewidth=1)


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


def sample_curves(ax, x, samples, color: str = "C0", label: str = "posterior samples", alpha: float = 0.3) -> None:
    """Thin lines, one per function sample. ``x``: ``[M]``, ``samples``: ``[S, M]``; one legend entry."""
    x, samples = _np(x), _np(samples)
    if samples.ndim != 2 or samples.shape[1] != x.shape[0]:
        raise ValueError(f"samples must have shape [S, {x.shape[0]}] to match x, got {samples.shape}")
    for i, curve in enumerate(samples):
        ax.plot(x, curve, color=color, alpha=alpha, linewidth=0.8, label=label if i == 0 else None)


def reliability_diagram(ax, probs, labels, n_bins: int = 15, label: str | None = None, color: str = "C0") -> None:
    """Accuracy against confidence in equal-width bins (Guo et al., 2017), with the diagonal.

    ``probs``: ``[N, C]`` predictive probabilities (or a categorical Predictive); ``labels``: ``[N]``. Each bar is one bin's
    accuracy; a calibrated model's bars touch the dashed diagonal; bars below it mean over-,
    above it under-confidence. Bin counts are written over the bars; empty bins draw nothing.
    """
    from .metrics import calibration_bins
    from .predictive import Predictive

    probs = probs.probs() if isinstance(probs, Predictive) else torch.as_tensor(probs)
    bins = calibration_bins(probs, torch.as_tensor(labels), n_bins)
    edges, acc, conf, count = (_np(bins[k]) for k in ("edges", "accuracy", "confidence", "count"))
    used = count > 0
    width = edges[1] - edges[0]
    ax.bar(edges[:-1][used], acc[used], width=width, align="edge", color=color, alpha=0.7,
           edgecolor="black", linewidth=0.5, label=label)
    ax.scatter(conf[used], acc[used], color="black", s=8, zorder=3)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    for left, a, c in zip(edges[:-1][used], acc[used], count[used]):
        ax.text(left + width / 2, a + 0.015, f"{int(c)}", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")


def image_grid(axes, images, titles=None, cmap: str = "gray_r") -> None:
    """Show ``images`` ``[K, C, H, W]`` (C = 1 grey or 3 colour, values in [0, 1]) on ``K`` axes.

    ``axes``: a sequence (or array) of at least K matplotlib Axes; ``titles``: K strings or None.
    """
    images = _np(images)
    axes = np.asarray(axes).ravel()
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape [K, 1 or 3, H, W], got {images.shape}")
    if len(axes) < len(images):
        raise ValueError(f"need at least {len(images)} axes for {len(images)} images, got {len(axes)}")
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(images):
            ax.axis("off")
            continue
        img = images[i]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap=cmap, vmin=0, vmax=1)
        else:
            ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
