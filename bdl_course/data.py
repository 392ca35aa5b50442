"""Data: seeded toy problems, the UCI Wine Quality loader, splits and standardisation.

Wine Quality (UCI id 186, CC BY 4.0; Cortez et al., 2009) is looked up in
``$BDL_COURSE_DATA``, then in the course's ``data/`` folder, and otherwise downloaded from
UCI. Every file is checked against its sha256 before use; downloads are written atomically,
so an interrupted download never leaves a half-written file behind.

Why not pooch (issue 13): the loader is ~60 lines of the standard library and does what pooch
would (sha256, atomic write, a clear error), plus what pooch does not: it looks in the
offline folder ``$BDL_COURSE_DATA`` and the repository's ``data/`` first (CI and classrooms run
without network), and its error says where to put the file by hand. pooch would add a
dependency for every student for one CSV file. The HMC samples of lesson 07 use the same
checks (:mod:`bdl_course.hmc`).
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

__all__ = ["WINE_FILES", "WINE_URL", "WINE_FEATURES", "default_data_dir", "DataError",
           "gap_function", "make_gap_regression", "make_cubic_regression", "make_sine_regression",
           "make_cluster_regression", "load_iris", "download", "wine_path", "load_wine",
           "train_test_split", "Standardizer", "IMAGE_DATASETS", "ImageData", "load_images",
           "rotate_images", "noise_images", "natural_image_patches", "uci_splits"]

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


def _uniform_regression(function, n, noise_std, seed, low, high, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = function(x) + noise_std * eps``, ``x`` uniform in ``[low, high]``: ``[n]`` sorted x, ``[n]`` y."""
    check_int("n", n, minimum=1)
    check_positive("noise_std", noise_std)
    if not low < high:
        raise ValueError(f"need low < high, got low={low}, high={high}")
    g = torch.Generator().manual_seed(seed)
    x, _ = torch.sort(low + (high - low) * torch.rand(n, generator=g, dtype=dtype))
    return x, function(x) + noise_std * torch.randn(n, generator=g, dtype=dtype)


