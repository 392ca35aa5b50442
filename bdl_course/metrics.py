"""Metrics on predictions and targets."""
from __future__ import annotations

import math

import torch

from .utils import check_int, check_positive, check_tensor


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error; ``pred`` and ``target`` have the same shape."""
    check_tensor("pred", pred)
    check_tensor("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return torch.sqrt(torch.mean((pred - target) ** 2)).item()


def gaussian_nll(y: torch.Tensor, mu: torch.Tensor, sigma, reduction: str = "mean") -> torch.Tensor:
    """Negative log-density of ``y`` under ``N(mu, sigma^2)``, constants included.

    ``y``, ``mu`` and ``sigma`` broadcast; ``sigma`` (a std, not a variance) must be > 0.
    ``reduction``: ``"mean"`` (a scalar) or ``"none"`` (the broadcast shape).
    """
    check_positive("sigma", sigma)
    sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
    nll = 0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / (2 * sigma ** 2)
    if reduction == "mean":
        return nll.mean()
    if reduction == "none":
        return nll
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def interval_coverage(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, level: float = 0.95) -> float:
    """Fraction of ``y`` inside the central ``level`` interval of ``N(mean, std^2)``.

    The interval is two-sided, ``|y - mean| <= z * std`` with ``z = Phi^-1((1 + level) / 2)``
    (1.96 for 95%). ``y``, ``mean``, ``std``: ``[N]`` (``std`` a standard deviation, > 0).
    A calibrated model covers about ``level`` of held-out targets.
    """
    from statistics import NormalDist

    check_tensor("y", y)
    check_tensor("mean", mean)
    check_tensor("std", std)
    if y.shape != mean.shape or std.shape != mean.shape or y.numel() == 0:
        raise ValueError(f"y, mean and std must be non-empty with one shape, got {tuple(y.shape)}, "
                         f"{tuple(mean.shape)} and {tuple(std.shape)}")
    check_positive("std", std)
    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"level must be a float in (0, 1), e.g. 0.95, got {level!r}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return ((y - mean).abs() <= z * std).double().mean().item()


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest score is the true class.

    ``scores``: ``[N, C]`` logits, probabilities or log-probabilities (any monotone score per
    class); ``labels``: ``[N]`` integer classes in ``[0, C)``. Returns a float in [0, 1].
    """
    check_tensor("scores", scores, ndim=2)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D integer tensor, got {labels!r:.80}")
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(f"scores [N, C] and labels [N] must have the same N, "
                         f"got {tuple(scores.shape)} and {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("scores and labels are empty; accuracy needs at least one example")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}) for {scores.shape[1]} classes, "
                         f"got values from {labels.min().item()} to {labels.max().item()}")
    return (scores.argmax(dim=1) == labels).float().mean().item()


# ---------------------------------------------------------------- classification: calibration, uncertainty, OOD

def _check_probs(name: str, probs: torch.Tensor, ndim: int) -> torch.Tensor:
    check_tensor(name, probs, ndim=ndim)
    if probs.shape[-1] < 2 or probs.numel() == 0:
        raise ValueError(f"{name} needs at least one example and two classes (last dimension), got shape {tuple(probs.shape)}")
    tol = 1e-3 if probs.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-6
    if (probs < 0).any() or not torch.allclose(probs.sum(-1), torch.ones((), dtype=probs.dtype, device=probs.device), atol=tol):
        raise ValueError(f"{name} must hold probabilities: non-negative and summing to 1 over the last "
                         f"dimension (pass probs, not logits or log-probabilities)")
    return probs


