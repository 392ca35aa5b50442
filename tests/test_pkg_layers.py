"""Specification of bdl_course.layers: the Gaussian KL, BayesLinear, and KL / size over a model."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from bdl_course import layers
from bdl_course.layers import BayesLinear

F64 = torch.float64


def _randomised(layer: BayesLinear, seed: int = 0) -> BayesLinear:
    """Give every mu and rho a distinct random value, so sums cannot agree by symmetry."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer


def _kl_by_torch(layer: BayesLinear) -> torch.Tensor:
    prior = Normal(torch.tensor(layer.prior_mu, dtype=F64), torch.tensor(layer.prior_sigma, dtype=F64))
    total = kl_divergence(Normal(layer.weight_mu, F.softplus(layer.weight_rho)), prior).sum()
    if layer.bias_mu is not None:
        total = total + kl_divergence(Normal(layer.bias_mu, F.softplus(layer.bias_rho)), prior).sum()
    return total


# ---------------------------------------------------------------- kl_normal

def test_kl_normal_equals_torch_distributions_kl_divergence():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(2, 50, generator=g, dtype=F64)
    sigma_q, sigma_p = torch.rand(2, 50, generator=g, dtype=F64) * 3 + 0.05
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
    torch.testing.assert_close(layers.kl_normal(mu_q, sigma_q, mu_p, sigma_p), expected, rtol=1e-12, atol=1e-12)


def test_kl_normal_broadcasts_a_scalar_prior():
    mu_q = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=F64)
    sigma_q = torch.tensor([[0.1, 1.0], [0.3, 2.0]], dtype=F64)
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(torch.tensor(0.2, dtype=F64), torch.tensor(1.5, dtype=F64)))
    got = layers.kl_normal(mu_q, sigma_q, 0.2, 1.5)
    assert got.shape == (2, 2) and got.dtype == F64
    torch.testing.assert_close(got, expected)


def test_kl_normal_is_zero_for_identical_distributions_and_positive_otherwise():
    mu, sigma = torch.tensor([0.3, -2.0]), torch.tensor([0.5, 1.2])
    torch.testing.assert_close(layers.kl_normal(mu, sigma, mu, sigma), torch.zeros(2))
    assert torch.all(layers.kl_normal(mu, sigma, mu + 0.1, sigma) > 0)


@pytest.mark.parametrize("which", ["sigma_q", "sigma_p"])
def test_kl_normal_rejects_a_non_positive_scale_naming_it(which):
    args = dict(sigma_q=torch.ones(3), sigma_p=1.0)
    args[which] = torch.tensor([1.0, 0.0, 1.0]) if which == "sigma_q" else 0.0
    with pytest.raises(ValueError, match=which):
        layers.kl_normal(torch.zeros(3), args["sigma_q"], 0.0, args["sigma_p"])


# ---------------------------------------------------------------- BayesLinear: KL and size

@pytest.mark.parametrize("bias", [True, False])
def test_bayes_linear_kl_equals_the_sum_over_weights_and_biases_via_torch_distributions(bias):
    layer = _randomised(BayesLinear(4, 3, bias=bias, prior_mu=0.3, prior_sigma=0.8).double())
    kl = layer.kl()
    assert kl.shape == ()
    torch.testing.assert_close(kl, _kl_by_torch(layer), rtol=1e-12, atol=1e-12)


def test_total_kl_and_num_stochastic_sum_over_nested_containers_and_skip_ordinary_layers():
    a = _randomised(BayesLinear(2, 4, prior_mu=0.0, prior_sigma=1.0).double(), seed=1)
    b = _randomised(BayesLinear(4, 3, bias=False, prior_mu=0.0, prior_sigma=0.5).double(), seed=2)
    c = _randomised(BayesLinear(3, 1, prior_mu=0.1, prior_sigma=2.0).double(), seed=3)
    model = nn.Sequential(a, nn.ReLU(), nn.Sequential(nn.Linear(4, 4), b, nn.ModuleList([nn.Tanh(), c])))
    torch.testing.assert_close(layers.total_kl(model), _kl_by_torch(a) + _kl_by_torch(b) + _kl_by_torch(c))
    # weights + biases of the Bayesian layers only; nn.Linear(4, 4) contributes nothing
    assert layers.num_stochastic(model) == (2 * 4 + 4) + (4 * 3) + (3 * 1 + 1)
    assert layers.bayes_layers(model) == [a, b, c]


def test_a_mu_sigma_pair_counts_once_in_num_stochastic():
    layer = BayesLinear(5, 2, prior_mu=0.0, prior_sigma=1.0)
    n_parameters = sum(p.numel() for p in layer.parameters())  # mu and rho for each weight and bias
    assert layer.num_stochastic() == layers.num_stochastic(layer) == n_parameters // 2 == 12


def test_a_layer_used_twice_is_one_set_of_random_weights():
    shared = BayesLinear(3, 3, prior_mu=0.0, prior_sigma=1.0)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert layers.num_stochastic(model) == 12
    torch.testing.assert_close(layers.total_kl(model), shared.kl())


def test_a_model_without_bayesian_layers_has_zero_kl_and_no_stochastic_weights():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    kl = layers.total_kl(model)
    assert kl.shape == () and kl.item() == 0.0
    assert layers.num_stochastic(model) == 0


def test_kl_gradients_reach_mu_and_rho():
    layer = _randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0))
    layer.kl().backward()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


# ---------------------------------------------------------------- BayesLinear: construction

