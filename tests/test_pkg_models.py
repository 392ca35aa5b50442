"""Specification of bdl_course.models: MLPs, regressors with Gaussian heads, RBF features, LeNets."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bdl_course import bnn, metrics, models, predict
from bdl_course.layers import BayesConv2d, BayesLinear
from conftest import randomised


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


# ---------------------------------------------------------------- HeteroskedasticRegressor

def test_heteroskedastic_regressor_returns_mean_and_std_of_shape_n_or_s_by_n():
    reg = models.HeteroskedasticRegressor(models.bayes_mlp(3, 8, 2))
    mean, std = reg(torch.randn(5, 3))
    assert mean.shape == std.shape == (5,)
    mean, std = reg(torch.randn(4, 5, 3))
    assert mean.shape == std.shape == (4, 5)


def test_mean_is_unit_0_and_std_is_softplus_of_unit_1_plus_the_floor():
    body = models.mlp(3, 4, 2)
    x = torch.randn(6, 3)
    mean, std = models.HeteroskedasticRegressor(body, min_std=0.05)(x)
    out = body(x)
    torch.testing.assert_close(mean, out[:, 0])
    torch.testing.assert_close(std, torch.log1p(torch.exp(out[:, 1])) + 0.05)


def test_std_is_positive_and_floored_whatever_the_raw_output():
    body = nn.Linear(1, 2)
    reg = models.HeteroskedasticRegressor(body, min_std=1e-3)
    with torch.no_grad():
        body.weight.zero_()
        body.bias.copy_(torch.tensor([0.0, -1e4]))
    _, std = reg(torch.zeros(3, 1))
    assert torch.all(std >= 1e-3) and torch.all(torch.isfinite(std))
    with torch.no_grad():
        body.bias.copy_(torch.tensor([0.0, 80.0]))
    _, std = reg(torch.zeros(3, 1))
    assert torch.allclose(std, torch.full((3,), 80.001))


def test_gradients_reach_the_body_through_mean_and_std():
    reg = models.HeteroskedasticRegressor(models.mlp(1, 4, 2))
    mean, std = reg(torch.randn(8, 1))
    metrics.gaussian_nll(torch.randn(8), mean, std).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in reg.parameters())


def test_heteroskedastic_regressor_rejects_a_body_without_two_outputs():
    with pytest.raises(ValueError, match="two output units"):
        models.HeteroskedasticRegressor(models.mlp(3, 4, 1))(torch.randn(5, 3))


@pytest.mark.parametrize("bad", [0.0, -1e-3, math.nan])
def test_heteroskedastic_regressor_rejects_a_non_positive_floor(bad):
    with pytest.raises(ValueError, match="min_std"):
        models.HeteroskedasticRegressor(models.mlp(3, 4, 2), min_std=bad)


# ---------------------------------------------------------------- RBFFeatures

def test_rbf_features_are_gaussian_bumps_of_the_input():
    layer = models.RBFFeatures(torch.tensor([-1.0, 0.0, 2.0]), lengthscale=0.5)
    x = torch.tensor([[0.0], [2.0], [0.5]])
    expected = torch.exp(-0.5 * ((x - torch.tensor([-1.0, 0.0, 2.0])) / 0.5) ** 2)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x)[0, 1] == 1 and layer(x)[1, 2] == 1  # 1 at its own center


def test_rbf_features_pass_leading_dimensions_and_follow_the_module_to_a_device_or_dtype():
    layer = models.RBFFeatures(torch.linspace(-4, 4, 9), 0.25)
    assert layer(torch.randn(3, 5, 1)).shape == (3, 5, 9)
    assert "centers" in layer.state_dict() and not list(layer.parameters())  # a buffer, not trained
    assert layer.double()(torch.randn(2, 1, dtype=torch.float64)).dtype == torch.float64


def test_rbf_features_reject_inputs_that_are_not_one_scalar_per_row():
    layer = models.RBFFeatures([0.0, 1.0], 1.0)
    for bad in [torch.zeros(4), torch.zeros(4, 2)]:
        with pytest.raises(ValueError, match=r"\[\.\.\., 1\]"):
            layer(bad)


@pytest.mark.parametrize("centers, lengthscale, match", [
    ([], 1.0, "centers"), ([[0.0, 1.0]], 1.0, "centers"), ([0.0, math.inf], 1.0, "centers"),
    ([0.0, 1.0], 0.0, "lengthscale"), ([0.0, 1.0], -2.0, "lengthscale"),
])
def test_rbf_features_reject_bad_centers_or_lengthscale(centers, lengthscale, match):
    with pytest.raises(ValueError, match=match):
        models.RBFFeatures(centers, lengthscale)


# ---------------------------------------------------------------- LeNets

def test_bayes_lenet_maps_images_to_logits_with_and_without_samples():
    net = models.bayes_lenet(1, 8, 10, channels=(4, 6), hidden=(12,))
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert net(torch.randn(3, 5, 1, 8, 8)).shape == (3, 5, 10)
    kinds = [type(m) for m in bnn.bayes_layers(net)]
    assert kinds == [BayesConv2d, BayesConv2d, BayesLinear, BayesLinear]
    assert bnn.num_stochastic(net) == (1 * 4 * 9 + 4) + (4 * 6 * 9 + 6) + (6 * 4 * 12 + 12) + (12 * 10 + 10)


def test_lenet_is_the_deterministic_twin_with_the_same_parameter_count_and_leading_dimensions():
    net = models.lenet(3, 32, 10, channels=(6, 16))
    bayes = models.bayes_lenet(3, 32, 10, channels=(6, 16))
    assert sum(p.numel() for p in net.parameters()) == bnn.num_stochastic(bayes)
    x = torch.randn(4, 3, 32, 32)
    out = net(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(net(x.unsqueeze(0).expand(2, *x.shape)), out.expand(2, 4, 10))


def test_a_frozen_bayes_lenet_equals_a_lenet_with_its_mean_weights():
    bayes = randomised(models.bayes_lenet(1, 8, 3, channels=(2, 3), hidden=4))
    net = models.lenet(1, 8, 3, channels=(2, 3), hidden=4)
    with torch.no_grad():
        for b, d in zip(bnn.bayes_layers(bayes), [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]):
            d.weight.copy_(b.weight_mu)
            d.bias.copy_(b.bias_mu)
            b.freeze()
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(bayes(x), net(x))
    # max-pool then ReLU as in torch's own layers
    h = x
    for conv in [m for m in net.modules() if isinstance(m, nn.Conv2d)]:
        h = F.max_pool2d(F.relu(conv(h)), 2)
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    torch.testing.assert_close(net(x), dense[1](F.relu(dense[0](h.flatten(1)))))


@pytest.mark.parametrize("kwargs, name", [(dict(image_size=6), "image_size"), (dict(kernel_size=4), "kernel_size"),
                                          (dict(channels=(4,)), "channels"), (dict(n_classes=1), "n_classes"),
                                          (dict(hidden=(0,)), "hidden")])
def test_lenet_builders_reject_bad_arguments_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        models.bayes_lenet(**kwargs)
    with pytest.raises(ValueError, match=name):
        models.lenet(**kwargs)


def test_lenet_rejects_images_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"\[N, 1, 8, 8\]"):
        models.lenet()(torch.randn(2, 1, 28, 28))


def test_the_categorical_predictive_of_a_lenet_is_normalised_per_sample_in_batches():
    from bdl_course import likelihoods

    torch.manual_seed(0)
    net = models.bayes_lenet(1, 8, 10, init_sigma=0.3)
    x = torch.rand(7, 1, 8, 8)
    lik = likelihoods.Categorical(7)
    lp = predict.predictive(net, x, lik, n_samples=4, batch_size=3).logits
    assert lp.shape == (4, 7, 10) and not lp.requires_grad
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(4, 7))
    assert not torch.allclose(lp[0], lp[1])
    cnn = models.lenet()
    same = predict.predictive(cnn, x, lik).logits
    torch.testing.assert_close(same[0], torch.log_softmax(cnn(x), -1))
    with pytest.raises(ValueError, match="x must"):
        predict.predictive(cnn, torch.zeros(0, 1, 8, 8), lik)