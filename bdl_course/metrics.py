"""Metrics on predictions and targets.

Convention (torch's, as ``F.gaussian_nll_loss(input, target, var, ...)``): the prediction comes
first, the target second, then options; ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``
where a metric has one. A wrong type raises ``TypeError``, a wrong shape or value (NaN
included) ``ValueError``, naming the argument. Where a prediction can be a whole predictive
distribution, a :class:`~bdl_course.predictive.Predictive` is accepted in its place: its mean for
``rmse``, its exact interval for ``interval_coverage``, its probabilities (log-probabilities for
``categorical_nll``) for the classification metrics.
"""
from __future__ import annotations

import math

import torch

from .predictive import Predictive, _reduce
from .utils import check_int, check_positive, check_tensor

__all__ = ["rmse", "gaussian_nll", "interval_coverage", "mean_and_se", "uci_scores", "accuracy", "entropy",
           "categorical_nll", "brier_score", "calibration_bins", "ece", "auroc",
           "rejection_accuracy", "fit_temperature", "split_conformal", "oob_gaussian_nll"]


def rmse(input, target: torch.Tensor) -> float:
    """Root mean squared error of ``input`` (a tensor, or a Predictive: its mean) against ``target`` (same shape)."""
    if isinstance(input, Predictive):
        input = input.mean()
    check_tensor("input", input)
    check_tensor("target", target)
    if input.shape != target.shape:
        raise ValueError(f"input and target must have the same shape, got {tuple(input.shape)} and {tuple(target.shape)}")
    return torch.sqrt(torch.mean((input - target) ** 2)).item()


def gaussian_nll(input: torch.Tensor, target: torch.Tensor, std, reduction: str = "mean") -> torch.Tensor:
    """Negative log-density of ``target`` under ``N(input, std^2)``, constants included.

    ``input`` (the predicted mean), ``target`` and ``std`` broadcast; ``std`` (a standard
    deviation, not a variance, unlike ``F.gaussian_nll_loss``) must be > 0. ``reduction``:
    ``"mean"`` (a scalar), ``"sum"`` or ``"none"`` (the broadcast shape). NaN or infinite inputs
    or targets raise ``ValueError``.
    """
    check_tensor("input", input)
    check_tensor("target", target)
    check_positive("std", std)
    try:
        torch.broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        raise ValueError(f"input and target must broadcast, got shapes {tuple(input.shape)} and "
                         f"{tuple(target.shape)}") from None
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    std = torch.as_tensor(std, dtype=input.dtype, device=input.device)
    nll = 0.5 * math.log(2 * math.pi) + torch.log(std) + (target - input) ** 2 / (2 * std ** 2)
    return _reduce(nll, reduction)


def interval_coverage(input, target: torch.Tensor, std: torch.Tensor | None = None, level: float = 0.95) -> float:
    """Fraction of ``target`` inside the central ``level`` interval of the prediction.

    ``input``: a :class:`~bdl_course.predictive.Predictive` (its exact central interval, with
    ``std`` left out), or the predicted mean with ``std`` (a standard deviation, > 0): then the
    interval is ``|target - input| <= z * std`` with ``z = Phi^-1((1 + level) / 2)`` (1.96 for
    95%). ``input``, ``target``, ``std``: ``[N]`` (one shape). A calibrated model covers about
    ``level`` of held-out targets.
    """
    from statistics import NormalDist

    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"level must be a float in (0, 1), e.g. 0.95, got {level!r}")
    check_tensor("target", target)
    if isinstance(input, Predictive):
        if std is not None:
            raise ValueError("std must be left out when input is a Predictive (it has its own spread)")
        if input.shape != tuple(target.shape) or target.numel() == 0:
            raise ValueError(f"target must be non-empty with the predictive's shape {input.shape}, "
                             f"got {tuple(target.shape)}")
        lo, hi = input.interval(level)
        return ((target >= lo) & (target <= hi)).double().mean().item()
    check_tensor("input", input)
    if std is None:
        raise TypeError("std is required when input is a tensor of means (or pass a Predictive as input)")
    check_tensor("std", std)
    if target.shape != input.shape or std.shape != input.shape or target.numel() == 0:
        raise ValueError(f"input, target and std must be non-empty with one shape, got {tuple(input.shape)}, "
                         f"{tuple(target.shape)} and {tuple(std.shape)}")
    check_positive("std", std)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return ((target - input).abs() <= z * std).double().mean().item()