@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bayes_linear_rejects_a_non_positive_prior_sigma_naming_it(bad):
    with pytest.raises(ValueError, match="prior_sigma"):
        BayesLinear(2, 2, prior_mu=0.0, prior_sigma=bad)


@pytest.mark.parametrize("kwargs, name", [(dict(init_sigma=0.0), "init_sigma"),
                                          (dict(in_features=0), "in_features"),
                                          (dict(out_features=0), "out_features")])
def test_bayes_linear_rejects_other_bad_arguments_naming_them(kwargs, name):
    args = {**dict(prior_mu=0.0, prior_sigma=1.0, in_features=2, out_features=2), **kwargs}
    with pytest.raises(ValueError, match=name):
        BayesLinear(**args)


def test_sigma_is_softplus_of_rho_and_starts_at_init_sigma():
    layer = BayesLinear(3, 2, init_sigma=0.05, prior_mu=0.0, prior_sigma=1.0)
    torch.testing.assert_close(layer.weight_sigma, torch.full((2, 3), 0.05))
    torch.testing.assert_close(layer.bias_sigma, torch.full((2,), 0.05))
    with torch.no_grad():
        layer.weight_rho.copy_(torch.tensor([[-20.0, 0.0, 5.0], [-3.0, 1.0, 30.0]]))
    torch.testing.assert_close(layer.weight_sigma, F.softplus(layer.weight_rho))
    assert torch.all(layer.weight_sigma > 0)  # an unconstrained rho always gives a valid std


def test_a_layer_without_bias_has_no_bias_parameters():
    layer = BayesLinear(3, 2, bias=False, prior_mu=0.0, prior_sigma=1.0)
    assert layer.bias_mu is None and layer.bias_rho is None and layer.bias_sigma is None
    assert len(list(layer.parameters())) == 2


# ---------------------------------------------------------------- BayesLinear: forward

@pytest.mark.parametrize("bias", [True, False])
def test_bayes_linear_maps_n_by_in_to_n_by_out_and_s_by_n_by_in_to_s_by_n_by_out(bias):
    layer = BayesLinear(3, 2, bias=bias, prior_mu=0.0, prior_sigma=1.0)
    assert layer(torch.randn(5, 3)).shape == (5, 2)
    assert layer(torch.randn(4, 5, 3)).shape == (4, 5, 2)


def test_each_leading_index_uses_its_own_weight_sample():
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0)
    x = torch.randn(1, 5, 3).expand(6, 5, 3)  # the same inputs for every sample
    out = layer(x)
    for s in range(1, 6):
        assert not torch.allclose(out[0], out[s])


def test_two_forward_passes_of_an_unfrozen_layer_differ():
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0)
    x = torch.randn(5, 3)
    assert not torch.allclose(layer(x), layer(x))


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3)])
def test_freeze_gives_the_deterministic_output_of_the_posterior_means(shape):
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0)
    assert layer.freeze() is layer
    x = torch.randn(*shape)
    out = layer(x)
    torch.testing.assert_close(out, F.linear(x, layer.weight_mu, layer.bias_mu))
    assert torch.equal(out, layer(x))


def test_unfreeze_restores_sampling():
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0).freeze()
    assert layer.unfreeze() is layer
    x = torch.randn(5, 3)
    assert not torch.allclose(layer(x), layer(x))


def test_the_batched_samples_have_the_posterior_mean_and_std():
    # x = a one-hot row picks w[:, 0] + b: mean mu_w + mu_b, variance sigma_w^2 + sigma_b^2
    torch.manual_seed(0)
    layer = _randomised(BayesLinear(2, 2, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.tensor([[1.0, 0.0]], dtype=F64).expand(20000, 1, 2)
    out = layer(x)[:, 0, :]  # [S, out]
    mean = layer.weight_mu[:, 0] + layer.bias_mu
    std = (layer.weight_sigma[:, 0] ** 2 + layer.bias_sigma ** 2).sqrt()
    torch.testing.assert_close(out.mean(0), mean.detach(), rtol=0, atol=(4 * std / 20000 ** 0.5).max().item())
    torch.testing.assert_close(out.std(0), std.detach(), rtol=0.03, atol=0)


@pytest.mark.parametrize("shape", [(3,), (5, 4), (2, 5, 4), (1, 2, 5, 3)])
def test_an_input_of_the_wrong_shape_raises_a_value_error_stating_the_expected_shape(shape):
    layer = BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0)
    with pytest.raises(ValueError, match=r"\[N, 3\] or \[S, N, 3\]") as info:
        layer(torch.randn(*shape))
    assert str(tuple(shape)) in str(info.value)


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3)])
def test_gradients_of_the_output_reach_mu_and_rho(shape):
    layer = BayesLinear(3, 2, init_sigma=0.1, prior_mu=0.0, prior_sigma=1.0)
    layer(torch.randn(*shape)).pow(2).sum().backward()
    for name in ["weight_mu", "weight_rho", "bias_mu", "bias_rho"]:
        grad = getattr(layer, name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_a_frozen_layer_does_not_train_rho():
    layer = BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0).freeze()
    layer(torch.randn(5, 3)).sum().backward()
    assert layer.weight_rho.grad is None and layer.weight_mu.grad is not None


def test_initial_means_lie_in_the_nn_linear_range():
    layer = BayesLinear(16, 8, prior_mu=0.0, prior_sigma=1.0)
    bound = 1 / 16 ** 0.5
    assert layer.weight_mu.abs().max() <= bound and layer.bias_mu.abs().max() <= bound
    assert layer.weight_mu.std() > 0
