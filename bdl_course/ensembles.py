"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, 2017), trained as one vectorised model.

J networks, each with its own random initialisation and its own minibatch order, are stored as
*stacked* weights: :class:`GaussianEnsemble` (ReLU networks with Gaussian heads, ``[J, in, out]``
weights, one ``torch.baddbmm`` per layer for every member) or :class:`DeepEnsemble` (any network,
``torch.func.stack_module_state`` + ``vmap``). A training step costs about what one member's step
costs, and there is no Python loop over members anywhere. Members never share a parameter, and the training loss
is the *sum* of the members' mean losses, so member j's gradient (and its Adam update, which is
elementwise) is exactly the one it would get if it were trained alone.

The predictive distribution of the ensemble is the uniform mixture of its members' Gaussians,

    p(y | x) = (1/J) sum_j N(y; mu_j(x), sigma_j(x)^2),

a :class:`~bdl_course.predictive.Predictive` with one component per member (``.predictive(x)``),
which gives its mean and variance, exact log-density and intervals. The same mixture describes MC
dropout (Gal & Ghahramani, 2016) with one component per dropout mask: ``GaussianEnsemble(...,
dropout=p).predictive(x, n_samples=S)``. :func:`fit_ensemble` trains every member at once and
reports a member that ends worse than predicting its targets' distribution.

Shapes: J members, N rows, D inputs. Member outputs are ``[J, N]``.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .predictive import Predictive
from .utils import check_int, check_positive, check_tensor

