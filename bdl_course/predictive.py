"""The predictive distribution of a model at N inputs, as S equally weighted components.

Every inference method in the course (a point estimate, Bayes by Backprop, MC dropout, a deep
ensemble, Laplace, HMC) ends in the same object: ``S`` components, component axis first, as in
laplace-torch's ``predictive_samples(x, n) -> (n, batch, out)``. For regression a component is a
Gaussian ``N(loc_s, scale_s^2)`` per input; for classification it is a vector of class
log-probabilities. The predictive is their uniform mixture,

    p(y | x) = (1/S) sum_s p_s(y | x),

and everything a lesson reads off it is written once here: the mixture's mean and variance (law
of total variance), its exact log-density (a logsumexp over components), central intervals,
samples of y, and for classes the entropy split into its aleatoric and epistemic parts.

The functional forms (:func:`logmeanexp`, :func:`variance_decomposition`,
:func:`uncertainty_decomposition`, :func:`gaussian_mixture_log_prob`) are what the methods call, so the
three uncertainty decompositions of the course sit side by side in this module.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

import torch

from .utils import check_positive, check_tensor

__all__ = ["Predictive", "logmeanexp", "variance_decomposition", "uncertainty_decomposition",
           "gaussian_mixture_log_prob"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---------------------------------------------------------------- functional forms

def logmeanexp(t: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log(mean(exp(t), dim))`` computed stably with logsumexp; ``dim`` is removed.

    ``t`` may hold ``-inf`` (a log-probability of 0) but not NaN or ``+inf``.
    """
    check_tensor("t", t, finite=False)
    if t.dim() == 0:
        raise ValueError("t must have at least one dimension to average over, got a scalar")
    if torch.isnan(t).any() or (t == math.inf).any():
        raise ValueError("t contains NaN or +inf; logmeanexp needs log-values (finite, or -inf for 0)")
    return torch.logsumexp(t, dim=dim) - math.log(t.shape[dim])


def _check_components(loc: torch.Tensor, scale: torch.Tensor) -> None:
    check_tensor("loc", loc)
    check_tensor("scale", scale)
    if loc.dim() == 0 or loc.shape != scale.shape:
        raise ValueError(f"loc and scale must have the same shape [S, ...], "
                         f"got {tuple(loc.shape)} and {tuple(scale.shape)}")
    check_positive("scale", scale)


