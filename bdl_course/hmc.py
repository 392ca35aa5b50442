"""The HMC gold standard of lesson 07: the toy, the network, its Pyro model, and the pinned samples.

One 1-D regression toy with two gaps (three clusters from :func:`bdl_course.data.make_cluster_regression`,
as in the synthetic set of Izmailov et al., 2021), one small tanh network ``1 -> HIDDEN -> 1``
(:func:`network`; tanh rather than ReLU because NUTS needs a smooth log density: ReLU's kinks
halve the step size NUTS can take), a Gaussian
prior on its weights and a known noise level. ``tools/hmc_gold.py`` runs NUTS on :func:`pyro_model`
and writes thinned posterior samples to ``data/hmc_gold.npz``; :func:`load_gold` reads them back
after checking the file's sha256 (listed in ``data/README.md``), so that a corrupt, truncated or
regenerated-but-not-pinned file is refused rather than silently used.

Weights travel as one flat vector per sample, ``[S, P]`` with ``P = num_params()``, in the order
of ``network().parameters()``: first-layer weight ``[H, 1]``, its bias ``[H]``, second-layer weight
``[1, H]``, its bias ``[1]``.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import DataError, default_data_dir, download, make_cluster_regression
from .utils import check_int, check_tensor

__all__ = [
    "TOY", "HIDDEN", "NOISE_STD", "prior_stds", "GOLD_FILE", "GOLD_SHA256", "GAP_INTERVALS",
    "CLUSTER_INTERVALS", "Toy", "make_toy", "network", "num_params", "flatten", "unflatten",
    "forward_samples", "log_prior", "log_likelihood", "log_joint", "pyro_model", "Gold",
    "load_gold", "save_gold", "gold_path", "gold_url", "rhat", "ess", "wasserstein_per_input", "region_masks", "potential",
]

# ---------------------------------------------------------------- the toy and the model

#: Arguments of :func:`bdl_course.data.make_cluster_regression` for the training and held-out sets.
TOY = dict(n=90, fractions=(1 / 3, 1 / 3, 1 / 3), offsets=(-2.5, 0.0, 2.5), spreads=(0.5, 0.5, 0.5),
           noise_stds=(0.2, 0.2, 0.2))
TRAIN_SEED, HELDOUT_SEED, N_HELDOUT = 7, 8, 300
#: The noise std, known and shared by every method (so that methods differ only in their posterior over weights).
NOISE_STD = 0.2
HIDDEN = 10


def prior_stds(hidden: int = HIDDEN) -> tuple[float, float, float, float]:
    """Prior std of (first weight, first bias, second weight, second bias): 1, 1, 1/sqrt(hidden), 1.

    The second weight is scaled by 1/sqrt(fan-in), so the prior's function scale does not grow with the width.
    """
    return (1.0, 1.0, 1.0 / math.sqrt(hidden), 1.0)


#: The test grid of lesson 07: it covers the three clusters, both gaps and a margin beyond the data.
GRID = dict(low=-4.0, high=4.0, n=161)
CLUSTER_INTERVALS = tuple((o - s, o + s) for o, s in zip(TOY["offsets"], TOY["spreads"]))
GAP_INTERVALS = tuple((a[1], b[0]) for a, b in zip(CLUSTER_INTERVALS[:-1], CLUSTER_INTERVALS[1:]))

GOLD_FILE = "hmc_gold.npz"
#: sha256 of the pinned ``data/hmc_gold.npz`` (also in ``data/README.md``); ``tools/hmc_gold.py`` prints it.
GOLD_SHA256 = "147a72811abc092496e2fa22436208c259981e8559bdb065b1948d24d92110f2"


@dataclass
class Toy:
    """Lesson 07's data, float32: training ``x`` ``[N]``, ``y`` ``[N]``; held-out ``x_test``, ``y_test``
    ``[M]`` (same clusters, another seed); the plotting/scoring grid ``grid`` ``[G]``."""
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    grid: torch.Tensor


def make_toy() -> Toy:
    """The training set, the held-out set and the test grid of lesson 07 (all seeded, offline)."""
    x, y, _ = make_cluster_regression(seed=TRAIN_SEED, **TOY)
    toy_test = dict(TOY, n=N_HELDOUT)
    x_test, y_test, _ = make_cluster_regression(seed=HELDOUT_SEED, **toy_test)
    grid = torch.linspace(GRID["low"], GRID["high"], GRID["n"])
    return Toy(x, y, x_test, y_test, grid)


def region_masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks ``[N]`` of the inputs inside a cluster and inside a gap (between clusters)."""
    in_cluster = torch.zeros_like(x, dtype=torch.bool)
    in_gap = torch.zeros_like(x, dtype=torch.bool)
    for lo, hi in CLUSTER_INTERVALS:
        in_cluster |= (x >= lo) & (x <= hi)
    for lo, hi in GAP_INTERVALS:
        in_gap |= (x > lo) & (x < hi)
    return in_cluster, in_gap


