"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, 2017), trained as one vectorised model.

J networks with Gaussian heads, each with its own random initialisation and its own minibatch
order, are stored as *stacked* weights ``[J, in, out]``: one ``torch.baddbmm`` runs a layer of
every member at once, so a training step costs about what one member's step costs, and there
is no Python loop over members anywhere. Members never share a parameter, and the training loss
is the *sum* of the members' mean losses, so member j's gradient (and its Adam update, which is
elementwise) is exactly the one it would get if it were trained alone.

The predictive distribution of the ensemble is the uniform mixture of its members' Gaussians,

    p(y | x) = (1/J) sum_j N(y; mu_j(x), sigma_j(x)^2),

summarised by its mean and variance (:func:`mixture_moments`) and scored by its exact negative
log-density (:func:`mixture_nll`, a logsumexp over members). The same mixture describes MC dropout
(Gal & Ghahramani, 2016) with one component per dropout mask: :func:`sample_dropout`.

Shapes: J members, N rows, D inputs. Member outputs are ``[J, N]``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import Standardizer, train_test_split
from .metrics import gaussian_nll
from .predict import variance_decomposition
from .utils import check_int, check_positive, check_tensor

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---------------------------------------------------------------- the vectorised network

class EnsembleLinear(nn.Module):
    """J independent linear layers in one: ``weight`` ``[J, in, out]``, ``bias`` ``[J, 1, out]``.

    Shapes: ``[J, N, in] -> [J, N, out]`` (member j reads ``x[j]``), or ``[N, in] -> [J, N, out]``
    (every member reads the same rows). Each member is initialised independently like
    ``nn.Linear`` (uniform in ``±1/sqrt(in)``).
    """

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        self.n_members = check_int("n_members", n_members)
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)

    def members(self, start: int, stop: int) -> "EnsembleLinear":
        """A new layer holding copies of members ``start .. stop - 1`` (draws no random numbers)."""
        part = EnsembleLinear.__new__(EnsembleLinear)
        nn.Module.__init__(part)
        part.n_members, part.in_features, part.out_features = stop - start, self.in_features, self.out_features
        part.weight = nn.Parameter(self.weight.detach()[start:stop].clone())
        part.bias = nn.Parameter(self.bias.detach()[start:stop].clone())
        return part

    def extra_repr(self) -> str:
        return f"n_members={self.n_members}, in_features={self.in_features}, out_features={self.out_features}"


class _Stack(nn.Module):
    """Some members' layers, all on one device."""

    def __init__(self, layers: list[EnsembleLinear], dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, dropout_on: bool) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = torch.relu(x)
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, training=dropout_on)
            x = layer(x)
        return x