def variance_decomposition(loc: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the variance of S Gaussian predictions by the law of total variance (regression).

    ``loc``, ``scale``: ``[S, ...]``, the mean and std (not variance) predicted under S weight
    samples (Kendall & Gal, 2017). Returns two *variances*, each ``[...]``:

    - aleatoric ``= mean_s scale_s^2``: the noise the model expects in the data;
    - epistemic ``= mean_s (loc_s - mean_s loc_s)^2``: how much the samples disagree (divided by S).

    Their sum is the variance of the uniform mixture ``(1/S) sum_s N(loc_s, scale_s^2)``.
    """
    _check_components(loc, scale)
    aleatoric = (scale ** 2).mean(dim=0)
    epistemic = ((loc - loc.mean(dim=0)) ** 2).mean(dim=0)
    return aleatoric, epistemic


def uncertainty_decomposition(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the predictive entropy into aleatoric and epistemic parts (Depeweg et al., 2018; classes).

    The classification twin of :func:`variance_decomposition`: entropies in place of variances.

    ``probs``: ``[S, ..., C]`` class probabilities under S weight samples. Returns three ``[...]``
    tensors, in nats:

    - total: the entropy of the predictive ``H[(1/S) sum_s p_s]``;
    - expected: the expected entropy ``(1/S) sum_s H[p_s]`` (aleatoric);
    - mutual_information: ``total - expected`` (epistemic; >= 0, rounding clipped at 0).
    """
    from .metrics import _check_probs

    _check_probs("probs", probs, ndim=tuple(range(3, 10)))
    total = torch.special.entr(probs.mean(0)).sum(-1)
    expected = torch.special.entr(probs).sum(-1).mean(0)
    return total, expected, (total - expected).clamp_min(0)


def gaussian_mixture_log_prob(loc: torch.Tensor, scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Exact ``log (1/S) sum_s N(target; loc_s, scale_s^2)`` by logsumexp (finite far from every component).

    ``loc``, ``scale``: ``[S, ...]`` (scale a std); ``target``: ``[...]``. Returns ``[...]``.
    """
    _check_components(loc, scale)
    check_tensor("target", target)
    if target.shape != loc.shape[1:]:
        raise ValueError(f"target must have shape {tuple(loc.shape[1:])} (loc without its component axis), "
                         f"got {tuple(target.shape)}")
    log_p = -(_HALF_LOG_2PI + torch.log(scale) + 0.5 * ((target - loc) / scale) ** 2)
    return torch.logsumexp(log_p, dim=0) - math.log(loc.shape[0])


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---------------------------------------------------------------- the type

class Predictive:
    """A predictive distribution at N inputs: the uniform mixture of S components, axis 0 first.

    Build it with :meth:`gaussian` (regression) or :meth:`categorical` (classification); every
    method's producer (:func:`bdl_course.predict.predictive`) returns one. ``shape`` is the
    per-input shape (``(N,)``, or e.g. ``(K, N)`` for K splits); ``n_components`` is S.

    Examples::

        p = Predictive.gaussian(mu_samples, noise_std)   # mu_samples [S, N], noise a float
        p.mean(), p.var(), p.interval(0.95), p.nll(y_test)
        q = Predictive.categorical(log_probs)            # [S, N, C]
        q.probs(), q.entropy(), q.mutual_information(), q.nll(labels)
    """

    def __init__(self, kind: str, loc: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                 logits: torch.Tensor | None = None):
        # use the constructors below; this one does not check its inputs
        self.kind, self.loc, self.scale, self.logits = kind, loc, scale, logits

    # ------------------------------------------------ constructors
    @classmethod
    def gaussian(cls, loc: torch.Tensor, scale) -> "Predictive":
        """S Gaussian components ``N(loc_s, scale_s^2)`` per input.

        ``loc``: ``[S, N, ...]`` (S = 1 for a point estimate: ``mu[None]``); ``scale``: the std (not
        the variance), a positive number or a tensor broadcastable to ``loc`` (e.g. a learned noise
        std shared by every input, or ``[S, N, ...]`` per component).
        """
        check_tensor("loc", loc)
        if loc.dim() < 2:
            raise ValueError(f"loc must have shape [S, N, ...] (component axis first; a point estimate "
                             f"is loc[None]), got shape {tuple(loc.shape)}")
        if isinstance(scale, torch.Tensor):
            check_tensor("scale", scale)
            try:
                scale = torch.broadcast_to(scale.to(loc.dtype), loc.shape)
            except RuntimeError:
                raise ValueError(f"scale of shape {tuple(scale.shape)} does not broadcast to loc's "
                                 f"shape {tuple(loc.shape)}") from None
        elif isinstance(scale, (int, float)) and not isinstance(scale, bool):
            scale = torch.full_like(loc, float(scale))
        else:
            raise TypeError(f"scale must be a positive number or a tensor, got {type(scale).__name__}")
        check_positive("scale", scale)
        return cls("gaussian", loc=loc, scale=scale.to(loc.device))

    @classmethod
    def categorical(cls, log_probs: torch.Tensor) -> "Predictive":
        """S categorical components per input: ``log_probs`` ``[S, N, ..., C]`` normalised
        log-probabilities (``log_softmax`` of logits; ``-inf`` allowed for a probability of 0)."""
        check_tensor("log_probs", log_probs, finite=False)
        if log_probs.dim() < 3 or log_probs.shape[-1] < 2:
            raise ValueError(f"log_probs must have shape [S, N, C] with C >= 2 classes (component axis "
                             f"first; a point estimate is log_probs[None]), got shape {tuple(log_probs.shape)}")
        if torch.isnan(log_probs).any() or (log_probs > 1e-4).any():
            raise ValueError("log_probs must be log-probabilities (<= 0, no NaN); pass log_softmax(logits), "
                             "not logits or probabilities")
        tol = 1e-3 if log_probs.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-6
        if (torch.logsumexp(log_probs, -1).abs() > tol).any():
            raise ValueError("log_probs must be normalised over the last dimension (logsumexp = 0); "
                             "pass log_softmax(logits, dim=-1)")
        return cls("categorical", logits=log_probs)

    @staticmethod
    def cat(predictives: Sequence["Predictive"]) -> "Predictive":
        """One predictive holding the components of all of ``predictives`` (same kind and shape)."""
        predictives = list(predictives)
        if not predictives or not all(isinstance(p, Predictive) for p in predictives):
            raise TypeError("predictives must be a non-empty sequence of Predictive")
        first = predictives[0]
        for i, p in enumerate(predictives[1:], start=1):
            if p.kind != first.kind or p.shape != first.shape:
                raise ValueError(f"predictives[{i}] is {p.kind} with shape {p.shape}; "
                                 f"predictives[0] is {first.kind} with shape {first.shape}")
        if first.kind == "gaussian":
            return Predictive("gaussian", loc=torch.cat([p.loc for p in predictives]),
                              scale=torch.cat([p.scale for p in predictives]))
        return Predictive("categorical", logits=torch.cat([p.logits for p in predictives]))

    # ------------------------------------------------ description
    @property
    def n_components(self) -> int:
        """S, the number of equally weighted components."""
        return (self.loc if self.kind == "gaussian" else self.logits).shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The per-input shape: ``(N,)`` or e.g. ``(K, N)`` (for classes, without C)."""
        return tuple(self.loc.shape[1:]) if self.kind == "gaussian" else tuple(self.logits.shape[1:-1])

    @property
    def device(self) -> torch.device:
        return (self.loc if self.kind == "gaussian" else self.logits).device

    def to(self, device) -> "Predictive":
        """A copy with every tensor on ``device``."""
        move = (lambda t: None if t is None else t.to(device))
        return Predictive(self.kind, loc=move(self.loc), scale=move(self.scale), logits=move(self.logits))

    def __repr__(self) -> str:
        return f"Predictive({self.kind}, n_components={self.n_components}, shape={self.shape})"

    def _need(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise TypeError(f"{what} is defined for a {kind} predictive; this one is {self.kind}")

    # ------------------------------------------------ regression
    def mean(self) -> torch.Tensor:
        """The mixture mean ``[N, ...]`` (for classes: the mean probabilities, as :meth:`probs`)."""
        if self.kind == "categorical":
            return self.probs()
        return self.loc.mean(0)

    def var(self) -> torch.Tensor:
        """The mixture variance ``[N, ...]`` = aleatoric + epistemic (law of total variance)."""
        self._need("gaussian", "var()")
        aleatoric, epistemic = variance_decomposition(self.loc, self.scale)
        return aleatoric + epistemic

    def std(self) -> torch.Tensor:
        """The mixture standard deviation ``[N, ...]``."""
        return self.var().sqrt()

    def aleatoric(self) -> torch.Tensor:
        """The noise part: ``mean_s scale_s^2`` (a variance) for Gaussians; the expected entropy (nats) for classes."""
        if self.kind == "categorical":
            return self.expected_entropy()
        return variance_decomposition(self.loc, self.scale)[0]

    def epistemic(self) -> torch.Tensor:
        """The disagreement part: the variance of the means for Gaussians; the mutual information for classes."""
        if self.kind == "categorical":
            return self.mutual_information()
        return variance_decomposition(self.loc, self.scale)[1]

    def interval(self, level: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact central ``level`` interval of the mixture: ``(lo, hi)``, each ``[N, ...]``.

        ``lo`` and ``hi`` are the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the mixture's
        CDF ``(1/S) sum_s Phi((t - loc_s)/scale_s)``, found by bisection (one Gaussian: ``loc ± z scale``).
        """
        self._need("gaussian", "interval()")
        if not (isinstance(level, float) and 0 < level < 1):
            raise ValueError(f"level must be a float in (0, 1), e.g. 0.95, got {level!r}")
        z = NormalDist().inv_cdf(0.5 + level / 2)
        if self.n_components == 1:
            return self.loc[0] - z * self.scale[0], self.loc[0] + z * self.scale[0]
        loc, scale = self.loc.double(), self.scale.double()
        bounds = []
        for q in (0.5 - level / 2, 0.5 + level / 2):
            lo = (loc - z * scale).min(0).values  # the mixture quantile lies between the components'
            hi = (loc + z * scale).max(0).values
            for _ in range(60):  # 2^-60 of the bracket: far below float32 resolution
                mid = (lo + hi) / 2
                below = torch.special.ndtr((mid - loc) / scale).mean(0) < q
                lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
            bounds.append(((lo + hi) / 2).to(self.loc.dtype))
        return bounds[0], bounds[1]

    # ------------------------------------------------ classes
    def probs(self) -> torch.Tensor:
        """The predictive class probabilities ``[N, ..., C]`` (the mean of the components')."""
        self._need("categorical", "probs()")
        return self.logits.exp().mean(0)

    def log_probs(self) -> torch.Tensor:
        """The predictive class log-probabilities ``[N, ..., C]`` (logmeanexp of the components')."""
        self._need("categorical", "log_probs()")
        return logmeanexp(self.logits, dim=0)

    def entropy(self) -> torch.Tensor:
        """Total predictive entropy ``[N, ...]`` in nats."""
        self._need("categorical", "entropy()")
        return uncertainty_decomposition(self.logits.exp())[0]

    def expected_entropy(self) -> torch.Tensor:
        """Expected entropy of the components ``[N, ...]`` (aleatoric), in nats."""
        self._need("categorical", "expected_entropy()")
        return uncertainty_decomposition(self.logits.exp())[1]

    def mutual_information(self) -> torch.Tensor:
        """Mutual information between label and weights ``[N, ...]`` (epistemic), in nats."""
        self._need("categorical", "mutual_information()")
        return uncertainty_decomposition(self.logits.exp())[2]

    # ------------------------------------------------ both
    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """Exact log-density (Gaussian) or log-mass (classes) of ``y`` under the mixture, ``[N, ...]``.

        ``y``: ``[N, ...]`` targets (floats), or integer class labels for a categorical predictive.
        """
        if self.kind == "gaussian":
            if not isinstance(y, torch.Tensor):
                raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
            return gaussian_mixture_log_prob(self.loc, self.scale, y.to(self.loc.dtype))
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of class labels, got {getattr(y, 'dtype', type(y).__name__)}")
        n_classes = self.logits.shape[-1]
        if tuple(y.shape) != self.shape:
            raise ValueError(f"y must have shape {self.shape} (one label per input), got {tuple(y.shape)}")
        if y.numel() and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"y must hold labels in [0, {n_classes}), got values from {y.min().item()} to {y.max().item()}")
        picked = self.logits.gather(-1, y.to(self.logits.device).expand(self.n_components, *y.shape).unsqueeze(-1))
        return logmeanexp(picked.squeeze(-1), dim=0)

    def nll(self, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log predictive density of ``y``; ``reduction``: ``"mean"``, ``"sum"`` or ``"none"``."""
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        return _reduce(-self.log_prob(y), reduction)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of y from the mixture at every input: ``[n, N, ...]`` (classes: int64 labels).

        ``generator``: an optional ``torch.Generator`` (else torch's global one), on this predictive's device.
        """
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.kind == "categorical":
            probs = self.probs()
            flat = probs.reshape(-1, probs.shape[-1])
            draws = torch.multinomial(flat, n, replacement=True, generator=generator)  # [M, n]
            return draws.T.reshape(n, *self.shape)
        s = self.n_components
        which = torch.randint(s, (n, *self.shape), generator=generator, device=self.loc.device)
        loc = self.loc.gather(0, which)
        scale = self.scale.gather(0, which)
        eps = torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
        return loc + scale * eps
