"""Data: seeded toy problems, the UCI Wine Quality loader, splits and standardisation.

Wine Quality (UCI id 186, CC BY 4.0; Cortez et al., 2009) is looked up in
``$BDL_COURSE_DATA``, then in the course's ``data/`` folder, and otherwise downloaded from
UCI. Every file is checked against its sha256 before use; downloads are written atomically,
so an interrupted download never leaves a half-written file behind.
"""
from __future__ import annotations

import hashlib
import http.client
import math
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .utils import check_int, check_positive, check_tensor

WINE_FILES = {
    "red": ("winequality-red.csv", "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e", 1599),
    "white": ("winequality-white.csv", "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836", 4898),
}
WINE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality/{filename}"
WINE_FEATURES = (
    "fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
    "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol",
)


def default_data_dir() -> Path:
    """The course's ``data/`` folder in a checkout; ``~/.cache/bdl_course`` for a pip-installed package."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bdl_course"



class DataError(RuntimeError):
    """A data file is missing, cannot be downloaded, or failed its checksum."""


# ---------------------------------------------------------------- toy problems

def gap_function(x: torch.Tensor) -> torch.Tensor:
    """The noise-free function behind :func:`make_gap_regression`; any shape in, same shape out."""
    return torch.sin(1.5 * x) + 0.3 * x


def make_gap_regression(n: int = 40, noise_std: float = 0.25, seed: int = 0,
                        low: float = -3.0, high: float = 3.0, gap: tuple[float, float] = (-0.75, 0.75),
                        dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1-D regression toy with no data inside ``gap``.

    Half the inputs are drawn uniformly from ``[low, gap[0]]``, half from ``[gap[1], high]``;
    targets are ``gap_function(x) + noise_std * eps``.

    Returns:
        x: ``[n]`` inputs, sorted.  y: ``[n]`` targets.
    """
    check_int("n", n, minimum=2)
    check_positive("noise_std", noise_std)
    if not low < gap[0] < gap[1] < high:
        raise ValueError(f"need low < gap[0] < gap[1] < high, got low={low}, gap={gap}, high={high}")
    g = torch.Generator().manual_seed(seed)
    n_left = n // 2
    u = torch.rand(n, generator=g, dtype=dtype)
    x = torch.cat([low + (gap[0] - low) * u[:n_left], gap[1] + (high - gap[1]) * u[n_left:]])
    x, _ = torch.sort(x)
    y = gap_function(x) + noise_std * torch.randn(n, generator=g, dtype=dtype)
    return x, y


# ---------------------------------------------------------------- Wine Quality

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _how_to_get(filename: str) -> str:
    return (f"Fix: download {WINE_URL.format(filename=filename)} by hand (UCI data set 186, Wine Quality) "
            f"and put it in {default_data_dir()} or in a folder named by the BDL_COURSE_DATA environment variable.")


def _verified(path: Path, sha256: str) -> Path:
    digest = _sha256(path)
    if digest != sha256:
        raise DataError(
            f"{path} failed its checksum (sha256 {digest[:12]}..., expected {sha256[:12]}...): the file is "
            f"corrupt, truncated or not the UCI original, so it is not used. Delete it and run again. "
            + _how_to_get(path.name))
    return path


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, keeping it only if its sha256 matches.

    The bytes go to a temporary file in ``dest``'s folder, are verified, then renamed into
    place; on any failure the temporary file is removed and :class:`DataError` is raised.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 16):
                out.write(block)
        if _sha256(Path(tmp)) != sha256:
            raise DataError(f"the file downloaded from {url} failed its checksum; not used. "
                            + _how_to_get(dest.name))
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError, ValueError) as err:
        raise DataError(f"could not download {url} ({err}). " + _how_to_get(dest.name)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def wine_path(color: str = "red", data_dir: str | Path | None = None, url: str | None = None) -> Path:
    """Path of a verified Wine Quality CSV, downloading it into ``data_dir`` if needed.

    Looks in ``$BDL_COURSE_DATA``, then ``data_dir`` (default: :func:`default_data_dir`).
    """
    if color not in WINE_FILES:
        raise ValueError(f"color must be one of {sorted(WINE_FILES)}, got {color!r}")
    filename, sha256, _ = WINE_FILES[color]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    candidates = [Path(d) / filename for d in [os.environ.get("BDL_COURSE_DATA")] if d] + [data_dir / filename]
    for path in candidates:
        if path.is_file():
            return _verified(path, sha256)
    return download(url or WINE_URL.format(filename=filename), data_dir / filename, sha256)


def load_wine(color: str = "red", data_dir: str | Path | None = None,
              url: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load UCI Wine Quality.

    Returns:
        x: ``[N, 11]`` float32 physicochemical inputs (names in ``WINE_FEATURES``).
        y: ``[N]`` float32 quality scores (integers 0-10). N is 1599 (red) or 4898 (white).
    """
    path = wine_path(color, data_dir, url)
    table = np.loadtxt(path, delimiter=";", skiprows=1, dtype=np.float32)
    expected_rows = WINE_FILES[color][2]
    if table.shape != (expected_rows, 12):  # cannot happen after the checksum; kept as a guard
        raise DataError(f"{path} has shape {table.shape}, expected ({expected_rows}, 12)")
    return torch.from_numpy(table[:, :11].copy()), torch.from_numpy(table[:, 11].copy())


# ---------------------------------------------------------------- splits and scaling

def train_test_split(x: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.1, seed: int = 0):
    """Random split of rows. ``x``: ``[N, ...]``, ``y``: ``[N, ...]``.

    Returns ``x_train, x_test, y_train, y_test``; the test part has ``ceil(test_fraction * N)`` rows.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n = x.shape[0]
    n_test = math.ceil(round(test_fraction * n, 9))  # round first: 0.07 * 100 is 7.000000000000001
    if not 1 <= n_test < n:
        raise ValueError(f"test_fraction={test_fraction} of {n} rows leaves {n_test} test and {n - n_test} "
                         f"training rows; both parts need at least one")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], x[test], y[train], y[test]


@dataclass
class Standardizer:
    """Scale by statistics of the training data only: ``(t - mean) / std`` per column.

    ``mean`` and ``std`` have the shape of one row (``t.shape[1:]``).
    """
    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, t: torch.Tensor) -> "Standardizer":
        check_tensor("t", t)
        if t.shape[0] < 2:
            raise ValueError(f"t needs at least 2 rows to estimate a spread, got shape {tuple(t.shape)}")
        std = t.std(dim=0)
        return cls(t.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std)))  # constant columns: no scaling

    def transform(self, t: torch.Tensor) -> torch.Tensor:
        return (t - self.mean) / self.std

    def inverse(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.std + self.mean