def network(hidden: int = HIDDEN) -> nn.Sequential:
    """The one network of lesson 07: ``Linear(1, hidden) -> Tanh -> Linear(hidden, 1)``, ``[..., 1] -> [..., 1]``."""
    check_int("hidden", hidden)
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def _shapes(hidden: int) -> list[tuple[int, ...]]:
    return [(hidden, 1), (hidden,), (1, hidden), (1,)]


def num_params(hidden: int = HIDDEN) -> int:
    """Number of weights of :func:`network`: ``3 * hidden + 1``."""
    return sum(math.prod(s) for s in _shapes(hidden))


def flatten(net: nn.Module) -> torch.Tensor:
    """The weights of a :func:`network` as one ``[P]`` vector (the layout of the pinned samples)."""
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def unflatten(w: torch.Tensor, hidden: int = HIDDEN) -> list[torch.Tensor]:
    """Split ``[..., P]`` weights into ``[..., H, 1]``, ``[..., H]``, ``[..., 1, H]``, ``[..., 1]``."""
    if w.shape[-1] != num_params(hidden):
        raise ValueError(f"weights must have last dimension {num_params(hidden)} (hidden={hidden}), "
                         f"got shape {tuple(w.shape)}")
    parts, start = [], 0
    for shape in _shapes(hidden):
        size = math.prod(shape)
        parts.append(w[..., start:start + size].reshape(*w.shape[:-1], *shape))
        start += size
    return parts


def forward_samples(w: torch.Tensor, x: torch.Tensor, hidden: int = HIDDEN) -> torch.Tensor:
    """The network's output for each weight sample: ``w`` ``[S, P]``, ``x`` ``[N]`` -> ``[S, N]``."""
    check_tensor("w", w, ndim=2)
    check_tensor("x", x, ndim=1)
    w1, b1, w2, b2 = unflatten(w.to(x.dtype), hidden)
    h = torch.tanh(x[None, :, None] * w1[:, None, :, 0] + b1[:, None, :])  # [S, N, H]
    return torch.einsum("snh,sh->sn", h, w2[:, 0, :]) + b2  # [S, N]


def _prior_stds(w: torch.Tensor, hidden: int) -> torch.Tensor:
    return torch.cat([torch.full((math.prod(s),), sd, dtype=w.dtype) for s, sd in zip(_shapes(hidden), prior_stds(hidden))])


def log_prior(w: torch.Tensor, hidden: int = HIDDEN) -> torch.Tensor:
    """``log p(w)`` under the factorised Gaussian prior of :func:`prior_stds`: ``[S, P] -> [S]``."""
    sd = _prior_stds(w, hidden)
    return torch.distributions.Normal(torch.zeros_like(sd), sd).log_prob(w).sum(-1)


def log_likelihood(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int = HIDDEN) -> torch.Tensor:
    """``log p(y | x, w)`` with the known noise ``NOISE_STD``: ``w`` ``[S, P]``, ``x, y`` ``[N]`` -> ``[S]``."""
    f = forward_samples(w, x, hidden)
    return torch.distributions.Normal(f, NOISE_STD).log_prob(y.to(f.dtype)).sum(-1)


def log_joint(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int = HIDDEN) -> torch.Tensor:
    """Unnormalised log posterior ``log p(w) + log p(y | x, w)``: ``[S, P] -> [S]``."""
    return log_prior(w, hidden) + log_likelihood(w, x, y, hidden)