def _check_labels(labels: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D integer tensor of classes, got {labels!r:.80}")
    if labels.shape[0] != n:
        raise ValueError(f"labels must have one entry per example ({n}), got shape {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {labels.min().item()} to {labels.max().item()}")
    return labels


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last dimension, with ``0 log 0 = 0``.

    ``probs``: ``[..., C]`` probabilities. Returns ``[...]`` (the last dimension removed).
    """
    _check_probs("probs", probs, ndim=tuple(range(1, 9)))
    return torch.special.entr(probs).sum(-1)


def uncertainty_decomposition(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the predictive entropy into its aleatoric and epistemic parts (Depeweg et al., 2018).

    ``probs``: ``[S, N, C]`` class probabilities under S weight samples. Returns three ``[N]``
    tensors, in nats:

    - total: the entropy of the predictive ``H[(1/S) sum_s p_s]``;
    - expected: the expected entropy ``(1/S) sum_s H[p_s]`` (aleatoric);
    - mutual_information: ``total - expected`` (epistemic; >= 0, rounding clipped at 0).
    """
    _check_probs("probs", probs, ndim=3)
    total = torch.special.entr(probs.mean(0)).sum(-1)
    expected = torch.special.entr(probs).sum(-1).mean(0)
    return total, expected, (total - expected).clamp_min(0)


def categorical_nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true classes (nats per example).

    ``log_probs``: ``[N, C]`` predictive log-probabilities (for a Bayesian model, the
    ``logmeanexp`` of the samples' log-probabilities); ``labels``: ``[N]`` integer classes.
    A true class given probability 0 (``-inf``) makes the NLL ``inf``, as it should.
    """
    if not isinstance(log_probs, torch.Tensor) or not log_probs.is_floating_point() or log_probs.dim() != 2:
        raise ValueError(f"log_probs must be a floating tensor of shape [N, C], got {getattr(log_probs, 'shape', log_probs)!r}")
    if torch.isnan(log_probs).any() or (log_probs > 1e-4).any():
        raise ValueError("log_probs must be log-probabilities (<= 0, no NaN); pass log_softmax outputs, not logits")
    _check_labels(labels, log_probs.shape[0], log_probs.shape[1])
    return -log_probs.gather(1, labels[:, None]).mean().item()


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over examples of ``sum_c (p_c - 1[y = c])^2`` (0 is perfect, 2 the worst).

    ``probs``: ``[N, C]`` predictive probabilities; ``labels``: ``[N]`` integer classes.
    """
    _check_probs("probs", probs, ndim=2)
    _check_labels(labels, probs.shape[0], probs.shape[1])
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(1).mean().item()


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Confidence and accuracy in equal-width confidence bins (Guo et al., 2017).

    The confidence of a prediction is its top probability. Bin ``b`` holds the confidences in
    ``(b / n_bins, (b + 1) / n_bins]`` (the first bin also holds 0). ``probs``: ``[N, C]``,
    ``labels``: ``[N]``. Returns ``edges`` ``[n_bins + 1]`` and, per bin, ``count`` ``[n_bins]``,
    ``confidence`` and ``accuracy`` ``[n_bins]`` (means over the bin; NaN for an empty bin).
    """
    _check_probs("probs", probs, ndim=2)
    _check_labels(labels, probs.shape[0], probs.shape[1])
    check_int("n_bins", n_bins)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).to(probs.dtype)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype, device=probs.device)
    index = torch.bucketize(confidence, edges[1:-1])  # right-closed bins
    count = torch.bincount(index, minlength=n_bins).to(probs.dtype)
    conf_sum = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device).index_add_(0, index, confidence)
    acc_sum = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device).index_add_(0, index, correct)
    return {"edges": edges, "count": count, "confidence": conf_sum / count, "accuracy": acc_sum / count}


def ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |accuracy_b - confidence_b|`` over equal-width bins.

    ``probs``: ``[N, C]`` predictive probabilities; ``labels``: ``[N]``. Empty bins count 0.
    See :func:`calibration_bins` for the binning (Guo et al., 2017).
    """
    bins = calibration_bins(probs, labels, n_bins)
    used = bins["count"] > 0
    gap = (bins["accuracy"][used] - bins["confidence"][used]).abs()
    return (bins["count"][used] / probs.shape[0] * gap).sum().item()


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for telling positives (``labels`` 1) from negatives (0).

    Computed from ranks (the Mann-Whitney U statistic, ties counted as 1/2): the probability
    that a random positive scores higher than a random negative. 0.5 is chance, 1 perfect.
    ``scores``: ``[N]`` (e.g. an uncertainty, positives = out-of-distribution inputs);
    ``labels``: ``[N]`` bool or 0/1, with both classes present.
    """
    check_tensor("scores", scores, ndim=1)
    if not isinstance(labels, torch.Tensor) or labels.shape != scores.shape:
        raise ValueError(f"labels must be a tensor of the shape of scores {tuple(scores.shape)}, got {labels!r:.80}")
    if labels.dtype.is_floating_point:
        raise ValueError("labels must be bool or integer 0/1, not floating point")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels must be 0 (negative) or 1 (positive)")
    positive = labels.bool()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels must contain both classes, got {n_pos} positives and {n_neg} negatives")
    _, inverse, counts = torch.unique(scores.double(), sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    ranks = (last - (counts.double() - 1) / 2)[inverse]  # 1-based ranks, ties get their average
    return ((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def rejection_accuracy(probs: torch.Tensor, labels: torch.Tensor, uncertainty: torch.Tensor,
                       fractions) -> torch.Tensor:
    """Accuracy on the inputs a model keeps when it says "I don't know" to the most uncertain ones.

    For each rejected fraction ``f`` in ``fractions`` (in [0, 1)), the ``floor(f N)`` inputs with the
    highest ``uncertainty`` are set aside and the accuracy of the others is returned.
    ``probs``: ``[N, C]``; ``labels``: ``[N]``; ``uncertainty``: ``[N]``; returns ``[F]``.
    """
    _check_probs("probs", probs, ndim=2)
    n = probs.shape[0]
    _check_labels(labels, n, probs.shape[1])
    check_tensor("uncertainty", uncertainty, ndim=1)
    if uncertainty.shape[0] != n:
        raise ValueError(f"uncertainty must have one entry per example ({n}), got shape {tuple(uncertainty.shape)}")
    fractions = torch.as_tensor(fractions, dtype=torch.float64).reshape(-1)
    if fractions.numel() == 0 or (fractions < 0).any() or (fractions >= 1).any():
        raise ValueError(f"fractions must be rejected fractions in [0, 1), got {fractions.tolist()}")
    correct = (probs.argmax(1) == labels).double()[torch.argsort(uncertainty, stable=True)]
    kept_correct = torch.cat([torch.zeros(1, dtype=torch.float64, device=correct.device), correct.cumsum(0)])
    kept = (n - torch.floor(fractions * n + 1e-9)).long()
    return kept_correct[kept.to(correct.device)].cpu() / kept
