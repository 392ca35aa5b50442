"""Specification of bdl_course.functional: the Gaussian KL and the local reparameterisation samplers (dense and convolutional), against torch.distributions and Monte Carlo."""
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from bdl_course import functional
from conftest import F64


# ---------------------------------------------------------------- local_reparam_linear

def test_local_reparam_samples_have_the_mean_and_variance_of_the_gaussian_pre_activations():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    w_mu, w_sigma = torch.randn(2, 3, generator=g, dtype=F64), torch.rand(2, 3, generator=g, dtype=F64) + 0.1
    b_mu, b_sigma = torch.randn(2, generator=g, dtype=F64), torch.rand(2, generator=g, dtype=F64) + 0.1
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=F64)
    out = functional.local_reparam_linear(x.expand(40000, 3), w_mu, w_sigma, b_mu, b_sigma)  # [40000, 2]
    mean = x @ w_mu.T + b_mu
    std = (x ** 2 @ (w_sigma ** 2).T + b_sigma ** 2).sqrt()
    torch.testing.assert_close(out.mean(0, keepdim=True), mean, rtol=0, atol=(5 * std / 200).max().item())
    torch.testing.assert_close(out.std(0, keepdim=True), std, rtol=0.02, atol=0)


def test_local_reparam_gives_every_example_its_own_noise():
    torch.manual_seed(0)
    x = torch.ones(4, 3)  # four identical examples
    out = functional.local_reparam_linear(x, torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2), torch.ones(2))
    assert out.shape == (4, 2)
    assert len({tuple(row.tolist()) for row in out}) == 4


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3)])
def test_local_reparam_keeps_leading_dimensions_and_works_without_bias(shape):
    out = functional.local_reparam_linear(torch.randn(*shape), torch.randn(2, 3), torch.rand(2, 3))
    assert out.shape == (*shape[:-1], 2)


def test_local_reparam_with_zero_variance_is_the_mean_and_gradients_stay_finite():
    w_mu = torch.randn(2, 3, requires_grad=True)
    w_sigma = torch.full((2, 3), 0.5, requires_grad=True)
    x = torch.zeros(4, 3)  # no bias, zero input: variance exactly 0
    out = functional.local_reparam_linear(x, w_mu, w_sigma)
    torch.testing.assert_close(out, torch.zeros(4, 2), atol=1e-7, rtol=0)
    out.sum().backward()
    assert torch.isfinite(w_mu.grad).all() and torch.isfinite(w_sigma.grad).all()


def test_local_reparam_gradients_reach_every_mean_and_std():
    params = [torch.randn(2, 3), torch.rand(2, 3) + 0.1, torch.randn(2), torch.rand(2) + 0.1]
    for p in params:
        p.requires_grad_()
    functional.local_reparam_linear(torch.randn(5, 3), *params).pow(2).sum().backward()
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
        functional.local_reparam_linear(**full)


# ---------------------------------------------------------------- kl_normal

def test_kl_normal_equals_torch_distributions_kl_divergence():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(2, 50, generator=g, dtype=F64)
    sigma_q, sigma_p = torch.rand(2, 50, generator=g, dtype=F64) * 3 + 0.05
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
    torch.testing.assert_close(functional.kl_normal(mu_q, sigma_q, mu_p, sigma_p), expected, rtol=1e-12, atol=1e-12)


def test_kl_normal_broadcasts_a_scalar_prior():
    mu_q = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=F64)
    sigma_q = torch.tensor([[0.1, 1.0], [0.3, 2.0]], dtype=F64)
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(torch.tensor(0.2, dtype=F64), torch.tensor(1.5, dtype=F64)))
    got = functional.kl_normal(mu_q, sigma_q, 0.2, 1.5)
    assert got.shape == (2, 2) and got.dtype == F64
    torch.testing.assert_close(got, expected)


def test_kl_normal_is_zero_for_identical_distributions_and_positive_otherwise():
    mu, sigma = torch.tensor([0.3, -2.0]), torch.tensor([0.5, 1.2])
    torch.testing.assert_close(functional.kl_normal(mu, sigma, mu, sigma), torch.zeros(2))
    assert torch.all(functional.kl_normal(mu, sigma, mu + 0.1, sigma) > 0)


@pytest.mark.parametrize("which", ["sigma_q", "sigma_p"])
def test_kl_normal_rejects_a_non_positive_scale_naming_it(which):
    args = dict(sigma_q=torch.ones(3), sigma_p=1.0)
    args[which] = torch.tensor([1.0, 0.0, 1.0]) if which == "sigma_q" else 0.0
    with pytest.raises(ValueError, match=which):
        functional.kl_normal(torch.zeros(3), args["sigma_q"], 0.0, args["sigma_p"])
