"""bdl_course.laplace: checked against exact Bayesian linear regression, where Laplace is exact."""
import math

import pytest
import torch
from torch import nn

from bdl_course.laplace import Laplace
from bdl_course.predictive import Predictive

NOISE = 0.3


def _linear_problem(delta=2.0, n=40, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64) + 0.7 + NOISE * torch.randn(n, generator=g,
                                                                                              dtype=torch.float64)
    phi = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)  # weights then bias, the Linear layout
    precision = phi.T @ phi / NOISE ** 2 + delta * torch.eye(d + 1, dtype=torch.float64)
    w_map = torch.linalg.solve(precision, phi.T @ y / NOISE ** 2)
    net = nn.Linear(d, 1).double()
    with torch.no_grad():
        net.weight.copy_(w_map[:d][None])
        net.bias.copy_(w_map[d:])
    return net, x, y, phi, precision


def test_linear_model_posterior_and_evidence_are_exact():
    delta = 2.0
    net, x, y, phi, precision = _linear_problem(delta)
    la = Laplace(net, NOISE, prior_precision=delta).fit(x, y)
    torch.testing.assert_close(la.posterior_covariance(), torch.linalg.inv(precision))
    # exact evidence: y ~ N(0, phi phi^T / delta + noise^2 I)
    cov = phi @ phi.T / delta + NOISE ** 2 * torch.eye(len(y), dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(torch.zeros(len(y), dtype=torch.float64), cov).log_prob(y)
    assert abs(float(la.log_marginal_likelihood()) - float(exact)) < 1e-8


def test_prior_precision_by_evidence_maximises_it():
    net, x, y, *_ = _linear_problem(delta=1.0)
    la = Laplace(net, NOISE).fit(x, y)
    best = la.optimize_prior_precision(low=1e-3, high=1e3, n_grid=601)
    assert 1e-3 < best < 1e3
    around = torch.tensor([best * 0.9, best, best * 1.1])
    values = la.log_marginal_likelihood(around)
    assert values[1] >= values[0] and values[1] >= values[2]
    # for a linear model with w* fixed, the optimum solves P / delta = |w*|^2 + trace((GGN + delta I)^-1)
    residual = la.n_params / best - float((la.mean ** 2).sum() + torch.trace(la.posterior_covariance()))
    assert abs(residual) < 0.05 * la.n_params / best


def test_glm_predictive_matches_the_exact_predictive_variance():
    net, x, y, phi, precision = _linear_problem()
    la = Laplace(net, NOISE, prior_precision=2.0).fit(x, y)
    x_new = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None].repeat(1, 3)
    phi_new = torch.cat([x_new, torch.ones(7, 1, dtype=torch.float64)], 1)
    exact_var = ((phi_new @ torch.linalg.inv(precision)) * phi_new).sum(-1)
    torch.testing.assert_close(la.functional_variance(x_new), exact_var)
    p = la.predictive(x_new, n_samples=4000, generator=torch.Generator().manual_seed(1))
    assert isinstance(p, Predictive) and p.kind == "gaussian" and p.loc.shape == (4000, 7)
    torch.testing.assert_close(p.scale, torch.full_like(p.loc, NOISE))
    torch.testing.assert_close(p.mean(), net(x_new).squeeze(-1).detach(), atol=5 * exact_var.max().sqrt() / 60,
                               rtol=0)
    # sample variance of 4000 Gaussian draws: relative standard error sqrt(2 / 4000) ~ 0.022
    ratio = p.epistemic() / exact_var
    assert ((ratio - 1).abs() < 0.12).all(), ratio
    # a linear network: the "nn" predictive is the same distribution
    q = la.predictive(x_new, n_samples=4000, generator=torch.Generator().manual_seed(1), link="nn")
    torch.testing.assert_close(q.loc, p.loc)


def test_nonlinear_network_is_left_untouched_and_shapes_hold():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.linspace(-2, 2, 30)[:, None]
    y = torch.sin(x[:, 0])
    la = Laplace(net, 0.1).fit(x, y)
    la.optimize_prior_precision()
    p = la.predictive(x, n_samples=5)
    assert p.loc.shape == (5, 30) and la.n_params == 8 + 8 + 8 + 1
    assert net.training  # mode restored
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    # GGN eigenvalues are non-negative and the posterior covariance is symmetric positive definite
    assert float(torch.linalg.eigvalsh(la.posterior_covariance()).min()) > 0


def test_bad_inputs_are_refused():
    net = nn.Linear(2, 1)
    with pytest.raises(TypeError):
        Laplace("not a net", 0.1)
    with pytest.raises(ValueError):
        Laplace(net, 0.0)
    la = Laplace(net, 0.1)
    with pytest.raises(RuntimeError, match="fit"):
        la.predictive(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        la.fit(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="one regression"):
        Laplace(nn.Linear(2, 3), 0.1).fit(torch.zeros(3, 2), torch.zeros(3))
    la.fit(torch.randn(5, 2), torch.randn(5))
    with pytest.raises(ValueError, match="link"):
        la.predictive(torch.zeros(3, 2), link="mc")
    assert math.isfinite(float(la.log_marginal_likelihood()))
