"""Specification of bdl_course.utils: seeding, device choice and the input checks."""
import math
import random

import numpy as np
import pytest
import torch

from bdl_course import utils


# ---------------------------------------------------------------- check_tensor

def test_check_tensor_returns_a_valid_tensor_unchanged():
    t = torch.randn(3, 2)
    assert utils.check_tensor("x", t, ndim=2, last_dim=2) is t


def test_check_tensor_rejects_a_non_tensor_with_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="features.*torch.Tensor.*list"):
        utils.check_tensor("features", [1.0, 2.0])


def test_check_tensor_rejects_an_integer_tensor():
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        utils.check_tensor("x", torch.arange(3))


@pytest.mark.parametrize("ndim", [1, (1, 3)])
def test_check_tensor_rejects_the_wrong_number_of_dimensions_and_reports_the_shape(ndim):
    with pytest.raises(ValueError, match=r"x must have .*dimensions, got shape \(2, 3\)"):
        utils.check_tensor("x", torch.zeros(2, 3), ndim=ndim)


def test_check_tensor_accepts_any_of_several_allowed_ranks():
    for t in (torch.zeros(2, 3), torch.zeros(2, 3, 4)):
        assert utils.check_tensor("x", t, ndim=(2, 3)) is t


def test_check_tensor_with_finite_false_lets_nan_and_inf_through_but_still_checks_the_type():
    t = torch.tensor([0.0, -math.inf, math.nan])
    assert utils.check_tensor("x", t, finite=False) is t
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        utils.check_tensor("x", [0.0], finite=False)


def test_check_tensor_rejects_the_wrong_last_dimension():
    with pytest.raises(ValueError, match=r"last dimension 4, got shape \(2, 3\)"):
        utils.check_tensor("x", torch.zeros(2, 3), last_dim=4)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_tensor_rejects_nan_and_inf_and_names_the_argument(bad):
    t = torch.zeros(4)
    t[2] = bad
    with pytest.raises(ValueError, match="targets contains NaN or infinite values"):
        utils.check_tensor("targets", t)


# ---------------------------------------------------------------- check_positive

@pytest.mark.parametrize("ok", [1e-6, 2, 3.5, np.float64(0.1), torch.tensor([0.1, 2.0]), torch.tensor(1.0)])
def test_check_positive_accepts_strictly_positive_finite_scales(ok):
    assert utils.check_positive("sigma", ok) is None


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5, math.nan, math.inf,
                                 torch.tensor([1.0, 0.0]), torch.tensor([1.0, math.nan]), torch.tensor(-2.0)])
def test_check_positive_rejects_zero_negative_and_nonfinite_values_with_a_value_error(bad):
    with pytest.raises(ValueError, match="sigma must be positive and finite"):
        utils.check_positive("sigma", bad)


@pytest.mark.parametrize("bad", [True, False, "1.0", None, [1.0]])
def test_check_positive_rejects_bool_and_non_numbers_with_a_type_error(bad):
    # bool is an int subclass, so True would otherwise pass as 1
    with pytest.raises(TypeError, match="sigma must be a positive number or tensor"):
        utils.check_positive("sigma", bad)


# ---------------------------------------------------------------- check_int

def test_check_int_returns_the_value_and_respects_the_minimum():
    assert utils.check_int("n", 5) == 5
    assert utils.check_int("n", 0, minimum=0) == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_check_int_rejects_a_value_below_the_minimum_with_a_value_error(bad):
    with pytest.raises(ValueError, match="n must be an int >= 1, got"):
        utils.check_int("n", bad)


@pytest.mark.parametrize("bad", [2.0, True, "3", None])
def test_check_int_rejects_non_int_and_bool_values_with_a_type_error(bad):
    with pytest.raises(TypeError, match="n must be an int >= 1, got"):
        utils.check_int("n", bad)


# ---------------------------------------------------------------- seeding and devices

def test_seed_everything_makes_torch_numpy_and_python_random_repeat():
    def draw():
        return torch.randn(5), np.random.rand(5), random.random()

    utils.seed_everything(123)
    first = draw()
    utils.seed_everything(123)
    second = draw()
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    utils.seed_everything(124)
    assert not torch.equal(first[0], torch.randn(5))


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                        ("0", TypeError), (None, TypeError)])
def test_seed_everything_rejects_anything_but_a_non_negative_int(bad, error):
    with pytest.raises(error, match="seed must be a non-negative int"):
        utils.seed_everything(bad)


def test_get_device_returns_the_requested_device():
    assert utils.get_device("cpu") == torch.device("cpu")
    assert utils.get_device(torch.device("cpu")) == torch.device("cpu")


def test_get_device_picks_cuda_exactly_when_torch_reports_it(monkeypatch):
    # both branches run on any machine: the availability torch reports is what is decided on
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert utils.get_device() == torch.device("cpu")


# ---------------------------------------------------------------- one exception type per kind of mistake

def _calls():
    from bdl_course import data, ensembles, layers, models, train

    net = models.mlp(1, 2, 1)
    x, y = torch.zeros(4, 1), torch.zeros(4)
    ens = ensembles.GaussianEnsemble(2, 1, 3)
    return {
        "image_size": (lambda v: models.lenet(image_size=v), 8.0, 6),
        "x (LeNet)": (lambda v: models.lenet()(v), [[0.0]], torch.zeros(2, 1, 4, 4)),
        "x (BayesConv2d)": (lambda v: layers.BayesConv2d(1, 2, 3)(v), [[0.0]], torch.zeros(2, 3, 4, 4)),
        "dropout": (lambda v: ensembles.GaussianEnsemble(2, 1, 3, dropout=v), "0.1", 1.5),
        "j": (lambda v: ens.member(v), 1.0, 5),
        "lr": (lambda v: train.fit(net, x, y, lambda m, a, b: m(a).sum(), 1, 2, lr=v, progress=False), "0.1", 0.0),
        "degrees": (lambda v: data.rotate_images(torch.zeros(1, 1, 4, 4), v), "90", float("nan")),
    }


@pytest.mark.parametrize("name", list(_calls()))
def test_a_wrong_type_raises_type_error_and_a_wrong_value_value_error(name):
    call, wrong_type, wrong_value = _calls()[name]
    with pytest.raises(TypeError):
        call(wrong_type)
    with pytest.raises(ValueError):
        call(wrong_value)


def test_get_devices_lists_every_gpu_or_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert utils.get_devices() == [torch.device("cuda:0"), torch.device("cuda:1")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert utils.get_devices() == [torch.device("cpu")]
