"""Specification of bdl_course.data: toy generators, the Wine Quality loader, splits and scaling, images and their shifts, the UCI protocol."""
import math
import sys
import types
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bdl_course import data
from bdl_course.data import DataError


# the verified offline copies: $BDL_COURSE_DATA (tests/conftest.py points it beside the checkout
# when unset), so a clone elsewhere still runs these tests when the variable is given
SHARED_DATA = Path(os.environ.get("BDL_COURSE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
RED = data.WINE_FILES["red"][0]

needs_wine = pytest.mark.skipif(not (SHARED_DATA / RED).is_file(),
                                reason=f"offline Wine Quality copy not found in {SHARED_DATA}")


@pytest.fixture
def no_env(monkeypatch):
    """Tests must not pick up a BDL_COURSE_DATA the developer happens to have set."""
    monkeypatch.delenv("BDL_COURSE_DATA", raising=False)


@pytest.fixture
def good_red():
    if not (SHARED_DATA / RED).is_file():
        pytest.skip(f"offline Wine Quality copy not found in {SHARED_DATA}")
    return SHARED_DATA / RED


def _corrupt_copy(src: Path, folder: Path, how: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / src.name
    raw = bytearray(src.read_bytes())
    if how == "flip":
        raw[len(raw) // 2] ^= 0x01  # one bit: still parses as a CSV, only the checksum can tell
    else:
        raw = raw[: len(raw) - 100]
    dest.write_bytes(bytes(raw))
    return dest


# ---------------------------------------------------------------- toy problem

def test_gap_regression_has_the_requested_shapes_dtype_and_sorted_inputs():
    x, y = data.make_gap_regression(n=41)
    assert x.shape == (41,) and y.shape == (41,)
    assert x.dtype == torch.float64 and y.dtype == torch.float64
    assert torch.all(x[1:] >= x[:-1])


def test_gap_regression_is_seeded():
    x1, y1 = data.make_gap_regression(seed=3)
    x2, y2 = data.make_gap_regression(seed=3)
    x3, y3 = data.make_gap_regression(seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3) and not torch.equal(y1, y3)


def test_gap_regression_is_independent_of_the_global_torch_generator():
    torch.manual_seed(0)
    a = data.make_gap_regression(seed=1)
    torch.manual_seed(99)
    b = data.make_gap_regression(seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_gap_regression_puts_no_input_inside_the_gap_and_half_on_each_side():
    gap = (-0.5, 1.0)
    x, _ = data.make_gap_regression(n=200, gap=gap, low=-2.0, high=2.0, seed=7)
    assert not torch.any((x > gap[0]) & (x < gap[1]))
    assert torch.all((x >= -2.0) & (x <= 2.0))
    assert (x <= gap[0]).sum() == 100 and (x >= gap[1]).sum() == 100


def test_gap_regression_targets_are_the_function_plus_noise_of_the_requested_size():
    x, y = data.make_gap_regression(n=4000, noise_std=0.1, seed=0)
    residual = y - data.gap_function(x)
    assert abs(residual.std().item() - 0.1) < 0.01
    assert abs(residual.mean().item()) < 0.01


@pytest.mark.parametrize("kwargs", [dict(gap=(1.0, -1.0)), dict(low=0.0), dict(n=1), dict(noise_std=0.0)])
def test_gap_regression_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        data.make_gap_regression(**kwargs)


def test_gap_function_keeps_the_shape():
    assert data.gap_function(torch.zeros(2, 3)).shape == (2, 3)


# ---------------------------------------------------------------- Wine Quality: loading

@needs_wine
@pytest.mark.parametrize("color, rows", [("red", 1599), ("white", 4898)])
def test_load_wine_from_bdl_course_data_returns_inputs_and_quality_scores(monkeypatch, tmp_path, color, rows):
    monkeypatch.setenv("BDL_COURSE_DATA", str(SHARED_DATA))
    x, y = data.load_wine(color, data_dir=tmp_path / "unused")
    assert x.shape == (rows, len(data.WINE_FEATURES)) == (rows, 11)
    assert y.shape == (rows,)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(y, y.round()) and y.min() >= 3 and y.max() <= 9
    assert not (tmp_path / "unused").exists()  # nothing downloaded


@needs_wine
def test_bdl_course_data_takes_precedence_over_data_dir(monkeypatch, tmp_path):
    _corrupt_copy(SHARED_DATA / RED, tmp_path / "local", "flip")
    monkeypatch.setenv("BDL_COURSE_DATA", str(SHARED_DATA))
    assert data.wine_path("red", data_dir=tmp_path / "local") == SHARED_DATA / RED


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_corrupted_file_in_bdl_course_data_raises_a_checksum_error(monkeypatch, tmp_path, good_red, how):
    _corrupt_copy(good_red, tmp_path / "env", how)
    monkeypatch.setenv("BDL_COURSE_DATA", str(tmp_path / "env"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="checksum") as info:
        data.load_wine("red", data_dir=empty)
    assert "BDL_COURSE_DATA" in str(info.value)  # says how to get a good copy
    assert list(empty.iterdir()) == []  # and it did not go on to download


def test_a_corrupted_file_in_data_dir_raises_a_checksum_error(no_env, tmp_path, good_red):
    _corrupt_copy(good_red, tmp_path, "flip")
    with pytest.raises(DataError, match="checksum"):
        data.wine_path("red", data_dir=tmp_path)


def test_wine_path_downloads_into_data_dir_when_no_copy_exists_and_reuses_it(no_env, tmp_path, good_red):
    path = data.wine_path("red", data_dir=tmp_path / "d", url=good_red.as_uri())
    assert path == tmp_path / "d" / RED
    assert path.read_bytes() == good_red.read_bytes()
    # the second call finds the verified local copy and never touches the (now bad) url
    assert data.wine_path("red", data_dir=tmp_path / "d", url="file:///nonexistent/x.csv") == path


def test_load_wine_rejects_an_unknown_color_naming_the_argument():
    with pytest.raises(ValueError, match="color must be one of.*rose"):
        data.load_wine("rose")


# ---------------------------------------------------------------- Wine Quality: download

def test_download_of_a_good_file_writes_exactly_that_file_and_no_temporary(tmp_path, good_red):
    dest = tmp_path / "out" / RED
    sha = data.WINE_FILES["red"][1]
    assert data.download(good_red.as_uri(), dest, sha) == dest
    assert dest.read_bytes() == good_red.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == [RED]
    assert dest.stat().st_mode & 0o777 == 0o644, "readable by every user, the grader's sandbox included"


def test_download_of_a_corrupt_file_raises_and_leaves_nothing_behind(tmp_path, good_red):
    bad = _corrupt_copy(good_red, tmp_path / "src", "flip")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="checksum"):
        data.download(bad.as_uri(), out / RED, data.WINE_FILES["red"][1])
    assert list(out.iterdir()) == []  # neither the file nor a .part temporary


def test_a_failed_download_keeps_an_existing_file_untouched(tmp_path, good_red):
    # atomic: the destination is only ever replaced by a verified file
    bad = _corrupt_copy(good_red, tmp_path / "src", "truncate")
    out = tmp_path / "out"
    out.mkdir()
    (out / RED).write_bytes(b"previous content")
    with pytest.raises(DataError):
        data.download(bad.as_uri(), out / RED, data.WINE_FILES["red"][1])
    assert (out / RED).read_bytes() == b"previous content"
    assert sorted(p.name for p in out.iterdir()) == [RED]


@pytest.mark.parametrize("url", ["file:///nonexistent/winequality-red.csv", "http://127.0.0.1:9/winequality-red.csv"])
def test_an_unreachable_url_raises_a_data_error_saying_how_to_get_the_file(tmp_path, url):
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        data.download(url, out / RED, data.WINE_FILES["red"][1], timeout=5)
    message = str(info.value)
    assert url in message
    assert "BDL_COURSE_DATA" in message
    assert data.WINE_URL.format(filename=RED) in message
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- splits

def _rows(n):
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)
    return x, 10 * x[:, 0]


def test_train_test_split_sizes_follow_the_ceiling_of_the_test_fraction():
    x, y = _rows(20)
    x_tr, x_te, y_tr, y_te = data.train_test_split(x, y, test_fraction=0.23)
    assert len(x_te) == len(y_te) == 5  # ceil(4.6)
    assert len(x_tr) == len(y_tr) == 15
    assert x_tr.shape[1:] == x.shape[1:]


def test_train_test_split_is_a_disjoint_cover_that_keeps_rows_paired():
    x, y = _rows(50)
    x_tr, x_te, y_tr, y_te = data.train_test_split(x, y, test_fraction=0.3, seed=1)
    train_ids, test_ids = set(x_tr[:, 0].tolist()), set(x_te[:, 0].tolist())
    assert train_ids.isdisjoint(test_ids)
    assert train_ids | test_ids == set(range(50))
    assert torch.equal(y_tr, 10 * x_tr[:, 0]) and torch.equal(y_te, 10 * x_te[:, 0])


def test_train_test_split_is_seeded():
    x, y = _rows(30)
    a = data.train_test_split(x, y, seed=5)
    b = data.train_test_split(x, y, seed=5)
    c = data.train_test_split(x, y, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_train_test_split_is_not_fooled_by_floating_point_rounding_of_the_fraction():
    x, y = _rows(100)
    _, x_te, _, _ = data.train_test_split(x, y, test_fraction=0.07)
    assert len(x_te) == 7


def test_train_test_split_refuses_to_leave_an_empty_training_set():
    x, y = _rows(2)
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(x, y, test_fraction=0.9)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_test_split_rejects_a_fraction_outside_the_open_unit_interval(fraction):
    x, y = _rows(10)
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(x, y, test_fraction=fraction)


def test_train_test_split_rejects_x_and_y_of_different_lengths():
    with pytest.raises(ValueError, match="same number of rows"):
        data.train_test_split(torch.zeros(5, 2), torch.zeros(4))


# ---------------------------------------------------------------- standardisation

def test_standardizer_round_trip_recovers_the_data():
    t = torch.randn(20, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1], dtype=torch.float64) + 7
    s = data.Standardizer.fit(t)
    torch.testing.assert_close(s.inverse(s.transform(t)), t)


def test_standardizer_makes_the_training_columns_zero_mean_unit_std():
    t = torch.randn(30, 4, dtype=torch.float64) * 3 + 2
    z = data.Standardizer.fit(t).transform(t)
    torch.testing.assert_close(z.mean(0), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(z.std(0), torch.ones(4, dtype=torch.float64))


def test_standardizer_uses_training_statistics_only():
    train = torch.tensor([[0.0], [2.0], [4.0]])
    test = torch.tensor([[100.0], [102.0]])
    s = data.Standardizer.fit(train)
    assert s.mean.shape == (1,) and s.std.shape == (1,)
    torch.testing.assert_close(s.transform(test), (test - 2.0) / 2.0)  # train mean 2, std 2


def test_standardizer_leaves_a_constant_column_unscaled_instead_of_dividing_by_zero():
    t = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    s = data.Standardizer.fit(t)
    assert s.std[1] == 1.0
    z = s.transform(t)
    assert torch.isfinite(z).all() and torch.all(z[:, 1] == 0)


def test_standardizer_needs_at_least_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        data.Standardizer.fit(torch.zeros(1, 3))


# ---------------------------------------------------------------- data

def test_sine_regression_has_sorted_inputs_in_range_and_the_requested_noise():
    x, y = data.make_sine_regression(n=2000, noise_std=0.2, seed=0, low=-1.0, high=2.0)
    assert x.shape == y.shape == (2000,) and x.dtype == torch.float32
    assert torch.all(x[1:] >= x[:-1]) and x.min() >= -1.0 and x.max() <= 2.0
    assert (y - torch.sin(x)).std().item() == pytest.approx(0.2, rel=0.1)


def test_sine_regression_is_seeded_by_its_argument_only():
    torch.manual_seed(1)
    a = data.make_sine_regression(n=10, seed=3)
    torch.manual_seed(2)
    b = data.make_sine_regression(n=10, seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], data.make_sine_regression(n=10, seed=4)[0])


@pytest.mark.parametrize("kwargs, name", [(dict(n=0), "n"), (dict(noise_std=0.0), "noise_std"),
                                          (dict(low=1.0, high=1.0), "low < high")])
def test_sine_regression_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.make_sine_regression(**kwargs)


def test_load_iris_returns_150_flowers_4_measurements_3_balanced_classes():
    x, y = data.load_iris()
    assert x.shape == (150, 4) and x.dtype == torch.float32
    assert y.shape == (150,) and y.dtype == torch.int64
    assert y.bincount().tolist() == [50, 50, 50]
    assert torch.isfinite(x).all() and (x > 0).all()  # lengths in cm


CLUSTERS = dict(fractions=(0.3, 0.4, 0.3), offsets=(-2.5, 0.0, 2.5), spreads=(0.75, 0.75, 0.75),
                noise_stds=(0.1, 0.45, 0.25))


# ---------------------------------------------------------------- make_cluster_regression

def test_cluster_regression_returns_sorted_inputs_targets_and_cluster_labels():
    x, y, c = data.make_cluster_regression(500, **CLUSTERS, seed=0)
    assert x.shape == y.shape == c.shape == (500,)
    assert x.dtype == y.dtype == torch.float32 and c.dtype == torch.int64
    assert torch.all(x[1:] >= x[:-1])
    assert torch.equal(c, torch.sort(c).values)  # clusters are ordered along x, so labels follow


def test_cluster_sizes_follow_the_fractions_and_add_up_to_n():
    _, _, c = data.make_cluster_regression(101, fractions=(0.5, 0.25, 0.25), offsets=(0, 3, 6),
                                           spreads=(1, 1, 1), noise_stds=(1, 1, 1))
    counts = torch.bincount(c).tolist()
    assert counts == [51, 25, 25]  # 50.5, 25.25, 25.25: the leftover point goes to the largest remainder


def test_each_cluster_stays_within_its_range_and_has_its_own_noise_level():
    x, y, c = data.make_cluster_regression(30000, **CLUSTERS, seed=3)
    for k, (o, s, noise) in enumerate(zip(CLUSTERS["offsets"], CLUSTERS["spreads"], CLUSTERS["noise_stds"])):
        xk, yk = x[c == k], y[c == k]
        assert xk.min() >= o - s and xk.max() <= o + s
        assert xk.min() < o - 0.95 * s and xk.max() > o + 0.95 * s  # uniform over the whole range
        residual_std = (yk - data.gap_function(xk)).std().item()
        assert residual_std == pytest.approx(noise, rel=0.05)
    # nothing in the gaps
    assert not ((x > -1.75) & (x < -0.75)).any() and not ((x > 0.75) & (x < 1.75)).any()


def test_cluster_regression_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = data.make_cluster_regression(50, **CLUSTERS, seed=7)
    assert torch.equal(torch.rand(1), before)
    b = data.make_cluster_regression(50, **CLUSTERS, seed=7)
    c = data.make_cluster_regression(50, **CLUSTERS, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("change, match", [
    (dict(fractions=(0.5, 0.4, 0.3)), "fractions"),
    (dict(fractions=(1.2, -0.2, 0.0)), "fractions"),
    (dict(offsets=(0.0, 1.0)), "one entry per cluster"),
    (dict(offsets=(-2.5, 0.0, 1.0)), "gap"),        # clusters 1 and 2 overlap
    (dict(offsets=(2.5, 0.0, -2.5)), "gap"),        # not increasing
    (dict(noise_stds=(0.1, 0.0, 0.2)), "noise_stds"),
    (dict(spreads=(0.75, -1.0, 0.75)), "spreads"),
])
def test_cluster_regression_rejects_bad_cluster_definitions(change, match):
    with pytest.raises(ValueError, match=match):
        data.make_cluster_regression(100, **{**CLUSTERS, **change})


def test_cluster_regression_rejects_an_n_that_leaves_a_cluster_empty():
    with pytest.raises(ValueError, match="empty"):
        data.make_cluster_regression(2, **CLUSTERS)


# ---------------------------------------------------------------- image data and shifts

def test_load_images_digits_is_a_held_out_split_of_8x8_images_in_the_unit_interval():
    d = data.load_images("digits", test_fraction=0.2, seed=0)
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert 0 <= d.x_train.min() and d.x_train.max() == 1
    assert d.classes == tuple("0123456789")
    again = data.load_images("digits", test_fraction=0.2, seed=0)
    assert torch.equal(d.x_test, again.x_test)
    small = data.load_images("digits", max_train=100, max_test=10)
    assert small.x_train.shape[0] == 100 and small.x_test.shape[0] == 10


def test_load_images_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_images("imagenet")


def test_torchvision_sets_need_torchvision_and_say_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(ImportError, match="torchvision"):
        data.load_images("mnist")


def test_torchvision_sets_go_through_the_torchvision_loaders(monkeypatch, tmp_path):
    calls = []

    class FakeMNIST:
        classes = [f"{i} - digit" for i in range(10)]

        def __init__(self, root, train, download):
            calls.append((root, train, download))
            n = 50 if train else 20
            self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
            self.targets = torch.randint(0, 10, (n,))

    class FakeCIFAR10:
        classes = ["airplane"] + [f"c{i}" for i in range(9)]

        def __init__(self, root, train, download):
            n = 30 if train else 10
            self.data = np.random.randint(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(np.random.randint(0, 10, n))

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=FakeMNIST, CIFAR10=FakeCIFAR10)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    mnist = data.load_images("mnist", data_dir=tmp_path, max_train=40)
    assert mnist.x_train.shape == (40, 1, 28, 28) and mnist.x_test.shape == (20, 1, 28, 28)
    assert 0 <= mnist.x_train.min() and mnist.x_train.max() <= 1 and mnist.y_train.dtype == torch.int64
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    cifar = data.load_images("cifar10", data_dir=tmp_path)
    assert cifar.x_train.shape == (30, 3, 32, 32) and cifar.classes[0] == "airplane"


def test_a_failed_torchvision_download_raises_a_data_error_that_says_what_to_do(monkeypatch, tmp_path):
    class Offline:
        def __init__(self, root, train, download):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=Offline, CIFAR10=Offline)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(data.DataError, match="internet.*digits"):
        data.load_images("mnist", data_dir=tmp_path)


def test_rotate_images_by_0_and_360_degrees_is_the_identity_and_by_90_moves_the_top_row_left():
    x = data.load_images("digits").x_test[:5]
    torch.testing.assert_close(data.rotate_images(x, 0), x)
    torch.testing.assert_close(data.rotate_images(x, 360), x, atol=1e-5, rtol=0)
    bar = torch.zeros(1, 1, 8, 8)
    bar[0, 0, 0, 2:6] = 1.0  # a bar along the top edge
    turned = data.rotate_images(bar, 90)  # counter-clockwise: now along the left edge
    torch.testing.assert_close(turned[0, 0, 2:6, 0], torch.ones(4))
    assert turned[0, 0, 0].sum() == 0
    with pytest.raises(ValueError, match="degrees"):
        data.rotate_images(x, math.nan)


def test_noise_and_photo_patches_have_the_requested_shape_and_range_and_are_seeded():
    noise = data.noise_images(6, channels=3, size=12, seed=1)
    assert noise.shape == (6, 3, 12, 12) and 0 <= noise.min() and noise.max() <= 1
    torch.testing.assert_close(noise, data.noise_images(6, channels=3, size=12, seed=1))
    photos = data.natural_image_patches(5, channels=1, size=8, seed=2)
    assert photos.shape == (5, 1, 8, 8)
    torch.testing.assert_close(photos.amin(dim=(1, 2, 3)), torch.zeros(5))
    torch.testing.assert_close(photos.amax(dim=(1, 2, 3)), torch.ones(5))
    torch.testing.assert_close(photos, data.natural_image_patches(5, channels=1, size=8, seed=2))
    assert data.natural_image_patches(2, channels=3, size=8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="channels"):
        data.natural_image_patches(2, channels=2)
