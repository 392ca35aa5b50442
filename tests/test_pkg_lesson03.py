"""Specification of the package code lesson 03 uses: the local reparameterisation trick,
posterior samples as ordinary networks, parameter averaging, the mean network, the sine and
iris data, accuracy, sample curves, and fitting a classifier."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bdl_course import data, layers, metrics, models, plots, train  # noqa: E402
from bdl_course.layers import BayesLinear  # noqa: E402

F64 = torch.float64


def _randomised(layer: BayesLinear, seed: int = 0) -> BayesLinear:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) - (1.0 if name.endswith("rho") else 0.0))
    return layer


# ---------------------------------------------------------------- local_reparam_linear

def test_local_reparam_samples_have_the_mean_and_variance_of_the_gaussian_pre_activations():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    w_mu, w_sigma = torch.randn(2, 3, generator=g, dtype=F64), torch.rand(2, 3, generator=g, dtype=F64) + 0.1
    b_mu, b_sigma = torch.randn(2, generator=g, dtype=F64), torch.rand(2, generator=g, dtype=F64) + 0.1
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=F64)
    out = layers.local_reparam_linear(x.expand(40000, 3), w_mu, w_sigma, b_mu, b_sigma)  # [40000, 2]
    mean = x @ w_mu.T + b_mu
    std = (x ** 2 @ (w_sigma ** 2).T + b_sigma ** 2).sqrt()
    torch.testing.assert_close(out.mean(0, keepdim=True), mean, rtol=0, atol=(5 * std / 200).max().item())
    torch.testing.assert_close(out.std(0, keepdim=True), std, rtol=0.02, atol=0)


def test_local_reparam_gives_every_example_its_own_noise():
    torch.manual_seed(0)
    x = torch.ones(4, 3)  # four identical examples
    out = layers.local_reparam_linear(x, torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2), torch.ones(2))
    assert out.shape == (4, 2)
    assert len({tuple(row.tolist()) for row in out}) == 4


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3)])
def test_local_reparam_keeps_leading_dimensions_and_works_without_bias(shape):
    out = layers.local_reparam_linear(torch.randn(*shape), torch.randn(2, 3), torch.rand(2, 3))
    assert out.shape == (*shape[:-1], 2)


def test_local_reparam_with_zero_variance_is_the_mean_and_gradients_stay_finite():
    w_mu = torch.randn(2, 3, requires_grad=True)
    w_sigma = torch.full((2, 3), 0.5, requires_grad=True)
    x = torch.zeros(4, 3)  # no bias, zero input: variance exactly 0
    out = layers.local_reparam_linear(x, w_mu, w_sigma)
    torch.testing.assert_close(out, torch.zeros(4, 2), atol=1e-7, rtol=0)
    out.sum().backward()
    assert torch.isfinite(w_mu.grad).all() and torch.isfinite(w_sigma.grad).all()


def test_local_reparam_gradients_reach_every_mean_and_std():
    params = [torch.randn(2, 3), torch.rand(2, 3) + 0.1, torch.randn(2), torch.rand(2) + 0.1]
    for p in params:
        p.requires_grad_()
    layers.local_reparam_linear(torch.randn(5, 3), *params).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize("args, name", [
    (dict(x=torch.randn(5, 4)), "x"),
    (dict(weight_sigma=torch.ones(3, 2)), "weight_sigma"),
    (dict(weight_mu=torch.ones(3), weight_sigma=torch.ones(3)), "weight_mu"),
    (dict(bias_mu=torch.zeros(2)), "bias_sigma"),
    (dict(bias_mu=torch.zeros(3), bias_sigma=torch.ones(3)), "bias_mu"),
])
def test_local_reparam_rejects_mismatched_shapes_naming_the_argument(args, name):
    full = dict(x=torch.randn(5, 3), weight_mu=torch.zeros(2, 3), weight_sigma=torch.ones(2, 3),
                bias_mu=None, bias_sigma=None)
    full.update(args)
    with pytest.raises(ValueError, match=name):
        layers.local_reparam_linear(**full)


# ---------------------------------------------------------------- BayesLinear(local_reparam=True)

def test_a_local_reparam_layer_has_the_same_output_distribution_as_a_sampling_one():
    torch.manual_seed(0)
    layer = _randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64).expand(30000, 1, 3)
    plain = layer(x)[:, 0]
    layer.local_reparam = True
    local = layer(x)[:, 0]
    assert local.shape == plain.shape == (30000, 2)
    torch.testing.assert_close(local.mean(0), plain.mean(0), rtol=0, atol=(5 * plain.std(0) / 120).max().item())
    torch.testing.assert_close(local.std(0), plain.std(0), rtol=0.03, atol=0)


def test_local_reparam_is_a_constructor_flag_and_switchable_and_freeze_still_wins():
    layer = BayesLinear(3, 2, init_sigma=0.5, local_reparam=True, prior_mu=0.0, prior_sigma=1.0)
    assert layer.local_reparam and "local_reparam=True" in repr(layer)
    x = torch.ones(4, 3)
    out = layer(x)
    assert not torch.allclose(out[0], out[1])  # identical rows, different noise
    layer.local_reparam = False
    out = layer(x)
    torch.testing.assert_close(out[0], out[1])  # one weight sample shared by the batch
    layer.local_reparam = True
    layer.freeze()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight_mu, layer.bias_mu))


# ---------------------------------------------------------------- sample_network, frozen

def _nested_bayes_net() -> nn.Module:
    return nn.Sequential(BayesLinear(2, 4, init_sigma=0.3, prior_mu=0.0, prior_sigma=1.0), nn.ReLU(),
                         nn.Sequential(nn.Linear(4, 4), nn.ModuleList([BayesLinear(4, 1, bias=False, prior_mu=0.0, prior_sigma=1.0)])))


def test_sample_network_replaces_every_bayes_linear_by_a_linear_and_leaves_the_model_alone():
    model = _nested_bayes_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = layers.sample_network(model)
    assert layers.bayes_layers(net) == []
    assert isinstance(net[0], nn.Linear) and isinstance(net[2][1][0], nn.Linear) and net[2][1][0].bias is None
    torch.testing.assert_close(net[2][0].weight, model[2][0].weight)  # ordinary layers are copied
    assert net[2][0] is not model[2][0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert isinstance(model[0], BayesLinear)


def test_each_sampled_network_holds_a_fresh_draw_near_the_posterior():
    torch.manual_seed(0)
    layer = _randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0))
    draws = torch.stack([layers.sample_network(layer).weight.detach() for _ in range(4000)])
    assert not torch.equal(draws[0], draws[1])
    torch.testing.assert_close(draws.mean(0), layer.weight_mu.detach(), rtol=0, atol=0.1)
    torch.testing.assert_close(draws.std(0), layer.weight_sigma.detach(), rtol=0.1, atol=0)


def test_a_frozen_layer_samples_its_mean_weights():
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0).freeze()
    net = layers.sample_network(layer)
    torch.testing.assert_close(net.weight, layer.weight_mu)
    torch.testing.assert_close(net.bias, layer.bias_mu)


def test_a_shared_bayesian_layer_becomes_one_shared_linear_layer():
    shared = BayesLinear(3, 3, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0)
    net = layers.sample_network(nn.Sequential(shared, nn.ReLU(), shared))
    assert net[0] is net[2] and isinstance(net[0], nn.Linear)


def test_sample_network_rejects_what_is_not_a_module():
    with pytest.raises(TypeError, match="model"):
        layers.sample_network([BayesLinear(2, 2, prior_mu=0.0, prior_sigma=1.0)])


def test_frozen_evaluates_the_mean_network_and_restores_each_layers_state():
    model = models.bayes_mlp(2, 8, 1, init_sigma=0.5)
    model[2].freeze()  # one layer was frozen before and must stay frozen
    x = torch.randn(5, 2)
    with layers.frozen(model):
        torch.testing.assert_close(model(x), model(x))
        expected = F.linear(F.relu(F.linear(x, model[0].weight_mu, model[0].bias_mu)), model[2].weight_mu, model[2].bias_mu)
        torch.testing.assert_close(model(x), expected)
    assert [layer.frozen for layer in layers.bayes_layers(model)] == [False, True]
    with pytest.raises(RuntimeError):
        with layers.frozen(model):
            raise RuntimeError("inside")
    assert [layer.frozen for layer in layers.bayes_layers(model)] == [False, True]


# ---------------------------------------------------------------- average_parameters

def _plain_nets(n: int, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Sequential(nn.Linear(3, 1, bias=False))) for _ in range(n)]


def test_average_parameters_is_the_elementwise_mean_in_a_new_network():
    nets = _plain_nets(5)
    before = [{k: v.clone() for k, v in net.state_dict().items()} for net in nets]
    avg = layers.average_parameters(nets)
    for name, p in avg.named_parameters():
        expected = torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0)
        torch.testing.assert_close(p, expected)
    assert all(avg is not n for n in nets)
    with torch.no_grad():
        for p in avg.parameters():
            p.add_(1.0)
    assert all(torch.equal(v, b[k]) for net, b in zip(nets, before) for k, v in net.state_dict().items())


def test_the_average_of_many_weight_samples_approaches_the_mean_network():
    torch.manual_seed(0)
    model = models.bayes_mlp(1, 8, 1, init_sigma=0.2)
    avg = layers.average_parameters([layers.sample_network(model) for _ in range(2000)])
    x = torch.linspace(-2, 2, 20)[:, None]
    with torch.no_grad(), layers.frozen(model):
        torch.testing.assert_close(avg(x), model(x), rtol=0, atol=0.05)


@pytest.mark.parametrize("nets, match", [([], "non-empty"),
                                         (nn.Linear(2, 2), "not a single network"),
                                         ([nn.Linear(2, 2), nn.Linear(2, 3)], "one architecture")])
def test_average_parameters_rejects_bad_input(nets, match):
    with pytest.raises(ValueError, match=match):
        layers.average_parameters(nets)


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


# ---------------------------------------------------------------- accuracy

def test_accuracy_is_the_fraction_of_rows_whose_top_score_is_the_label():
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2, 1, 1])
    assert metrics.accuracy(scores, labels) == pytest.approx(0.75)
    assert metrics.accuracy(scores.log_softmax(-1), labels) == pytest.approx(0.75)  # any monotone score
    assert isinstance(metrics.accuracy(scores, labels), float)


@pytest.mark.parametrize("scores, labels, match, error", [
    (torch.zeros(4), torch.zeros(4, dtype=torch.int64), "input", ValueError),
    (torch.zeros(4, 3), torch.zeros(4), "target must be a 1-D integer tensor", TypeError),
    (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.int64), "target must be a 1-D integer tensor", ValueError),
    (torch.zeros(4, 3), torch.zeros(5, dtype=torch.int64), "same N", ValueError),
    (torch.zeros(2, 3), torch.tensor([0, 3]), r"\[0, 3\)", ValueError),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), "empty", ValueError),
])
def test_accuracy_rejects_bad_input_with_a_clear_message(scores, labels, match, error):
    with pytest.raises(error, match=match):
        metrics.accuracy(scores, labels)


# ---------------------------------------------------------------- sample_curves

def test_sample_curves_draws_one_line_per_sample_with_one_legend_entry():
    fig, ax = plt.subplots()
    try:
        x = torch.linspace(0, 1, 7)
        plots.sample_curves(ax, x, torch.randn(5, 7), label="samples")
        assert len(ax.lines) == 5
        assert [line.get_label() for line in ax.lines].count("samples") == 1
        with pytest.raises(ValueError, match="samples"):
            plots.sample_curves(ax, x, torch.randn(5, 6))
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- fit with class labels

def test_fit_trains_a_classifier_on_integer_labels():
    torch.manual_seed(0)
    x = torch.randn(200, 2)
    y = (x[:, 0] > 0).long()
    model = models.mlp(2, 8, 2)
    history = train.fit(model, x, y, lambda m, a, b: F.cross_entropy(m(a), b), epochs=30, batch_size=50,
                        lr=5e-2, progress=False)
    assert history[-1] < history[0]
    with torch.no_grad():
        assert metrics.accuracy(model(x), y) > 0.9


def test_fit_still_rejects_float_targets_with_nan():
    with pytest.raises(ValueError, match="y"):
        train.fit(models.mlp(2, 4, 1), torch.randn(4, 2), torch.tensor([0.0, math.nan, 1.0, 2.0]),
                  lambda m, a, b: m(a).sum(), epochs=1, batch_size=2, progress=False)