def make_cubic_regression(n: int = 20, noise_std: float = 3.0, seed: int = 0, low: float = -4.0,
                          high: float = 4.0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy of Lakshminarayanan et al. (2017, Figure 1): ``y = x^3 + noise_std * eps`` with
    ``x`` uniform in ``[low, high]``.

    Seeded by ``seed`` alone (its own generator; the global torch generator is untouched).

    Returns:
        x: ``[n]`` inputs, sorted.  y: ``[n]`` targets.
    """
    return _uniform_regression(lambda x: x ** 3, n, noise_std, seed, low, high, dtype)


def make_sine_regression(n: int = 100, noise_std: float = 0.1, seed: int = 0, low: float = -3.0,
                         high: float = 3.0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1-D regression toy: ``y = sin(x) + noise_std * eps`` with ``x`` uniform in ``[low, high]``.

    Seeded by ``seed`` alone (its own generator; the global torch generator is untouched).

    Returns:
        x: ``[n]`` inputs, sorted.  y: ``[n]`` targets.
    """
    return _uniform_regression(torch.sin, n, noise_std, seed, low, high, dtype)


def make_cluster_regression(n: int = 2000, fractions=(0.3, 0.4, 0.3), offsets=(-2.5, 0.0, 2.5),
                            spreads=(0.75, 0.75, 0.75), noise_stds=(0.1, 0.45, 0.25), seed: int = 0,
                            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 1-D regression toy made of separate clusters, each with its own known noise level.

    Cluster ``k`` holds ``fractions[k]`` of the ``n`` inputs (rounded; the counts add up to ``n``),
    drawn uniformly from ``[offsets[k] - spreads[k], offsets[k] + spreads[k]]``; its targets are
    ``gap_function(x) + noise_stds[k] * eps``. Offsets must increase and the clusters must not
    touch, so that there is a gap without data between neighbours. Seeded by ``seed`` alone.

    Returns:
        x: ``[n]`` inputs, sorted.  y: ``[n]`` targets.  cluster: ``[n]`` int64 cluster index of each input.
    """
    check_int("n", n, minimum=1)
    fractions, offsets, spreads, noise_stds = (list(map(float, v)) for v in (fractions, offsets, spreads, noise_stds))
    k = len(fractions)
    if k == 0 or not len(offsets) == len(spreads) == len(noise_stds) == k:
        raise ValueError(f"fractions, offsets, spreads and noise_stds must have one entry per cluster (the same length "
                         f"> 0), got lengths {len(fractions)}, {len(offsets)}, {len(spreads)}, {len(noise_stds)}")
    if not all(f > 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    for name, values in (("spreads", spreads), ("noise_stds", noise_stds)):
        for i, value in enumerate(values):
            check_positive(f"{name}[{i}]", value)
    for i in range(k - 1):
        if not offsets[i] + spreads[i] < offsets[i + 1] - spreads[i + 1]:
            raise ValueError(f"offsets must increase with a gap between clusters: cluster {i} ends at "
                             f"{offsets[i] + spreads[i]}, cluster {i + 1} starts at {offsets[i + 1] - spreads[i + 1]}")
    # largest-remainder rounding: the counts add up to n exactly
    exact = [f * n for f in fractions]
    counts = [math.floor(e) for e in exact]
    for i in sorted(range(k), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
        counts[i] += 1
    if min(counts) < 1:
        raise ValueError(f"n={n} leaves a cluster empty (counts {counts}); use a larger n")
    g = torch.Generator().manual_seed(seed)
    cluster = torch.repeat_interleave(torch.arange(k), torch.tensor(counts))
    u = 2 * torch.rand(n, generator=g, dtype=dtype) - 1
    x = torch.tensor(offsets, dtype=dtype)[cluster] + torch.tensor(spreads, dtype=dtype)[cluster] * u
    y = gap_function(x) + torch.tensor(noise_stds, dtype=dtype)[cluster] * torch.randn(n, generator=g, dtype=dtype)
    order = torch.argsort(x)
    return x[order], y[order], cluster[order]


# ---------------------------------------------------------------- scikit-learn's bundled data

def load_iris() -> tuple[torch.Tensor, torch.Tensor]:
    """Fisher's iris flowers, from the copy bundled with scikit-learn (offline).

    Returns:
        x: ``[150, 4]`` float32 measurements in cm (sepal length, sepal width, petal length,
           petal width).  y: ``[150]`` int64 class labels 0, 1, 2 (setosa, versicolor, virginica).
    """
    from sklearn.datasets import load_iris as sklearn_iris  # imported here: sklearn is slow to import

    bunch = sklearn_iris()
    return (torch.as_tensor(bunch.data, dtype=torch.float32),
            torch.as_tensor(bunch.target, dtype=torch.int64))


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
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are for every user (and the grader's sandbox)
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


# ---------------------------------------------------------------- images: digits, MNIST, CIFAR-10, shifted inputs

IMAGE_DATASETS = ("digits", "mnist", "cifar10")


@dataclass
class ImageData:
    """A classification data set of images, split into training and held-out test parts.

    ``x_train`` ``[N, C, H, W]`` and ``x_test`` ``[M, C, H, W]``: float32 pixels in ``[0, 1]``;
    ``y_train`` ``[N]`` and ``y_test`` ``[M]``: int64 classes; ``classes``: their names.
    """
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    name: str


def _subset(x: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int, what: str):
    if limit is None or limit >= x.shape[0]:
        return x, y
    check_int(what, limit)
    keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:limit]
    return x[keep], y[keep]


def _torchvision_images(name: str, data_dir: Path):
    try:
        import torchvision  # optional: only these data sets need it
    except ImportError:
        raise ImportError(f"name={name!r} needs torchvision (pip install torchvision) and internet access for the "
                          f"first download; the offline default is name='digits'") from None
    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        parts = [cls(root=str(data_dir), train=train, download=True) for train in (True, False)]
    except Exception as err:  # no internet, a corrupt archive, ...: say what to do
        raise DataError(f"torchvision could not load {name!r} into {data_dir} ({type(err).__name__}: {err}). "
                        f"It downloads the data on first use, which needs internet access; offline, "
                        f"use name='digits'.") from None
    out = []
    for ds in parts:
        pixels = torch.as_tensor(np.asarray(ds.data))  # MNIST [N, 28, 28], CIFAR-10 [N, 32, 32, 3]; uint8
        x = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)
        out += [x.float().div(255).contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)]
    return (*out, tuple(parts[0].classes))


def load_images(name: str = "digits", test_fraction: float = 0.2, seed: int = 0,
                data_dir: str | Path | None = None, max_train: int | None = None,
                max_test: int | None = None) -> ImageData:
    """Load an image classification data set as tensors (see :class:`ImageData` for shapes).

    - ``"digits"`` (default, offline): scikit-learn's 1,797 handwritten digits, 8x8 grey pixels
      (values 0-16, scaled to [0, 1]); a random held-out split of ``test_fraction`` by ``seed``.
    - ``"mnist"`` (28x28 grey) and ``"cifar10"`` (32x32 colour): through torchvision's own
      loaders, which download into ``data_dir`` (default: ``<data folder>/torchvision``) on first
      use; their official train/test split (``test_fraction`` is not used). Needs torchvision
      and internet access, e.g. on Colab; imported only here.

    ``max_train`` / ``max_test``: keep a random subset of that many images (by ``seed``), e.g.
    to run MNIST on a CPU in a minute.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"name must be one of {IMAGE_DATASETS}, got {name!r}")
    if name == "digits":
        from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

        bunch = load_digits()
        x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [1797, 1, 8, 8]
        y = torch.as_tensor(bunch.target, dtype=torch.int64)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_fraction=test_fraction, seed=seed)
        classes = tuple(str(c) for c in bunch.target_names)
    else:
        data_dir = Path(data_dir) if data_dir is not None else default_data_dir() / "torchvision"
        x_train, y_train, x_test, y_test, classes = _torchvision_images(name, data_dir)
    x_train, y_train = _subset(x_train, y_train, max_train, seed, "max_train")
    x_test, y_test = _subset(x_test, y_test, max_test, seed + 1, "max_test")
    return ImageData(x_train, y_train, x_test, y_test, classes, name)