__all__ = ["EnsembleLinear", "GaussianEnsemble", "DeepEnsemble", "MemberFailedWarning",
           "TrainingFailure", "member_batches", "baseline_nll", "fit_ensemble",
           "mixture_log_prob", "mixture_nll"]

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

    @classmethod
    def from_weights(cls, weight: torch.Tensor, bias: torch.Tensor) -> "EnsembleLinear":
        """A layer holding copies of ``weight`` ``[J, in, out]`` and ``bias`` ``[J, 1, out]``."""
        j, n_in, n_out = weight.shape
        with torch.random.fork_rng(devices=[]):  # the throw-away initialisation must not move the global RNG
            layer = cls(j, n_in, n_out)
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        return layer

    def members(self, start: int, stop: int) -> "EnsembleLinear":
        """A new layer holding copies of members ``start .. stop - 1`` (draws no random numbers)."""
        return EnsembleLinear.from_weights(self.weight.detach()[start:stop], self.bias.detach()[start:stop])

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
            members are MC-dropout networks; see :meth:`predictive`.
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
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool):
            raise TypeError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if not 0 <= dropout < 1:
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

    @torch.no_grad()
    def predictive(self, x: torch.Tensor, likelihood=None, n_samples: int = 1,
                   batch_size: int | None = None) -> Predictive:
        """The ensemble's predictive (its own Gaussian head: ``likelihood`` is not needed).

        ``x`` ``[N, D]``: one uniform mixture of every member (with dropout: of every member's
        ``n_samples`` masks, J * S components). ``x`` ``[K, N, D]`` with K dividing J: members
        ``k*M .. k*M + M - 1`` (M = J/K) form model k, applied to ``x[k]`` (e.g. one model per
        data split); the predictive has per-input shape ``[K, N]`` and M * S components.
        Without dropout ``n_samples`` must be 1. ``batch_size`` is accepted for the common
        signature and not needed (the whole ``x`` is one pass).
        """
        check_int("n_samples", n_samples)
        check_tensor("x", x, ndim=(2, 3), last_dim=self.in_features)
        j = self.n_members
        if self.dropout == 0 and n_samples != 1:
            raise ValueError(f"this ensemble has dropout=0: every sample would be the same; leave n_samples=1, "
                             f"got {n_samples}")
        if x.dim() == 3 and j % x.shape[0]:
            raise ValueError(f"x of shape [K, N, D] must have K dividing n_members = {j}, got shape {tuple(x.shape)}")
        k = 1 if x.dim() == 2 else x.shape[0]
        members = x.unsqueeze(0).expand(j, *x.shape) if x.dim() == 2 else x.repeat_interleave(j // k, dim=0)
        if self.dropout > 0:
            mu, sigma = _dropout_draws(self, members, n_samples)  # [S, J, N]
        else:
            mu, sigma = self.head(self.raw(members, dropout_on=False))
            mu, sigma = mu.unsqueeze(0), sigma.unsqueeze(0)
        n = members.shape[1]

        def components(t):  # [S, J, N] -> [S * M, K, N]  (or [S * J, N] for one mixture)
            t = t.reshape(n_samples, k, j // k, n).transpose(1, 2).reshape(n_samples * (j // k), k, n)
            return t[:, 0] if x.dim() == 2 else t
        return Predictive.gaussian(components(mu), components(sigma))

    def member(self, j: int) -> nn.Sequential:
        """Member j as an ordinary ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` (a copy).

        Shapes: ``[N, D] -> [N, 2]`` (mean, unconstrained std); :meth:`head` turns it into
        ``(mu, sigma)``. Dropout is left out: the copy is the deterministic network.
        """
        if not isinstance(j, int) or isinstance(j, bool):
            raise TypeError(f"j must be an int member index in [0, {self.n_members}), got {j!r}")
        if not 0 <= j < self.n_members:
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


# ---------------------------------------------------------------- any network as an ensemble

class DeepEnsemble(nn.Module):
    """J copies of ANY network architecture as one vectorised model (torch.func).

    The members' parameters are stacked (``torch.func.stack_module_state``) into tensors with a
    leading member axis, and one ``vmap`` of ``functional_call`` runs every member at once: no
    Python loop over members. Build it from J independently initialised networks,
    ``DeepEnsemble([make() for _ in range(J)])`` or ``DeepEnsemble.from_factory(make, J)``.

    ``forward(x)``: ``x`` ``[N, ...]`` (every member sees it) or, with ``per_member=True``,
    ``[J, N, ...]`` (member j sees ``x[j]``); returns the members' raw outputs ``[J, N, ...]``.
    Dropout inside the members follows the ensemble's train/eval mode, with independent masks per
    member. Modules that update buffers in train mode (batch norm) are not supported.
    :meth:`predictive` gives one component per member; train it with :func:`fit_ensemble`.
    """

    def __init__(self, nets):
        super().__init__()
        nets = list(nets) if not isinstance(nets, nn.Module) else None
        if not nets or not all(isinstance(n, nn.Module) for n in nets):
            raise TypeError("nets must be a non-empty sequence of torch.nn.Module (J members of one architecture)")
        shapes = [{k: v.shape for k, v in n.state_dict().items()} for n in nets]
        for i, shape in enumerate(shapes[1:], start=1):
            if shape != shapes[0] or type(nets[i]) is not type(nets[0]):
                raise ValueError(f"nets must share one architecture: nets[{i}] differs from nets[0]")
        params, buffers = torch.func.stack_module_state(nets)
        base = copy.deepcopy(nets[0]).to("meta")
        object.__setattr__(self, "_base", base)  # not a submodule: its (meta) parameters are not trained
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        self.stacked = nn.ParameterDict({_key(k): nn.Parameter(v.detach().clone()) for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer("buffer__" + _key(k), v.clone())
        self.n_members = len(nets)

    @classmethod
    def from_factory(cls, make, n_members: int) -> "DeepEnsemble":
        """``DeepEnsemble([make() for _ in range(n_members)])``: each call of ``make`` a fresh initialisation."""
        check_int("n_members", n_members)
        return cls([make() for _ in range(n_members)])

    def train(self, mode: bool = True):
        super().train(mode)
        self._base.train(mode)
        return self

    def _stacked_state(self):
        params = {k: self.stacked[_key(k)] for k in self._param_names}
        buffers = {k: getattr(self, "buffer__" + _key(k)) for k in self._buffer_names}
        return params, buffers

    def forward(self, x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        if per_member and (not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] != self.n_members):
            raise ValueError(f"with per_member=True, x must have a leading member axis of size {self.n_members}, "
                             f"got shape {tuple(getattr(x, 'shape', ()))}")
        params, buffers = self._stacked_state()
        base = self._base

        def one(p, b, xi):
            return torch.func.functional_call(base, (p, b), (xi,))
        return torch.func.vmap(one, in_dims=(0, 0, 0 if per_member else None), randomness="different")(
            params, buffers, x)

    def member(self, j: int) -> nn.Module:
        """Member j as an ordinary network (a copy holding its parameters)."""
        if not isinstance(j, int) or isinstance(j, bool):
            raise TypeError(f"j must be an int member index in [0, {self.n_members}), got {j!r}")
        if not 0 <= j < self.n_members:
            raise ValueError(f"j must be a member index in [0, {self.n_members}), got {j!r}")
        net = copy.deepcopy(self._base).to_empty(device=self.stacked[_key(self._param_names[0])].device)
        params, buffers = self._stacked_state()
        state = {k: v[j].detach().clone() for k, v in {**params, **buffers}.items()}
        net.load_state_dict(state)
        return net.train(self.training)

    @torch.no_grad()
    def predictive(self, x: torch.Tensor, likelihood=None, n_samples: int = 1,
                   batch_size: int | None = None) -> Predictive:
        """One component per member at ``x`` ``[N, ...]`` (eval mode, restored afterwards).

        With ``n_samples > 1`` the members must contain dropout: each member draws that many MC
        dropout masks (components = J * S, member-major within each mask draw).
        """
        from .predict import _check_x, eval_mode

        check_int("n_samples", n_samples)
        _check_x(x)
        if likelihood is None or not callable(getattr(likelihood, "predictive", None)):
            raise TypeError(f"a DeepEnsemble needs a likelihood (bdl_course.likelihoods) for its raw outputs, "
                            f"got {type(likelihood).__name__}")
        dropout = (nn.modules.dropout._DropoutNd,)
        if n_samples > 1 and not any(isinstance(m, dropout) for m in self._base.modules()):
            raise ValueError("n_samples > 1 needs dropout inside the members (MC dropout); a deterministic "
                             "ensemble has one component per member: leave n_samples=1")
        was_training = self.training
        try:  # the members' modules decide what runs; only dropout may stay on, and only to sample
            with eval_mode(self._base, keep_on=dropout if n_samples > 1 else ()):
                self.training = False
                size = x.shape[0] if batch_size is None else batch_size
                draws = []
                for _ in range(n_samples):
                    outs = [self(x[i:i + size]) for i in range(0, x.shape[0], size)]
                    draws.append(outs[0] if len(outs) == 1 else _cat_outputs(outs, dim=1))
        finally:
            self.training = was_training
        out = draws[0] if n_samples == 1 else _cat_outputs(draws, dim=0)
        return likelihood.predictive(out)

    def extra_repr(self) -> str:
        return f"n_members={self.n_members}, member={self._base.__class__.__name__}"


def _key(name: str) -> str:
    return name.replace(".", "__")


def _cat_outputs(outs, dim):
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(items, dim=dim) for items in zip(*outs))
    return torch.cat(outs, dim=dim)


# ---------------------------------------------------------------- training

class MemberFailedWarning(UserWarning):
    """A member of an ensemble ended training worse than predicting its targets' mean (see :func:`fit_ensemble`)."""


class TrainingFailure(RuntimeError):
    """Raised by ``fit_ensemble(..., on_failure="raise")``; ``.members`` lists the failed members."""

    def __init__(self, message: str, members: list[int]):
        super().__init__(message)
        self.members = members


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


def baseline_nll(y: torch.Tensor) -> torch.Tensor:
    """The training NLL of a model that ignores x: it predicts the targets' own distribution.

    ``y``: ``[..., N]``; returns ``[...]``. Real targets: the NLL of ``N(mean(y), var(y))``,
    ``0.5 log(2 pi var) + 0.5`` (var divided by N). Integer class labels: the NLL of predicting
    the class frequencies, their entropy ``-sum_c f_c log f_c``. A model whose training NLL is
    above this has learnt less than nothing about x.
    """
    if not y.dtype.is_floating_point:
        n_classes = int(y.max()) + 1
        freq = torch.nn.functional.one_hot(y.long(), n_classes).double().mean(dim=-2)  # [..., C]
        return torch.special.entr(freq).sum(-1)
    return 0.5 * torch.log(2 * math.pi * y.var(dim=-1, unbiased=False)) + 0.5


def fit_ensemble(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
                 lr: float = 1e-2, weight_decay: float = 0.0, progress: bool | None = None,
                 desc: str = "ensemble", likelihood=None, on_failure: str = "warn") -> torch.Tensor:
    """Train every member on the mean NLL of its own minibatches, all members in one optimiser step.

    ``model``: a :class:`GaussianEnsemble` (its own Gaussian head; ``likelihood`` defaults to
    :class:`~bdl_course.likelihoods.HeteroskedasticGaussian`) or a :class:`DeepEnsemble` (give a
    ``likelihood``). ``x``: ``[N, D]`` and ``y``: ``[N]`` (every member trains on the same rows,
    each in its own random order), or ``x``: ``[K, N, D]`` and ``y``: ``[K, N]`` with K dividing J
    (member j trains on ``x[j // (J/K)]``: e.g. K data splits with J/K members each; K = J gives
    every member its own data). The loss is the *sum* over members of each member's mean NLL, so
    every member follows exactly its own training run (Adam is elementwise). The loop is
    :func:`bdl_course.train.optimise`, the one behind ``train.fit``.

    A member whose final-epoch training NLL is worse than :func:`baseline_nll` of its own targets
    (predicting their mean and std) failed to train: ``on_failure="warn"`` emits a
    :class:`MemberFailedWarning` naming it, ``"raise"`` raises :class:`TrainingFailure`.

    Returns the mean training NLL of every epoch and member, ``[epochs, J]``.
    """
    from .likelihoods import HeteroskedasticGaussian
    from .train import optimise, parameters_to_train

    if not isinstance(model, (GaussianEnsemble, DeepEnsemble)):
        raise TypeError(f"model must be a GaussianEnsemble or a DeepEnsemble, got {type(model).__name__}")
    if on_failure not in ("warn", "raise"):
        raise ValueError(f"on_failure must be 'warn' or 'raise', got {on_failure!r}")
    gaussian = isinstance(model, GaussianEnsemble)
    if gaussian:
        check_tensor("x", x, ndim=(2, 3), last_dim=model.in_features)
        if likelihood is None:
            likelihood = HeteroskedasticGaussian(1)
    else:
        check_tensor("x", x)
        if likelihood is None or not callable(getattr(likelihood, "nll", None)):
            raise TypeError(f"a DeepEnsemble needs likelihood= (bdl_course.likelihoods), got {type(likelihood).__name__}")
    if gaussian or not (isinstance(y, torch.Tensor) and y.dtype in (torch.int64, torch.int32)):
        check_tensor("y", y)  # class labels (a classifier ensemble) pass as they are
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    j = model.n_members
    shared = y.dim() == 1  # x [N, ...] with y [N], or x [K, N, ...] with y [K, N]
    if y.shape != x.shape[:y.dim()]:
        raise ValueError(f"y must have shape {tuple(x.shape[:y.dim()])} to match x of shape {tuple(x.shape)}, "
                         f"got {tuple(y.shape)}")
    if not shared:
        if y.dim() != 2 or j % x.shape[0]:
            raise ValueError(f"x of shape [K, N, ...] must have K dividing n_members = {j} (K data sets, "
                             f"J/K members each), got shape {tuple(x.shape)}")
        k = x.shape[0]
    n = x.shape[1] if not shared else x.shape[0]
    out_device = model.devices[0] if gaussian and model.devices else x.device
    if not shared:  # member j's rows sit at (j // M)*N .. (j // M)*N + N - 1 of the flattened data
        x, y = x.reshape(k * n, *x.shape[2:]), y.reshape(k * n)
        offsets = (torch.arange(j, device=x.device) // (j // k)).unsqueeze(1) * n  # [J, 1]
        targets = y.view(k, n).repeat_interleave(j // k, dim=0)  # [J, N], for the failure check
    else:
        offsets = torch.zeros(j, 1, dtype=torch.long, device=x.device)
        targets = y.expand(j, n)
    y = y.to(out_device)

    def step_loss(idx):  # idx: [J, B], member j's own minibatch
        flat = (idx + offsets).view(-1)
        xb = x.index_select(0, flat).view(j, idx.shape[1], *x.shape[1:])  # [J, B, ...]
        yb = y.index_select(0, flat.to(out_device)).view(j, -1)  # [J, B]
        out = model.head(model._raw(xb, dropout_on=True)) if gaussian else model(xb, per_member=True)
        per_member = likelihood.nll(out, yb, reduction="none").mean(dim=1)  # [J]
        return per_member.sum(), per_member.detach() * idx.shape[1]

    history = optimise(model, parameters_to_train(model, likelihood), epochs,
                       lambda: member_batches(j, n, batch_size, device=x.device), step_loss, n, lr,
                       weight_decay, progress, desc, check_every_step=False)
    history = torch.stack([h.cpu() for h in history])
    baseline = baseline_nll(targets.detach().cpu() if not targets.dtype.is_floating_point else targets.detach().double().cpu())
    failed = [m for m in range(j) if history[-1, m] > baseline[m]]
    if failed:
        detail = ", ".join(f"member {m}: {history[-1, m]:.3f} > {baseline[m]:.3f}" for m in failed)
        message = (f"{len(failed)} of {j} members ended training with a training NLL worse than predicting "
                   f"their targets' mean and std ({detail}); lower lr (now {lr}), train longer, or change "
                   f"the settings, rather than averaging them into the ensemble")
        if on_failure == "raise":
            raise TrainingFailure(message, failed)
        warnings.warn(message, MemberFailedWarning, stacklevel=2)
    return history


def _dropout_draws(model: "GaussianEnsemble", x: torch.Tensor, n_samples: int):
    """``(mu, sigma)``, each ``[S, J, N]``: S dropout masks per member and row (x ``[J, N, D]``)."""
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


def mixture_log_prob(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact ``log (1/J) sum_j N(y; mu_j, sigma_j^2)``, computed with logsumexp (finite far from every member).

    ``y``: ``[...]``; ``mu``, ``sigma``: ``[J, ...]``. Returns ``[...]``.
    """
    _check_mixture(mu, sigma)
    check_tensor("y", y)
    if y.shape != mu.shape[1:]:
        raise ValueError(f"y must have shape {tuple(mu.shape[1:])} (mu without its member dimension), "
                         f"got {tuple(y.shape)}")
    return torch.logsumexp(-(_HALF_LOG_2PI + torch.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2), dim=0) - math.log(mu.shape[0])


def mixture_nll(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-density of ``y`` under the uniform mixture of ``N(mu_j, sigma_j^2)``.

    ``y``: ``[...]``; ``mu``, ``sigma``: ``[J, ...]``. ``reduction``: ``"mean"`` (a scalar) or
    ``"none"`` (``[...]``).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    nll = -mixture_log_prob(y, mu, sigma)
    return nll.mean() if reduction == "mean" else nll
