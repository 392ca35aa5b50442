"""Specification of the package code lesson 04 uses: the cluster toy, the heteroskedastic Gaussian
head, RBF input features, the variance decomposition, interval coverage, the KL warm-up and
fit's step-aware losses."""
import math

import pytest
import torch
from torch import nn

from bdl_course import data, metrics, models, predict, train
from bdl_course.utils import seed_everything

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


# ---------------------------------------------------------------- variance_decomposition

def test_variance_decomposition_is_mean_variance_and_variance_of_means():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(30, 4, generator=g, dtype=torch.float64)
    sigma = torch.rand(30, 4, generator=g, dtype=torch.float64) + 0.1
    aleatoric, epistemic = predict.variance_decomposition(mu, sigma)
    assert aleatoric.shape == epistemic.shape == (4,)
    torch.testing.assert_close(aleatoric, (sigma ** 2).mean(0))
    torch.testing.assert_close(epistemic, mu.var(0, unbiased=False))  # divide by S: the mixture's variance


def test_the_two_parts_add_up_to_the_variance_of_the_mixture():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64) * 2
    sigma = torch.rand(5, 3, generator=g, dtype=torch.float64) + 0.2
    aleatoric, epistemic = predict.variance_decomposition(mu, sigma)
    # E[y^2] - E[y]^2 of the uniform mixture, from its components' moments
    second_moment = (sigma ** 2 + mu ** 2).mean(0)
    torch.testing.assert_close(aleatoric + epistemic, second_moment - mu.mean(0) ** 2)


def test_one_weight_sample_has_no_epistemic_variance_and_extra_dimensions_pass_through():
    aleatoric, epistemic = predict.variance_decomposition(torch.randn(1, 6), torch.full((1, 6), 0.5))
    assert torch.all(epistemic == 0) and torch.allclose(aleatoric, torch.full((6,), 0.25))
    aleatoric, epistemic = predict.variance_decomposition(torch.randn(7, 2, 3), torch.ones(7, 2, 3))
    assert aleatoric.shape == epistemic.shape == (2, 3)


@pytest.mark.parametrize("mu, sigma, match", [
    (torch.zeros(3, 4), torch.ones(3, 5), "same shape"),
    (torch.tensor(0.0), torch.tensor(1.0), "same shape"),
    (torch.zeros(3, 4), torch.zeros(3, 4), "scale must be positive"),
    (torch.zeros(3, 4), torch.full((3, 4), math.nan), "scale"),
])
def test_variance_decomposition_rejects_bad_input(mu, sigma, match):
    with pytest.raises(ValueError, match=match):
        predict.variance_decomposition(mu, sigma)


# ---------------------------------------------------------------- interval_coverage

def test_interval_coverage_counts_targets_within_z_standard_deviations_both_sides():
    # z-scores 0, 0.5, -1, 1.5, -1.8, 2.25, -2.5, 5 around mean 0 with std 2
    y = torch.tensor([0.0, 1.0, -2.0, 3.0, -3.6, 4.5, -5.0, 10.0])
    mean, std = torch.zeros(8), torch.full((8,), 2.0)
    assert metrics.interval_coverage(y, mean, std) == 5 / 8           # z = 1.96
    assert metrics.interval_coverage(y, mean, std, level=0.9) == 4 / 8  # z = 1.645: -1.8 is outside
    assert isinstance(metrics.interval_coverage(y, mean, std), float)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95, 0.99])
def test_a_calibrated_gaussian_covers_about_level_of_its_samples(level):
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(50000, generator=g, dtype=torch.float64)
    std = torch.rand(50000, generator=g, dtype=torch.float64) + 0.1
    y = mean + std * torch.randn(50000, generator=g, dtype=torch.float64)
    assert metrics.interval_coverage(y, mean, std, level) == pytest.approx(level, abs=0.006)


@pytest.mark.parametrize("kwargs, match", [
    (dict(level=1.0), "level"), (dict(level=0.0), "level"), (dict(level=95), "level"),
    (dict(std=torch.zeros(3)), "std must be positive"),
    (dict(std=torch.ones(4)), "one shape"),
    (dict(input=torch.zeros(3, 1)), "one shape"),
])
def test_interval_coverage_rejects_bad_input(kwargs, match):
    args = dict(input=torch.zeros(3), target=torch.zeros(3), std=torch.ones(3))
    with pytest.raises(ValueError, match=match):
        metrics.interval_coverage(**{**args, **kwargs})


# ---------------------------------------------------------------- kl_warmup and fit(callback=...)

def test_kl_warmup_grows_linearly_from_0_to_1_then_stays_at_1():
    assert [train.kl_warmup(s, 4) for s in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_kl_warmup_of_zero_steps_is_no_warmup():
    assert train.kl_warmup(0, 0) == 1.0 and train.kl_warmup(10, 0) == 1.0


@pytest.mark.parametrize("step, warmup_steps, match, error", [(-1, 10, "step", ValueError), (1.5, 10, "step", TypeError),
                                                              (3, -2, "warmup_steps", ValueError)])
def test_kl_warmup_rejects_negative_or_fractional_steps(step, warmup_steps, match, error):
    with pytest.raises(error, match=match):
        train.kl_warmup(step, warmup_steps)


def test_fit_calls_its_callback_with_every_step_number_in_order_before_that_step():
    seed_everything(0)
    model = models.mlp(1, 4, 1)
    x, y = torch.randn(10, 1), torch.randn(10)
    events = []

    def loss_fn(m, xb, yb):
        events.append("loss")
        return ((m(xb)[:, 0] - yb) ** 2).mean()

    train.fit(model, x, y, loss_fn, epochs=3, batch_size=4, progress=False, callback=events.append)
    assert events == [e for step in range(9) for e in (step, "loss")]  # 3 epochs of ceil(10 / 4) = 3 steps


def test_fit_calls_the_loss_with_model_and_each_minibatch():
    model = models.mlp(1, 4, 1)
    calls = []

    def loss_fn(m, xb, yb):
        calls.append(len(xb))
        return ((m(xb)[:, 0] - yb) ** 2).mean()

    train.fit(model, torch.randn(10, 1), torch.randn(10), loss_fn, epochs=1, batch_size=4, progress=False)
    assert calls == [4, 4, 2]
