"""Specification of bdl_course.conjugate: exact Bayesian linear regression (Bishop 2006, section 3.3)."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from bdl_course import conjugate
from conftest import F64


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(15, generator=g, dtype=F64) * 6 - 3
    y = torch.sin(x) + 0.1 * torch.randn(15, generator=g, dtype=F64)
    centers = torch.linspace(-3, 3, 5, dtype=F64)
    return conjugate.rbf_features(x, centers, 1.0), y, centers


# ---------------------------------------------------------------- features

def test_rbf_features_are_a_column_of_ones_then_one_gaussian_bump_per_center():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=F64)
    centers = torch.tensor([0.0, 2.0], dtype=F64)
    phi = conjugate.rbf_features(x, centers, lengthscale=0.5)
    assert phi.shape == (3, 3)
    assert torch.all(phi[:, 0] == 1)
    expected = torch.exp(-0.5 * ((x[:, None] - centers[None, :]) / 0.5) ** 2)
    torch.testing.assert_close(phi[:, 1:], expected)
    assert phi[1, 1] == 1 and phi[2, 2] == 1  # a bump is 1 at its own center


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_rbf_features_reject_a_non_positive_lengthscale(bad):
    with pytest.raises(ValueError, match="lengthscale"):
        conjugate.rbf_features(torch.zeros(3), torch.zeros(2), bad)


def test_rbf_features_reject_a_two_dimensional_x():
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        conjugate.rbf_features(torch.zeros(3, 1), torch.zeros(2), 1.0)


# ---------------------------------------------------------------- least squares

def test_least_squares_matches_numpy_lstsq(problem):
    phi, y, _ = problem
    expected = np.linalg.lstsq(phi.numpy(), y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(conjugate.least_squares(phi, y).numpy(), expected, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- posterior

def test_posterior_mean_is_the_ridge_solution_of_the_augmented_least_squares_problem(problem):
    # independent route to the MAP: minimise beta ||phi w - y||^2 + alpha ||w||^2 as one stacked lstsq
    phi, y, _ = problem
    alpha, beta = 0.7, 25.0
    d = phi.shape[1]
    a = torch.cat([math.sqrt(beta) * phi, math.sqrt(alpha) * torch.eye(d, dtype=F64)])
    b = torch.cat([math.sqrt(beta) * y, torch.zeros(d, dtype=F64)])
    expected = torch.linalg.lstsq(a, b[:, None]).solution[:, 0]
    mean, _ = conjugate.posterior(phi, y, alpha, beta)
    torch.testing.assert_close(mean, expected, rtol=1e-9, atol=1e-9)


def test_posterior_covariance_inverts_the_posterior_precision_and_is_exactly_symmetric(problem):
    phi, y, _ = problem
    alpha, beta = 0.7, 25.0
    _, cov = conjugate.posterior(phi, y, alpha, beta)
    precision = alpha * torch.eye(phi.shape[1], dtype=F64) + beta * phi.T @ phi
    torch.testing.assert_close(cov @ precision, torch.eye(phi.shape[1], dtype=F64), rtol=0, atol=1e-9)
    assert torch.equal(cov, cov.T)
    MultivariateNormal(torch.zeros(phi.shape[1], dtype=F64), covariance_matrix=cov)  # accepted as a covariance


def test_posterior_mean_approaches_least_squares_as_the_prior_vanishes(problem):
    phi, y, _ = problem
    mean, _ = conjugate.posterior(phi, y, alpha=1e-8, beta=1.0)
    torch.testing.assert_close(mean, conjugate.least_squares(phi, y), rtol=1e-4, atol=1e-5)


def test_posterior_with_no_information_in_the_data_is_the_prior(problem):
    phi, y, _ = problem
    mean, cov = conjugate.posterior(torch.zeros_like(phi), y, alpha=4.0, beta=1.0)
    torch.testing.assert_close(mean, torch.zeros(phi.shape[1], dtype=F64))
    torch.testing.assert_close(cov, torch.eye(phi.shape[1], dtype=F64) / 4.0)


@pytest.mark.parametrize("name, alpha, beta", [("alpha", 0.0, 1.0), ("alpha", -1.0, 1.0), ("alpha", math.nan, 1.0),
                                               ("beta", 1.0, 0.0), ("beta", 1.0, -2.0)])
def test_posterior_rejects_non_positive_precisions_naming_them(problem, name, alpha, beta):
    phi, y, _ = problem
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        conjugate.posterior(phi, y, alpha, beta)


def test_posterior_rejects_phi_and_y_of_different_lengths(problem):
    phi, y, _ = problem
    with pytest.raises(ValueError, match="same number of rows"):
        conjugate.posterior(phi, y[:-1], 1.0, 1.0)


# ---------------------------------------------------------------- predictive

def test_predictive_matches_a_monte_carlo_estimate_from_posterior_samples(problem):
    phi, y, centers = problem
    alpha, beta = 1.0, 20.0
    mean, cov = conjugate.posterior(phi, y, alpha, beta)
    phi_star = conjugate.rbf_features(torch.linspace(-4, 4, 7, dtype=F64), centers, 1.0)
    pred_mean, pred_var = conjugate.predictive(phi_star, mean, cov, beta)
    assert pred_mean.shape == pred_var.shape == (7,)

    torch.manual_seed(0)
    w = MultivariateNormal(mean, covariance_matrix=cov).sample((20000,))  # [J, D]
    f = w @ phi_star.T  # [J, M] noise-free function values
    torch.testing.assert_close(pred_mean, f.mean(0), rtol=0, atol=4 * f.std(0).max().item() / math.sqrt(20000))
    torch.testing.assert_close(pred_var, 1 / beta + f.var(0), rtol=0.05, atol=0)


def test_predictive_variance_never_falls_below_the_noise_variance(problem):
    phi, y, centers = problem
    mean, cov = conjugate.posterior(phi, y, 1.0, 10.0)
    phi_star = conjugate.rbf_features(torch.linspace(-10, 10, 21, dtype=F64), centers, 1.0)
    _, var = conjugate.predictive(phi_star, mean, cov, 10.0)
    assert torch.all(var >= 0.1)


def test_predictive_rejects_features_of_the_wrong_width(problem):
    phi, y, _ = problem
    mean, cov = conjugate.posterior(phi, y, 1.0, 1.0)
    with pytest.raises(ValueError, match="phi_star must have last dimension 6"):
        conjugate.predictive(phi[:, :-1], mean, cov, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_posterior_runs_on_the_device_of_its_inputs(problem):
    phi, y, _ = problem
    mean, cov = conjugate.posterior(phi.cuda(), y.cuda(), 1.0, 1.0)
    assert mean.device.type == "cuda" and cov.device.type == "cuda"