def mean_and_se(values) -> tuple[float, float]:
    """The mean of ``values`` (e.g. one score per data split) and its standard error ``std / sqrt(K)``
    (``std`` with K - 1 in the denominator); K >= 2 values, finite."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if values.numel() < 2:
        raise ValueError(f"values must hold at least 2 numbers for a standard error, got {values.numel()}")
    check_tensor("values", values)
    return values.mean().item(), (values.std() / math.sqrt(values.numel())).item()


def uci_scores(input: Predictive, target: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor,
               one_gaussian: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-split scores of a predictive in standardised units, in the target's original units.

    ``input``: a Gaussian :class:`~bdl_course.predictive.Predictive` of per-input shape
    ``[..., K, N]`` (K splits of N test rows, e.g. from ``GaussianEnsemble.predictive(x_test)`` with
    ``x_test`` ``[K, N, D]``), in standardised units; ``target``: ``[K, N]`` in original units;
    ``y_mean``, ``y_std``: ``[K]`` each split's training statistics (:func:`bdl_course.data.uci_splits`).
    Every component std is multiplied by ``y_std``, so the NLL includes the ``log y_std`` of the change of units.

    Returns ``(rmse, nll)``, each ``[..., K]``: the RMSE of the mixture mean and the mean negative
    log-density of the mixture (``one_gaussian=True``: of the single Gaussian with the mixture's
    mean and variance, as Lakshminarayanan et al. (2017) score it).
    """
    if not isinstance(input, Predictive) or input.kind != "gaussian":
        raise TypeError(f"input must be a Gaussian Predictive, got {input!r:.80}")
    check_tensor("target", target, ndim=2)
    check_tensor("y_mean", y_mean, ndim=1)
    check_tensor("y_std", y_std, ndim=1)
    if input.shape[-2:] != tuple(target.shape) or y_mean.shape[0] != target.shape[0] or y_std.shape != y_mean.shape:
        raise ValueError(f"input of shape {input.shape} must end in target's [K, N] = {tuple(target.shape)}, "
                         f"with y_mean, y_std [K]; got {tuple(y_mean.shape)} and {tuple(y_std.shape)}")
    scaled = Predictive.gaussian(y_mean[:, None] + y_std[:, None] * input.loc, y_std[:, None] * input.scale)
    mean, var = scaled.mean(), scaled.var()
    full = target.expand_as(mean)
    rmse_k = ((mean - full) ** 2).mean(-1).sqrt()
    if one_gaussian:
        return rmse_k, gaussian_nll(mean, full, var.sqrt(), reduction="none").mean(-1)
    return rmse_k, scaled.nll(full, reduction="none").mean(-1)