def potential(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int = HIDDEN) -> torch.Tensor:
    """``-log_joint`` of one weight vector ``w`` ``[P]`` up to a constant (no input checks: NUTS calls it
    at every leapfrog step). Equals the potential energy of :func:`pyro_model` up to that constant."""
    w1, b1, w2, b2 = unflatten(w, hidden)
    f = torch.tanh(x[:, None] * w1[:, 0] + b1) @ w2[0] + b2
    sd = _prior_stds(w, hidden)
    return 0.5 * ((w / sd) ** 2).sum() + 0.5 * ((f - y) ** 2).sum() / NOISE_STD ** 2


def pyro_model(x: torch.Tensor, y: torch.Tensor | None = None, hidden: int = HIDDEN) -> torch.Tensor:
    """The Bayesian network as a Pyro model: the prior of :func:`log_prior` and the likelihood of
    :func:`log_likelihood`, with one sample site ``"w"`` (all ``P`` weights). Returns ``f(x)`` ``[N]``."""
    import pyro  # imported here: only the HMC script and its test need Pyro
    import pyro.distributions as dist

    sd = _prior_stds(x, hidden)
    w = pyro.sample("w", dist.Normal(torch.zeros_like(sd), sd).to_event(1))
    f = forward_samples(w[None], x, hidden)[0]
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal(f, NOISE_STD), obs=y)
    return f


# ---------------------------------------------------------------- convergence diagnostics

def rhat(chains: torch.Tensor) -> torch.Tensor:
    """Split R-hat (Gelman et al., BDA3 §11.4) of ``chains`` ``[C, T, ...]`` -> ``[...]``.

    Each chain is cut into two halves, so ``2C`` chains of ``T // 2`` draws are compared:
    ``sqrt(((n - 1) / n * W + B / n) / W)`` with ``W`` the mean within-chain variance and ``B / n``
    the variance of the chain means.
    """
    check_tensor("chains", chains)
    if chains.dim() < 2 or chains.shape[1] < 4:
        raise ValueError(f"chains must be [C, T, ...] with T >= 4 draws, got shape {tuple(chains.shape)}")
    half = chains.shape[1] // 2
    split = torch.cat([chains[:, :half], chains[:, -half:]], dim=0).double()
    n = split.shape[1]
    within = split.var(dim=1, unbiased=True).mean(dim=0)
    between_over_n = split.mean(dim=1).var(dim=0, unbiased=True)
    var_plus = (n - 1) / n * within + between_over_n
    return torch.sqrt(var_plus / within)


