"""Specification of bdl_course.layers: BayesLinear and BayesConv2d (shapes, sampling, freezing, KL per layer)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from bdl_course import bnn, functional
from bdl_course.layers import BayesConv2d, BayesLinear
from conftest import F64, randomised


def _kl_by_torch(layer: BayesLinear) -> torch.Tensor:
    prior = Normal(torch.tensor(layer.prior_mu, dtype=F64), torch.tensor(layer.prior_sigma, dtype=F64))
    total = kl_divergence(Normal(layer.weight_mu, F.softplus(layer.weight_rho)), prior).sum()
    if layer.bias_mu is not None:
        total = total + kl_divergence(Normal(layer.bias_mu, F.softplus(layer.bias_rho)), prior).sum()
    return total


# ---------------------------------------------------------------- BayesLinear: KL and size

@pytest.mark.parametrize("bias", [True, False])
def test_bayes_linear_kl_equals_the_sum_over_weights_and_biases_via_torch_distributions(bias):
    layer = randomised(BayesLinear(4, 3, bias=bias, prior_mu=0.3, prior_sigma=0.8).double())
    kl = layer.kl()
    assert kl.shape == ()
    torch.testing.assert_close(kl, _kl_by_torch(layer), rtol=1e-12, atol=1e-12)


def test_total_kl_and_num_stochastic_sum_over_nested_containers_and_skip_ordinary_layers():
    a = randomised(BayesLinear(2, 4, prior_mu=0.0, prior_sigma=1.0).double(), seed=1)
    b = randomised(BayesLinear(4, 3, bias=False, prior_mu=0.0, prior_sigma=0.5).double(), seed=2)
    c = randomised(BayesLinear(3, 1, prior_mu=0.1, prior_sigma=2.0).double(), seed=3)
    model = nn.Sequential(a, nn.ReLU(), nn.Sequential(nn.Linear(4, 4), b, nn.ModuleList([nn.Tanh(), c])))
    torch.testing.assert_close(bnn.total_kl(model), _kl_by_torch(a) + _kl_by_torch(b) + _kl_by_torch(c))
    # weights + biases of the Bayesian layers only; nn.Linear(4, 4) contributes nothing
    assert bnn.num_stochastic(model) == (2 * 4 + 4) + (4 * 3) + (3 * 1 + 1)
    assert bnn.bayes_layers(model) == [a, b, c]


def test_a_mu_sigma_pair_counts_once_in_num_stochastic():
    layer = BayesLinear(5, 2, prior_mu=0.0, prior_sigma=1.0)
    n_parameters = sum(p.numel() for p in layer.parameters())  # mu and rho for each weight and bias
    assert layer.num_stochastic() == bnn.num_stochastic(layer) == n_parameters // 2 == 12


def test_a_layer_used_twice_is_one_set_of_random_weights():
    shared = BayesLinear(3, 3, prior_mu=0.0, prior_sigma=1.0)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert bnn.num_stochastic(model) == 12
    torch.testing.assert_close(bnn.total_kl(model), shared.kl())


def test_a_model_without_bayesian_layers_has_zero_kl_and_no_stochastic_weights():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    kl = bnn.total_kl(model)
    assert kl.shape == () and kl.item() == 0.0
    assert bnn.num_stochastic(model) == 0


def test_kl_gradients_reach_mu_and_rho():
    layer = randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0))
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
    layer = randomised(BayesLinear(2, 2, prior_mu=0.0, prior_sigma=1.0).double())
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


# ---------------------------------------------------------------- BayesLinear(local_reparam=True)

def test_a_local_reparam_layer_has_the_same_output_distribution_as_a_sampling_one():
    torch.manual_seed(0)
    layer = randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0).double(), rho_shift=-1.0)
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


# ---------------------------------------------------------------- BayesConv2d: shapes

@pytest.mark.parametrize("local_reparam", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_bayes_conv2d_maps_images_with_and_without_a_sample_dimension(local_reparam, bias):
    conv = BayesConv2d(3, 5, kernel_size=3, padding=1, bias=bias, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0)
    assert conv(torch.randn(4, 3, 8, 8)).shape == (4, 5, 8, 8)
    assert conv(torch.randn(6, 4, 3, 8, 8)).shape == (6, 4, 5, 8, 8)
    x = torch.randn(4, 3, 8, 8)
    assert conv(x.unsqueeze(0).expand(6, *x.shape)).shape == (6, 4, 5, 8, 8)  # broadcast input
    strided = BayesConv2d(3, 2, kernel_size=3, stride=2, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0)
    assert strided(torch.randn(4, 3, 9, 9)).shape == (4, 2, 4, 4)
    assert strided(torch.randn(2, 4, 3, 9, 9)).shape == (2, 4, 2, 4, 4)


@pytest.mark.parametrize("shape", [(3, 8, 8), (4, 2, 8, 8), (1, 2, 4, 3, 8, 8)])
def test_bayes_conv2d_rejects_inputs_of_the_wrong_shape_stating_the_expected_one(shape):
    conv = BayesConv2d(3, 5, kernel_size=3, prior_mu=0.0, prior_sigma=1.0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\] or \[S, N, 3, H, W\]"):
        conv(torch.randn(*shape))


@pytest.mark.parametrize("kwargs, name", [(dict(prior_sigma=0.0), "prior_sigma"), (dict(init_sigma=-1.0), "init_sigma"),
                                          (dict(in_channels=0), "in_channels"), (dict(kernel_size=0), "kernel_size"),
                                          (dict(padding=-1), "padding")])
def test_bayes_conv2d_rejects_bad_arguments_naming_them(kwargs, name):
    args = {**dict(prior_mu=0.0, prior_sigma=1.0, in_channels=2, out_channels=3, kernel_size=3), **kwargs}
    with pytest.raises(ValueError, match=name):
        BayesConv2d(**args)


# ---------------------------------------------------------------- BayesConv2d: frozen and sampled outputs

@pytest.mark.parametrize("local_reparam", [False, True])
def test_freeze_gives_f_conv2d_with_the_posterior_means(local_reparam):
    conv = randomised(BayesConv2d(2, 3, kernel_size=3, padding=1, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0))
    x = torch.randn(4, 2, 6, 6)
    assert conv.freeze() is conv
    expected = F.conv2d(x, conv.weight_mu, conv.bias_mu, padding=1)
    torch.testing.assert_close(conv(x), expected)
    out = conv(x.unsqueeze(0).expand(5, *x.shape))
    assert out.shape == (5, 4, 3, 6, 6)
    for s in range(5):
        torch.testing.assert_close(out[s], expected)
    assert conv.unfreeze() is conv
    assert not torch.allclose(conv(x), conv(x))


def test_without_local_reparameterisation_a_sample_is_one_kernel_shared_by_positions_and_images():
    torch.manual_seed(0)
    conv = randomised(BayesConv2d(1, 2, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0))
    x = torch.zeros(2, 1, 7, 7)
    x[0, 0, 2, 2] = x[1, 0, 3, 3] = 1.0  # image 1 is image 0 moved by one pixel
    out = conv(x)
    torch.testing.assert_close(out[1, :, 1:, 1:], out[0, :, :-1, :-1])
    many = conv(x.unsqueeze(0).expand(3, *x.shape))
    for s in range(3):
        torch.testing.assert_close(many[s, 1, :, 1:, 1:], many[s, 0, :, :-1, :-1])
    assert not torch.allclose(many[0], many[1])  # each leading index draws its own kernel
    conv.local_reparam = True  # independent noise per example and position
    out = conv(x)
    assert not torch.allclose(out[1, :, 1:, 1:], out[0, :, :-1, :-1])


def test_grouped_sampling_matches_one_conv2d_per_sample_with_the_same_noise():
    conv = randomised(BayesConv2d(2, 3, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.randn(4, 5, 2, 6, 6, dtype=F64)  # a different input for each sample
    torch.manual_seed(7)
    out = conv(x)
    torch.manual_seed(7)
    eps_w = torch.randn((4, *conv.weight_mu.shape), dtype=F64)
    eps_b = torch.randn((4, 3), dtype=F64)
    for s in range(4):
        w = conv.weight_mu + conv.weight_sigma * eps_w[s]
        b = conv.bias_mu + conv.bias_sigma * eps_b[s]
        torch.testing.assert_close(out[s], F.conv2d(x[s], w, b, padding=1))


@pytest.mark.parametrize("local_reparam", [False, True])
def test_a_one_pixel_kernel_output_has_the_posterior_mean_and_std(local_reparam):
    # 1x1 kernel on a one-pixel image of value 1: the output is w + b, mean mu_w + mu_b,
    # variance sigma_w^2 + sigma_b^2, with either sampler
    torch.manual_seed(0)
    conv = randomised(BayesConv2d(1, 2, kernel_size=1, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.ones(1, 1, 1, 1, dtype=F64).expand(20000, 1, 1, 1, 1)
    out = conv(x)[:, 0, :, 0, 0]  # [S, 2]
    mean = conv.weight_mu[:, 0, 0, 0] + conv.bias_mu
    std = (conv.weight_sigma[:, 0, 0, 0] ** 2 + conv.bias_sigma ** 2).sqrt()
    torch.testing.assert_close(out.mean(0), mean.detach(), rtol=0, atol=(4 * std / 20000 ** 0.5).max().item())
    torch.testing.assert_close(out.std(0), std.detach(), rtol=0.03, atol=0)


def test_local_reparameterisation_matches_the_mean_and_variance_of_kernel_sampling():
    torch.manual_seed(0)
    conv = randomised(BayesConv2d(2, 2, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0).double())
    with torch.no_grad():
        conv.weight_rho.sub_(1.0)
    x = torch.randn(1, 2, 4, 4, dtype=F64)
    many = x.expand(20000, 1, 2, 4, 4)
    exact = conv(many)[:, 0]
    conv.local_reparam = True
    local = conv(many)[:, 0]
    torch.testing.assert_close(local.mean(0), exact.mean(0), rtol=0, atol=0.15)
    torch.testing.assert_close(local.var(0), exact.var(0), rtol=0.08, atol=0.02)
    mean = F.conv2d(x, conv.weight_mu, conv.bias_mu, padding=1)[0]
    var = F.conv2d(x ** 2, conv.weight_sigma ** 2, conv.bias_sigma ** 2, padding=1)[0]
    torch.testing.assert_close(local.var(0), var.detach(), rtol=0.08, atol=0.02)
    torch.testing.assert_close(local.mean(0), mean.detach(), rtol=0, atol=0.15)


def test_local_reparam_conv2d_checks_its_arguments():
    w = torch.ones(3, 2, 3, 3)
    with pytest.raises(ValueError, match="x must"):
        functional.local_reparam_conv2d(torch.ones(2, 8, 8), w, w)
    with pytest.raises(ValueError, match="weight_sigma"):
        functional.local_reparam_conv2d(torch.ones(1, 2, 8, 8), w, torch.ones(3, 2, 1, 1))
    with pytest.raises(ValueError, match="channels"):
        functional.local_reparam_conv2d(torch.ones(1, 4, 8, 8), w, w)
    with pytest.raises(ValueError, match="bias_mu and bias_sigma"):
        functional.local_reparam_conv2d(torch.ones(1, 2, 8, 8), w, w, bias_mu=torch.zeros(3))


def test_a_zero_input_without_bias_has_finite_gradients_under_local_reparameterisation():
    conv = BayesConv2d(1, 2, kernel_size=3, padding=1, bias=False, local_reparam=True, prior_mu=0.0, prior_sigma=1.0)
    conv(torch.zeros(2, 1, 4, 4)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


# ---------------------------------------------------------------- BayesConv2d: KL, counting, model-level sums

@pytest.mark.parametrize("bias", [True, False])
def test_bayes_conv2d_kl_equals_torch_distributions(bias):
    conv = randomised(BayesConv2d(2, 3, kernel_size=3, bias=bias, prior_mu=0.3, prior_sigma=0.8).double())
    prior = Normal(torch.tensor(0.3, dtype=F64), torch.tensor(0.8, dtype=F64))
    expected = kl_divergence(Normal(conv.weight_mu, F.softplus(conv.weight_rho)), prior).sum()
    if bias:
        expected = expected + kl_divergence(Normal(conv.bias_mu, F.softplus(conv.bias_rho)), prior).sum()
    torch.testing.assert_close(conv.kl(), expected, rtol=1e-12, atol=1e-12)
    assert conv.num_stochastic() == 2 * 3 * 9 + (3 if bias else 0)


def test_total_kl_num_stochastic_and_bayes_layers_include_convolutions():
    conv = randomised(BayesConv2d(1, 4, kernel_size=3, prior_mu=0.0, prior_sigma=1.0).double(), seed=1)
    dense = randomised(BayesLinear(4, 2, prior_mu=0.0, prior_sigma=1.0).double(), seed=2)
    model = nn.Sequential(conv, nn.ReLU(), nn.Sequential(nn.Conv2d(4, 4, 1), nn.Flatten()), dense)
    assert bnn.bayes_layers(model) == [conv, dense]
    torch.testing.assert_close(bnn.total_kl(model), conv.kl() + dense.kl())
    assert bnn.num_stochastic(model) == (4 * 9 + 4) + (4 * 2 + 2)


def test_the_old_order_with_the_priors_first_raises_instead_of_building_a_silently_wrong_prior():
    # BayesLinear(prior_mu, prior_sigma, in, out) once built N(4, 16^2) from BayesLinear(4, 16, 3, 2)
    with pytest.raises(TypeError):
        BayesLinear(4, 16, 3, 2)
    with pytest.raises(TypeError):
        BayesConv2d(0.0, 1.0, 3, 5, 3)
    layer = BayesLinear(4, 16, prior_mu=0.5, prior_sigma=2.0, bias=False, device="cpu", dtype=torch.float64)
    assert (layer.in_features, layer.out_features, layer.prior_mu, layer.prior_sigma) == (4, 16, 0.5, 2.0)
    assert layer.bias_mu is None and layer.weight_mu.dtype == torch.float64