class GaussianEnsemble(nn.Module):
    """J ReLU networks ``in -> hidden -> 2``, each with a Gaussian head, as one vectorised model.

    Member j predicts ``N(mu_j(x), sigma_j(x)^2)`` with ``sigma_j = softplus(raw_j) + min_std``
    (always positive, floored at ``min_std``).

    Args:
        n_members: J, the number of networks.
        in_features: D, the number of inputs.
        hidden: an int or a list of hidden widths.
        min_std: the floor of every predicted standard deviation (in the target's units).
        dropout: probability of dropping each hidden unit (0: none). With ``dropout > 0`` the
            members are MC-dropout networks; see :func:`sample_dropout`.
        devices: optional list of devices: the members are split into ``len(devices)`` groups of
            (nearly) equal size, one per device (e.g. several GPUs). The outputs are gathered on
            ``devices[0]``; don't move such a model with ``.to(...)``. Without it, the model
            lives wherever ``.to(...)`` puts it.

    ``forward(x)``: ``x`` is ``[N, D]`` (every member sees the same rows) or ``[J, N, D]`` (member j
    sees ``x[j]``); returns ``(mu, sigma)``, each ``[J, N]`` (sigma a std, not a variance).
    """

    def __init__(self, n_members: int, in_features: int, hidden, min_std: float = 1e-3,
                 dropout: float = 0.0, devices: Sequence[str | torch.device] | None = None):
        super().__init__()
        self.n_members = check_int("n_members", n_members)
        self.in_features = check_int("in_features", in_features)
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        for i, width in enumerate(hidden):
            check_int(f"hidden width #{i}", width)
        check_positive("min_std", min_std)
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.min_std, self.dropout = float(min_std), float(dropout)
        sizes = [in_features, *hidden, 2]
        # every member is initialised here, on the CPU, in one go: the same seed gives the same
        # members however they are later spread over devices
        full = [EnsembleLinear(n_members, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        if devices is None:
            self.devices = None
            self.groups = nn.ModuleList([_Stack(full, self.dropout)])
        else:
            self.devices = [torch.device(d) for d in devices]
            if not 1 <= len(self.devices) <= n_members:
                raise ValueError(f"devices must list between 1 and n_members={n_members} devices, got {list(devices)}")
            bounds = [round(i * n_members / len(self.devices)) for i in range(len(self.devices) + 1)]
            self.groups = nn.ModuleList([
                _Stack([layer.members(a, b) for layer in full], self.dropout).to(dev)
                for a, b, dev in zip(bounds[:-1], bounds[1:], self.devices)])
        self.sizes = sizes

    def _split(self) -> list[int]:
        return [group.layers[0].n_members for group in self.groups]

    def raw(self, x: torch.Tensor, dropout_on: bool | None = None) -> torch.Tensor:
        """The last layer's outputs ``[J, N, 2]`` (mean, unconstrained std) before the head."""
        check_tensor("x", x, ndim=(2, 3), last_dim=self.in_features)
        if x.dim() == 3 and x.shape[0] != self.n_members:
            raise ValueError(f"x of shape [J, N, D] must have J = n_members = {self.n_members}, "
                             f"got shape {tuple(x.shape)}")
        return self._raw(x, self.training if dropout_on is None else dropout_on)

    def _raw(self, x: torch.Tensor, dropout_on: bool) -> torch.Tensor:
        # no input checks: the training loop calls this on every step
        if self.devices is None:
            return self.groups[0](x, dropout_on)
        if len(self.groups) == 1:
            return self.groups[0](x.to(self.devices[0]), dropout_on)
        parts = x.split(self._split()) if x.dim() == 3 else [x] * len(self.groups)
        outs = [g(p.to(dev), dropout_on).to(self.devices[0])
                for g, p, dev in zip(self.groups, parts, self.devices)]
        return torch.cat(outs)

    def head(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[..., 2] -> (mu, sigma)``, each ``[...]``: ``sigma = softplus(raw[..., 1]) + min_std``."""
        return raw[..., 0], F.softplus(raw[..., 1]) + self.min_std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.raw(x))

    def member(self, j: int) -> nn.Sequential:
        """Member j as an ordinary ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` (a copy).

        Shapes: ``[N, D] -> [N, 2]`` (mean, unconstrained std); :meth:`head` turns it into
        ``(mu, sigma)``. Dropout is left out: the copy is the deterministic network.
        """
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < self.n_members:
            raise ValueError(f"j must be a member index in [0, {self.n_members}), got {j!r}")
        starts = [0]
        for size in self._split():
            starts.append(starts[-1] + size)
        g = max(i for i, s in enumerate(starts[:-1]) if s <= j)
        k = j - starts[g]
        modules: list[nn.Module] = []
        for layer in self.groups[g].layers:
            linear = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                linear.weight.copy_(layer.weight[k].T)
                linear.bias.copy_(layer.bias[k, 0])
            modules += [linear.to(layer.weight.device), nn.ReLU()]
        return nn.Sequential(*modules[:-1])

    def extra_repr(self) -> str:
        return (f"n_members={self.n_members}, sizes={self.sizes}, min_std={self.min_std}, "
                f"dropout={self.dropout}, devices={self.devices}")


# ---------------------------------------------------------------- training

def _nll(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return _HALF_LOG_2PI + torch.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2


def member_batches(n_members: int, n_rows: int, batch_size: int, device=None) -> list[torch.Tensor]:
    """One epoch of minibatch indexes, an independent random order for every member.

    Returns a list of ``[J, B]`` index tensors (the last one may be shorter): row ``j`` of each
    holds member j's batch. Uses torch's global generator (``seed_everything`` repeats it).
    """
    check_int("n_members", n_members)
    check_int("n_rows", n_rows)
    check_int("batch_size", batch_size)
    perm = torch.rand(n_members, n_rows, device=device).argsort(dim=1)  # [J, N]: one permutation per member
    return list(perm.split(batch_size, dim=1))


def fit_ensemble(model: GaussianEnsemble, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
                 lr: float = 1e-2, weight_decay: float = 0.0, progress: bool = True,
                 desc: str = "ensemble") -> torch.Tensor:
    """Train every member on the mean Gaussian NLL of its own minibatches, all in one step.

    ``x``: ``[N, D]`` and ``y``: ``[N]`` (every member trains on the same rows, each in its own
    random order), or ``x``: ``[J, N, D]`` and ``y``: ``[J, N]`` (member j trains on ``x[j]``,
    ``y[j]`` only: e.g. one data split per group of members). Adam on the sum over members of
    each member's mean NLL, so every member follows exactly its own training run.

    Returns the mean training NLL of every epoch and member, ``[epochs, J]``.
    """
    if not isinstance(model, GaussianEnsemble):
        raise TypeError(f"model must be a GaussianEnsemble, got {type(model).__name__}")
    check_tensor("x", x, ndim=(2, 3), last_dim=model.in_features)
    check_tensor("y", y, ndim=x.dim() - 1)
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    check_positive("lr", lr)
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    j = model.n_members
    if x.dim() == 3 and x.shape[0] != j:
        raise ValueError(f"x of shape [J, N, D] must have J = n_members = {j}, got shape {tuple(x.shape)}")
    if y.shape != x.shape[:-1]:
        raise ValueError(f"y must have shape {tuple(x.shape[:-1])} to match x of shape {tuple(x.shape)}, "
                         f"got {tuple(y.shape)}")
    n, d = x.shape[-2], x.shape[-1]
    out_device = model.devices[0] if model.devices else x.device
    if x.dim() == 3:  # member j's rows sit at j*N .. j*N + N - 1 of the flattened data
        x, y = x.reshape(j * n, d), y.reshape(j * n)
        offsets = torch.arange(j, device=x.device).unsqueeze(1) * n  # [J, 1]
    else:
        offsets = torch.zeros(j, 1, dtype=torch.long, device=x.device)
    y = y.to(out_device)
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") for p in params) and len({p.device for p in params}) == 1
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)
    model.train()
    history = torch.zeros(epochs, j)
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        total = torch.zeros(j, device=out_device)
        for idx in member_batches(j, n, batch_size, device=x.device):  # idx: [J, B]
            flat = (idx + offsets).view(-1)
            xb = x.index_select(0, flat).view(j, -1, d)  # [J, B, D]: member j's own minibatch
            yb = y.index_select(0, flat.to(out_device)).view(j, -1)  # [J, B]
            mu, sigma = model.head(model._raw(xb, dropout_on=True))
            per_member = _nll(yb, mu, sigma).mean(dim=1)  # [J]
            loss = per_member.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += per_member.detach() * idx.shape[1]
        history[epoch] = (total / n).cpu()
        if not torch.isfinite(history[epoch]).all():
            raise FloatingPointError(f"the training NLL became non-finite in epoch {epoch}; "
                                     f"lower lr (now {lr}) or raise min_std (now {model.min_std})")
        bar.set_postfix(nll=f"{history[epoch].mean():.4f}")
    model.eval()
    return history


@torch.no_grad()
def sample_dropout(model: GaussianEnsemble, x: torch.Tensor, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MC dropout: ``S = n_samples`` forward passes with dropout on, in one vectorised pass.

    ``x``: ``[N, D]`` or ``[J, N, D]`` as in :class:`GaussianEnsemble`. Returns ``(mu, sigma)``,
    each ``[S, J, N]``: one Gaussian per dropout mask, per member and row.
    """
    if not isinstance(model, GaussianEnsemble):
        raise TypeError(f"model must be a GaussianEnsemble, got {type(model).__name__}")
    if model.dropout == 0:
        raise ValueError("model has dropout=0: every sample would be the same network")
    check_int("n_samples", n_samples)
    check_tensor("x", x, ndim=(2, 3), last_dim=model.in_features)
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(model.n_members, *x.shape)
    j, n, d = x.shape
    tiled = x.unsqueeze(1).expand(j, n_samples, n, d).reshape(j, n_samples * n, d)  # [J, S*N, D]
    mu, sigma = model.head(model.raw(tiled, dropout_on=True))  # [J, S*N]
    return mu.view(j, n_samples, n).transpose(0, 1), sigma.view(j, n_samples, n).transpose(0, 1)


# ---------------------------------------------------------------- the predictive mixture

def _check_mixture(mu: torch.Tensor, sigma: torch.Tensor) -> None:
    check_tensor("mu", mu)
    check_tensor("sigma", sigma)
    if mu.dim() == 0:
        raise ValueError("mu must have a leading member dimension [J, ...], got a scalar")
    if mu.shape != sigma.shape:
        raise ValueError(f"mu and sigma must have the same shape [J, ...], got {tuple(mu.shape)} and {tuple(sigma.shape)}")
    check_positive("sigma", sigma)


def mixture_moments(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the uniform mixture ``(1/J) sum_j N(mu_j, sigma_j^2)``.

    ``mu``, ``sigma``: ``[J, ...]`` (member first; sigma a std). Returns ``(mean, variance)``,
    each ``[...]``, by the law of total variance:
    ``variance = mean_j sigma_j^2 + mean_j mu_j^2 - (mean_j mu_j)^2`` (a variance, not a std).
    """
    _check_mixture(mu, sigma)
    aleatoric, epistemic = variance_decomposition(mu, sigma)
    return mu.mean(dim=0), aleatoric + epistemic


def mixture_log_prob(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact ``log (1/J) sum_j N(y; mu_j, sigma_j^2)``, computed with logsumexp (finite far from every member).

    ``y``: ``[...]``; ``mu``, ``sigma``: ``[J, ...]``. Returns ``[...]``.
    """
    _check_mixture(mu, sigma)
    check_tensor("y", y)
    if y.shape != mu.shape[1:]:
        raise ValueError(f"y must have shape {tuple(mu.shape[1:])} (mu without its member dimension), "
                         f"got {tuple(y.shape)}")
    return torch.logsumexp(-_nll(y, mu, sigma), dim=0) - math.log(mu.shape[0])


def mixture_nll(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-density of ``y`` under the uniform mixture of ``N(mu_j, sigma_j^2)``.

    ``y``: ``[...]``; ``mu``, ``sigma``: ``[J, ...]``. ``reduction``: ``"mean"`` (a scalar) or
    ``"none"`` (``[...]``).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    nll = -mixture_log_prob(y, mu, sigma)
    return nll.mean() if reduction == "mean" else nll


# ---------------------------------------------------------------- the UCI protocol

def uci_scores(mu: torch.Tensor, sigma: torch.Tensor, y: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor,
               one_gaussian: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-split scores of mixture predictions, in the target's original units.

    ``mu``, ``sigma``: ``[C, ..., K, N]`` mixture components (C of them) in standardised units,
    for K splits of N test rows; ``y``: ``[K, N]`` targets in original units; ``y_mean``, ``y_std``:
    ``[K]`` each split's training statistics (as :func:`uci_splits` returns them). Every ``sigma``
    is multiplied by ``y_std``, so the NLL includes the ``log y_std`` of the change of units.

    Returns ``(rmse, nll)``, each ``[..., K]``: the RMSE of the mixture mean and the mean
    negative log-density of the mixture (``one_gaussian=True``: of the single Gaussian with the
    mixture's mean and variance, as Lakshminarayanan et al. (2017) score it).
    """
    mu_q, sigma_q = y_mean[:, None] + y_std[:, None] * mu, y_std[:, None] * sigma
    mean, var = mixture_moments(mu_q, sigma_q)
    target = y.expand_as(mean)
    rmse = ((mean - target) ** 2).mean(-1).sqrt()
    if one_gaussian:
        return rmse, gaussian_nll(target, mean, var.sqrt(), reduction="none").mean(-1)
    return rmse, mixture_nll(target, mu_q, sigma_q, reduction="none").mean(-1)


def uci_splits(x: torch.Tensor, y: torch.Tensor, n_splits: int = 20, test_fraction: float = 0.1,
               seed: int = 0) -> dict[str, torch.Tensor]:
    """The UCI protocol (Hernández-Lobato & Adams, 2015): ``n_splits`` random train/test splits,
    split k drawn by ``data.train_test_split(..., seed=seed + k)``, each standardised with the
    statistics of its own training part (inputs and target).

    ``x``: ``[N, D]``, ``y``: ``[N]``. Returns stacked tensors, K = ``n_splits``:
    ``x_train`` ``[K, N_train, D]``, ``y_train`` ``[K, N_train]`` (standardised),
    ``x_test`` ``[K, N_test, D]`` (standardised), ``y_test`` ``[K, N_test]`` (original units),
    ``y_mean``, ``y_std`` ``[K]`` (to go back: ``y = y_mean + y_std * y_standardised``).
    """
    check_tensor("x", x, ndim=2)
    check_tensor("y", y, ndim=1)
    check_int("n_splits", n_splits)
    parts = {k: [] for k in ("x_train", "y_train", "x_test", "y_test", "y_mean", "y_std")}
    for k in range(n_splits):
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_fraction=test_fraction, seed=seed + k)
        xs, ys = Standardizer.fit(x_tr), Standardizer.fit(y_tr)
        for key, value in [("x_train", xs.transform(x_tr)), ("y_train", ys.transform(y_tr)),
                           ("x_test", xs.transform(x_te)), ("y_test", y_te), ("y_mean", ys.mean), ("y_std", ys.std)]:
            parts[key].append(value)
    return {key: torch.stack(values) for key, values in parts.items()}