def ess(chains: torch.Tensor) -> torch.Tensor:
    """Effective sample size of ``chains`` ``[C, T, ...]`` -> ``[...]`` (BDA3 §11.5, Geyer's initial
    positive sequence on the multi-chain autocorrelation), summed over chains."""
    check_tensor("chains", chains)
    c, t = chains.shape[:2]
    z = chains.double()
    z = z - z.mean(dim=1, keepdim=True)
    spectrum = torch.fft.rfft(z, n=2 * t, dim=1)
    acov = torch.fft.irfft(spectrum * spectrum.conj(), n=2 * t, dim=1)[:, :t] / t  # [C, T, ...]
    within = (acov[:, 0] * t / (t - 1)).mean(0)
    var_plus = within * (t - 1) / t + chains.double().mean(1).var(0, unbiased=True) if c > 1 else within * (t - 1) / t
    rho = 1 - (within - acov.mean(0)) / var_plus  # [T, ...]
    rho[0] = 1.0
    # Geyer: sum pairs rho[2k] + rho[2k+1] while positive
    pairs = rho[: 2 * (t // 2)].reshape(t // 2, 2, *rho.shape[1:]).sum(1)
    positive = torch.cumprod((pairs > 0).double(), dim=0)
    tau = -1 + 2 * (pairs * positive).sum(0)
    return c * t / tau.clamp_min(1.0 / math.log10(max(c * t, 10)))


def wasserstein_per_input(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1-Wasserstein distance between two equal-size samples at each of M inputs: ``[S, M], [S, M] -> [M]``.

    In one dimension ``W1 = mean_k |a_(k) - b_(k)|`` over the sorted samples (the area between the
    empirical CDFs); the regression metric of the NeurIPS 2021 approximate-inference competition.
    """
    check_tensor("a", a, ndim=2)
    check_tensor("b", b, ndim=2)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape [S, M], got {tuple(a.shape)} and {tuple(b.shape)}")
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=0)


# ---------------------------------------------------------------- the pinned samples

@dataclass
class Gold:
    """The pinned HMC samples. ``weights`` ``[C, T, P]`` (C chains of T thinned draws),
    ``f_grid`` ``[C, T, G]`` and ``f_test`` ``[C, T, M]``: the network's output at ``grid`` ``[G]``
    and at the held-out inputs ``x_test`` ``[M]``; ``log_joint`` ``[C, T]``; ``info``: the settings
    and diagnostics the script recorded (a dict)."""
    weights: torch.Tensor
    f_grid: torch.Tensor
    f_test: torch.Tensor
    grid: torch.Tensor
    x_test: torch.Tensor
    log_joint: torch.Tensor
    info: dict

    def samples(self) -> torch.Tensor:
        """All draws of the weights with the chains pooled: ``[C * T, P]``."""
        return self.weights.reshape(-1, self.weights.shape[-1])


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gold_path(data_dir: str | Path | None = None) -> Path:
    """Where the pinned samples live: ``data_dir`` (default: the course's ``data/`` folder)."""
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / GOLD_FILE


def save_gold(gold: Gold, path: str | Path) -> str:
    """Write ``gold`` to ``path`` atomically (temporary file, then rename); returns its sha256."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, weights=gold.weights.float().numpy(), f_grid=gold.f_grid.float().numpy(),
                        f_test=gold.f_test.float().numpy(), grid=gold.grid.float().numpy(),
                        x_test=gold.x_test.float().numpy(), log_joint=gold.log_joint.double().numpy(),
                        info=np.frombuffer(json.dumps(gold.info, sort_keys=True).encode(), dtype=np.uint8))
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the samples are for every user (and the grader's sandbox)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return _sha256_bytes(data)


def gold_url() -> str | None:
    """Where a pip-installed course (e.g. on Colab) downloads the pinned samples: the file in the
    GitHub repository at the very commit pip installed (read from the package's ``direct_url.json``);
    ``None`` for a checkout or an install that did not come from GitHub."""
    from importlib import metadata

    try:
        direct = json.loads(metadata.distribution("bdl-course").read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not direct or "vcs_info" not in direct or not direct.get("url", "").startswith("https://github.com/"):
        return None
    repo = direct["url"].removeprefix("https://github.com/").removesuffix(".git").strip("/")
    commit = direct["vcs_info"].get("commit_id")
    return f"https://raw.githubusercontent.com/{repo}/{commit}/data/{GOLD_FILE}" if commit else None


def load_gold(path: str | Path | None = None, sha256: str | None = GOLD_SHA256, url: str | None = None) -> Gold:
    """Load the pinned HMC samples, refusing a file whose sha256 is not ``sha256``.

    ``path``: default ``hmc_gold.npz`` in ``$BDL_COURSE_DATA``, else in the course's ``data/``
    folder (a checkout has it committed); if neither exists, it is downloaded from ``url``
    (default :func:`gold_url`, for a pip-installed course) atomically into the data folder and
    kept only if its sha256 matches. ``sha256=None`` skips the check (for a freshly written file).
    Raises :class:`~bdl_course.data.DataError` if the file is missing, corrupt, truncated or not
    the pinned one.
    """
    how = ("Restore it with `git checkout -- data/hmc_gold.npz`, or regenerate it with "
           "`python tools/hmc_gold.py` and pin its new sha256 in bdl_course/hmc.py and data/README.md.")
    if path is None:
        candidates = [Path(d) / GOLD_FILE for d in [os.environ.get("BDL_COURSE_DATA")] if d] + [gold_path()]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            url = url or gold_url()
            if url is None or sha256 is None:
                raise DataError(f"the pinned HMC samples are missing (looked for {', '.join(map(str, candidates))}). "
                                + how)
            path = download(url, gold_path(), sha256)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"the pinned HMC samples {path} are missing. " + how)
    data = path.read_bytes()
    digest = _sha256_bytes(data)
    if sha256 is not None and digest != sha256:
        raise DataError(f"{path} failed its checksum (sha256 {digest[:12]}..., expected {sha256[:12]}...): "
                        f"the file is corrupt, truncated or not the pinned samples, so it is not used. " + how)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    except Exception as err:  # a file that passed no checksum (sha256=None) may still be unreadable
        raise DataError(f"{path} is not a readable .npz of HMC samples ({type(err).__name__}: {err}). " + how) from None
    info = json.loads(bytes(arrays.pop("info").numpy()).decode())
    return Gold(info=info, **arrays)