def rotate_images(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every image of ``x`` ``[N, C, H, W]`` by ``degrees`` (counter-clockwise) about its centre.

    Bilinear interpolation; pixels that come from outside the image are 0 (background).
    Returns ``[N, C, H, W]``.
    """
    check_tensor("x", x, ndim=4)
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)):
        raise TypeError(f"degrees must be a finite number, got {degrees!r}")
    if not math.isfinite(degrees):
        raise ValueError(f"degrees must be a finite number, got {degrees!r}")
    t = math.radians(degrees)
    h, w = x.shape[-2:]
    # affine_grid maps output to input coordinates in [-1, 1]; scale by the aspect ratio for non-square images
    theta = torch.tensor([[math.cos(t), -math.sin(t) * h / w, 0.0],
                          [math.sin(t) * w / h, math.cos(t), 0.0]], dtype=x.dtype, device=x.device)
    grid = torch.nn.functional.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def noise_images(n: int, channels: int = 1, size: int = 8, seed: int = 0) -> torch.Tensor:
    """``n`` images of independent uniform noise in [0, 1]: ``[n, channels, size, size]`` float32."""
    check_int("n", n)
    check_int("channels", channels)
    check_int("size", size)
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def natural_image_patches(n: int, channels: int = 1, size: int = 8, seed: int = 0) -> torch.Tensor:
    """``n`` patches of real photographs, as out-of-distribution images: ``[n, channels, size, size]``.

    Random square crops (side 2 to 8 times ``size``) of scikit-learn's two bundled sample photos
    (offline), shrunk to ``size`` x ``size`` by area averaging, grey if ``channels`` is 1, and
    stretched to [0, 1] per patch (the contrast of a digit).
    """
    check_int("n", n)
    check_int("size", size)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
    from sklearn.datasets import load_sample_images  # imported here: sklearn is slow to import

    photos = [torch.tensor(np.array(img), dtype=torch.float32).permute(2, 0, 1) / 255
              for img in load_sample_images().images]
    g = torch.Generator().manual_seed(seed)
    patches = []
    for _ in range(n):
        photo = photos[int(torch.randint(len(photos), (1,), generator=g))]
        side = int(torch.randint(2 * size, 8 * size + 1, (1,), generator=g))
        top = int(torch.randint(photo.shape[1] - side + 1, (1,), generator=g))
        left = int(torch.randint(photo.shape[2] - side + 1, (1,), generator=g))
        crop = photo[:, top:top + side, left:left + side]
        patches.append(torch.nn.functional.interpolate(crop[None], size=(size, size), mode="area")[0])
    x = torch.stack(patches)
    if channels == 1:
        x = x.mean(1, keepdim=True)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-6)


# ---------------------------------------------------------------- the UCI protocol

def uci_splits(x: torch.Tensor, y: torch.Tensor, n_splits: int = 20, test_fraction: float = 0.1,
               seed: int = 0) -> dict[str, torch.Tensor]:
    """The UCI protocol (Hernández-Lobato & Adams, 2015): ``n_splits`` random train/test splits,
    split k drawn by :func:`train_test_split` ``(..., seed=seed + k)``, each standardised with the
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
