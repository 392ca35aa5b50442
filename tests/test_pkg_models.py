"""Specification of bdl_course.models: mlp, bayes_mlp and the Gaussian regression head."""
import pytest
import torch
from torch import nn

from bdl_course import models
from bdl_course.layers import BayesLinear


# ---------------------------------------------------------------- mlp

@pytest.mark.parametrize("hidden", [8, [8, 4]])
def test_mlp_maps_in_features_to_out_features_and_passes_leading_dimensions(hidden):
    net = models.mlp(3, hidden, 2)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert net(torch.randn(4, 5, 3)).shape == (4, 5, 2)


def test_mlp_is_linear_relu_layers_ending_in_a_linear_layer():
    net = models.mlp(3, [8, 4], 2)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)] == [(3, 8), (8, 4), (4, 2)]


@pytest.mark.parametrize("args, error", [((0, 4, 1), ValueError), ((3, 0, 1), ValueError), ((3, [4, 0], 1), ValueError),
                                         ((3, 4, 0), ValueError), ((3, [4, 2.5], 1), TypeError)])
def test_mlp_rejects_a_layer_size_that_is_not_a_positive_int(args, error):
    with pytest.raises(error, match="layer size"):
        models.mlp(*args)


# ---------------------------------------------------------------- bayes_mlp

def test_bayes_mlp_maps_n_by_in_and_s_by_n_by_in():
    net = models.bayes_mlp(3, [8, 4], 2)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert net(torch.randn(6, 5, 3)).shape == (6, 5, 2)


def test_bayes_mlp_uses_bayesian_layers_with_the_given_prior_and_init_sigma():
    net = models.bayes_mlp(3, 8, 1, prior_sigma=0.5, prior_mu=0.1, init_sigma=0.02)
    bayes = [m for m in net if isinstance(m, BayesLinear)]
    assert len(bayes) == 2 and not any(type(m) is nn.Linear for m in net)
    assert isinstance(net[-1], BayesLinear)
    for layer in bayes:
        assert (layer.prior_mu, layer.prior_sigma) == (0.1, 0.5)
        torch.testing.assert_close(layer.weight_sigma, torch.full_like(layer.weight_sigma, 0.02))


# ---------------------------------------------------------------- GaussianRegressor

def test_gaussian_regressor_drops_the_last_dimension_of_the_body_output():
    reg = models.GaussianRegressor(models.bayes_mlp(3, 8, 1))
    assert reg(torch.randn(5, 3)).shape == (5,)
    assert reg(torch.randn(4, 5, 3)).shape == (4, 5)


def test_gaussian_regressor_returns_exactly_the_body_mean():
    body = models.mlp(3, 4, 1)
    x = torch.randn(5, 3)
    torch.testing.assert_close(models.GaussianRegressor(body)(x), body(x)[:, 0])


def test_gaussian_regressor_rejects_a_body_with_two_outputs():
    reg = models.GaussianRegressor(models.mlp(3, 4, 2))
    with pytest.raises(ValueError, match="one output unit"):
        reg(torch.randn(5, 3))


def test_noise_std_starts_at_init_noise_std():
    reg = models.GaussianRegressor(models.mlp(1, 4, 1), init_noise_std=0.3, min_noise_std=0.01)
    assert reg.noise_std.shape == ()
    assert abs(reg.noise_std.item() - 0.3) < 1e-6


def test_noise_std_stays_above_min_noise_std_whatever_the_raw_parameter():
    reg = models.GaussianRegressor(models.mlp(1, 4, 1), min_noise_std=0.05)
    for raw in [-1e4, -50.0, 0.0, 50.0]:
        with torch.no_grad():
            reg.raw_noise.fill_(raw)
        assert reg.noise_std.item() >= 0.05 and torch.isfinite(reg.noise_std)
    with torch.no_grad():
        reg.raw_noise.fill_(-3.0)
    assert reg.noise_std.item() > 0.05


def test_noise_std_is_a_trained_parameter():
    reg = models.GaussianRegressor(models.mlp(1, 4, 1))
    assert any(p is reg.raw_noise for p in reg.parameters())
    reg.noise_std.backward()
    assert reg.raw_noise.grad is not None and reg.raw_noise.grad != 0


@pytest.mark.parametrize("init, floor", [(0.01, 0.01), (0.005, 0.01), (0.0, 1e-3), (1.0, 0.0)])
def test_gaussian_regressor_rejects_an_initial_noise_at_or_below_the_floor(init, floor):
    with pytest.raises(ValueError, match="noise_std"):
        models.GaussianRegressor(models.mlp(1, 4, 1), init_noise_std=init, min_noise_std=floor)