def accuracy(input: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose highest score is the true class.

    ``input``: ``[N, C]`` logits, probabilities or log-probabilities (any monotone score per
    class), or a categorical Predictive (its probabilities); ``target``: ``[N]`` integer classes
    in ``[0, C)``. Returns a float in [0, 1].
    """
    if isinstance(input, Predictive):
        input = input.probs()
    scores, labels = input, target
    check_tensor("input", scores, ndim=2)
    if scores.shape[0] == 0:
        raise ValueError("input and target are empty; accuracy needs at least one example")
    _check_labels(labels, scores.shape[0], scores.shape[1], name="target")
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


def _as_probs(probs):
    """A categorical Predictive stands for its predictive probabilities (the mean of its components')."""
    return probs.probs() if isinstance(probs, Predictive) else probs


def _check_labels(labels: torch.Tensor, n: int, n_classes: int, name: str = "labels") -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be a 1-D integer tensor of classes, got {labels!r:.80}")
    if labels.dim() != 1:
        raise ValueError(f"{name} must be a 1-D integer tensor of classes, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must have one entry per example of the input [N, C] (N = {n}), "
                         f"got shape {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{name} must lie in [0, {n_classes}) for {n_classes} classes, "
                         f"got values from {labels.min().item()} to {labels.max().item()}")
    return labels


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last dimension, with ``0 log 0 = 0``.

    ``probs``: ``[..., C]`` probabilities. Returns ``[...]`` (the last dimension removed).
    """
    probs = _as_probs(probs)
    _check_probs("probs", probs, ndim=tuple(range(1, 9)))
    return torch.special.entr(probs).sum(-1)


def categorical_nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true classes (nats per example).

    ``log_probs``: ``[N, C]`` predictive log-probabilities (for a Bayesian model, the
    ``logmeanexp`` of the samples' log-probabilities); ``labels``: ``[N]`` integer classes.
    A true class given probability 0 (``-inf``) makes the NLL ``inf``, as it should.
    """
    if isinstance(log_probs, Predictive):
        log_probs = log_probs.log_probs()
    check_tensor("log_probs", log_probs, ndim=2, finite=False)
    if torch.isnan(log_probs).any() or (log_probs > 1e-4).any():
        raise ValueError("log_probs must be log-probabilities (<= 0, no NaN); pass log_softmax outputs, not logits")
    _check_labels(labels, log_probs.shape[0], log_probs.shape[1])
    return -log_probs.gather(1, labels[:, None]).mean().item()


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over examples of ``sum_c (p_c - 1[y = c])^2`` (0 is perfect, 2 the worst).

    ``probs``: ``[N, C]`` predictive probabilities; ``labels``: ``[N]`` integer classes.
    """
    probs = _as_probs(probs)
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
    probs = _as_probs(probs)
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
    probs = _as_probs(probs)
    bins = calibration_bins(probs, labels, n_bins)
    used = bins["count"] > 0
    gap = (bins["accuracy"][used] - bins["confidence"][used]).abs()
    return (bins["count"][used] / probs.shape[0] * gap).sum().item()


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for telling positives (``labels`` 1) from negatives (0).

    The probability that a random positive scores higher than a random negative (ties count
    1/2): 0.5 is chance, 1 perfect. ``scores``: ``[N]`` (e.g. an uncertainty, positives =
    out-of-distribution inputs); ``labels``: ``[N]`` bool or 0/1, with both classes present.
    Computed by ``sklearn.metrics.roc_auc_score`` (the course does not teach the ROC curve).
    """
    from sklearn.metrics import roc_auc_score

    check_tensor("scores", scores, ndim=1)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point:
        raise TypeError(f"labels must be a bool or integer 0/1 tensor, got {labels!r:.80}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels must have the shape of scores {tuple(scores.shape)}, got {tuple(labels.shape)}")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels must be 0 (negative) or 1 (positive)")
    positive = labels.bool()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels must contain both classes, got {n_pos} positives and {n_neg} negatives")
    return float(roc_auc_score(positive.cpu().numpy(), scores.detach().double().cpu().numpy()))


def rejection_accuracy(probs: torch.Tensor, labels: torch.Tensor, uncertainty: torch.Tensor,
                       fractions) -> torch.Tensor:
    """Accuracy on the inputs a model keeps when it says "I don't know" to the most uncertain ones.

    For each rejected fraction ``f`` in ``fractions`` (in [0, 1)), the ``floor(f N)`` inputs with the
    highest ``uncertainty`` are set aside and the accuracy of the others is returned.
    ``probs``: ``[N, C]``; ``labels``: ``[N]``; ``uncertainty``: ``[N]``; returns ``[F]``.
    """
    probs = _as_probs(probs)
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



# ---------------------------------------------------------------- recalibration and distribution-free intervals

def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the ``T > 0`` minimising the mean NLL of ``softmax(logits / T)``.

    ``logits``: ``[N, C]`` (log-probabilities give the same optimum); ``labels``: ``[N]`` integer
    classes, e.g. of a validation split. Computed in float64: a grid over ``log T`` in [-4, 4]
    (T from 0.018 to 55), then a golden-section search in the best grid cell to ``|log T - log T*| < 1e-4``.
    """
    import torch.nn.functional as F

    check_tensor("logits", logits, ndim=2)
    if logits.shape[1] < 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must have shape [N, C] with N >= 1 and C >= 2, got {tuple(logits.shape)}")
    _check_labels(labels, logits.shape[0], logits.shape[1])
    z, y = logits.detach().double(), labels.long().to(logits.device)

    def nll(log_t: float) -> float:
        return F.cross_entropy(z / math.exp(log_t), y).item()

    grid = [-4 + 0.05 * i for i in range(161)]
    best = min(range(len(grid)), key=lambda i: nll(grid[i]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    while hi - lo > 1e-4:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def split_conformal(input_cal: torch.Tensor, target_cal: torch.Tensor, input_test: torch.Tensor,
                    target_test: torch.Tensor, level: float = 0.95) -> tuple[float, float]:
    """Split-conformal regression interval (Vovk et al., 2005; Angelopoulos & Bates, 2021).

    Scores ``s_i = |target_cal - input_cal|`` on n calibration points (``input``: predicted means);
    ``q`` is the ``k``-th smallest score with ``k = ceil((n + 1) * level)`` (``inf`` if ``k > n``), so
    ``input ± q`` covers a new point with probability >= ``level`` (marginally, over calibration and
    test draws). Returns ``(q, coverage)``: coverage is the fraction of test points with
    ``|target_test - input_test| <= q``. ``level`` is read as the decimal it is written as
    (0.95 is 19/20), so ``k`` is exact.
    """
    from fractions import Fraction

    for name, t in (("input_cal", input_cal), ("target_cal", target_cal), ("input_test", input_test),
                    ("target_test", target_test)):
        check_tensor(name, t, ndim=1)
    if input_cal.shape != target_cal.shape or input_cal.numel() == 0:
        raise ValueError(f"input_cal and target_cal must be non-empty with one shape, got "
                         f"{tuple(input_cal.shape)} and {tuple(target_cal.shape)}")
    if input_test.shape != target_test.shape or input_test.numel() == 0:
        raise ValueError(f"input_test and target_test must be non-empty with one shape, got "
                         f"{tuple(input_test.shape)} and {tuple(target_test.shape)}")
    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"level must be a float in (0, 1), e.g. 0.95, got {level!r}")
    scores = (target_cal - input_cal).abs().sort().values
    n = scores.numel()
    k = math.ceil((n + 1) * Fraction(repr(level)))
    q = math.inf if k > n else scores[k - 1].item()
    coverage = ((target_test - input_test).abs() <= q).double().mean().item()
    return q, coverage


def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test) -> float:
    """Held-out Gaussian NLL of a random forest whose spread is estimated from training rows only.

    ``forest``: a fitted ``sklearn.ensemble.RandomForestRegressor`` with ``oob_score=True``. The
    noise variance is ``s2 = mean((y_train - forest.oob_prediction_)^2)``: each training row's
    residual under the trees that did not see it. Returns the mean over test rows of
    ``0.5 log(2 pi s2) + (y_test - forest.predict(x_test))^2 / (2 s2)``. Arrays: NumPy or tensors;
    ``x_train`` is checked (one row per target) for a uniform signature, not used.
    """
    import numpy as np

    if not hasattr(forest, "oob_prediction_"):
        raise ValueError("forest must be a fitted RandomForestRegressor with oob_score=True "
                         "(it has no oob_prediction_)")
    as_np = (lambda a: a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a))
    x_train, y_train, x_test, y_test = map(as_np, (x_train, y_train, x_test, y_test))
    if len(x_train) != len(y_train) or len(forest.oob_prediction_) != len(y_train):
        raise ValueError(f"x_train ({len(x_train)} rows), y_train ({len(y_train)}) and the forest's "
                         f"out-of-bag predictions ({len(forest.oob_prediction_)}) must have one row per target")
    if len(x_test) != len(y_test) or len(y_test) == 0:
        raise ValueError(f"x_test and y_test must be non-empty with one row per target, got {len(x_test)} and {len(y_test)}")
    s2 = float(np.mean((y_train - forest.oob_prediction_) ** 2))
    residual = y_test - forest.predict(x_test)
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + residual ** 2 / (2 * s2)))

