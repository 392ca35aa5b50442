"""Specification of bdl_course.metrics: every metric, in the (input, target, ...) convention."""
import math

import pytest
import torch
from torch.distributions import Normal

from bdl_course import metrics


def test_rmse_is_the_root_of_the_mean_squared_error():
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0])
    assert isinstance(metrics.rmse(pred, target), float)
    assert metrics.rmse(pred, target) == pytest.approx(math.sqrt((0 + 4 + 9) / 3))
    assert metrics.rmse(target, target) == 0.0


def test_rmse_rejects_mismatched_shapes_instead_of_broadcasting():
    with pytest.raises(ValueError, match="same shape"):
        metrics.rmse(torch.zeros(3, 1), torch.zeros(3))


def test_rmse_rejects_nan_predictions():
    with pytest.raises(ValueError, match="input contains NaN"):
        metrics.rmse(torch.tensor([math.nan]), torch.tensor([0.0]))


def test_gaussian_nll_equals_minus_the_normal_log_density():
    g = torch.Generator().manual_seed(0)
    y, mu = torch.randn(2, 10, generator=g)
    sigma = torch.rand(10, generator=g) + 0.1
    expected = -Normal(mu, sigma).log_prob(y)
    torch.testing.assert_close(metrics.gaussian_nll(y, mu, sigma, reduction="none"), expected)
    torch.testing.assert_close(metrics.gaussian_nll(y, mu, sigma), expected.mean())
    assert metrics.gaussian_nll(y, mu, sigma).shape == ()


def test_gaussian_nll_accepts_a_scalar_sigma_and_broadcasts():
    y, mu = torch.tensor([[0.0, 1.0], [2.0, -1.0]]), torch.tensor([0.5, 0.0])
    expected = -Normal(mu, torch.tensor(0.7)).log_prob(y)
    got = metrics.gaussian_nll(y, mu, 0.7, reduction="none")
    assert got.shape == (2, 2)
    torch.testing.assert_close(got, expected)


def test_gaussian_nll_passes_gradients_to_mu_and_sigma():
    mu = torch.zeros(3, requires_grad=True)
    sigma = torch.tensor(0.5, requires_grad=True)
    metrics.gaussian_nll(torch.tensor([1.0, -1.0, 0.5]), mu, sigma).backward()
    assert mu.grad.abs().sum() > 0 and sigma.grad != 0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, torch.tensor([0.5, 0.0])])
def test_gaussian_nll_rejects_a_non_positive_std(bad):
    with pytest.raises(ValueError, match="std must be positive"):
        metrics.gaussian_nll(torch.zeros(2), torch.zeros(2), bad)


def test_gaussian_nll_sums_with_reduction_sum_and_rejects_an_unknown_reduction():
    mu, y = torch.tensor([0.0, 1.0]), torch.tensor([0.5, -1.0])
    torch.testing.assert_close(metrics.gaussian_nll(mu, y, 0.5, reduction="sum"),
                               metrics.gaussian_nll(mu, y, 0.5, reduction="none").sum())
    with pytest.raises(ValueError, match="reduction"):
        metrics.gaussian_nll(torch.zeros(2), torch.zeros(2), 1.0, reduction="max")


@pytest.mark.parametrize("which", ["input", "target"])
def test_gaussian_nll_rejects_nan_in_input_or_target_naming_it_instead_of_returning_nan(which):
    args = {"input": torch.zeros(3), "target": torch.zeros(3)}
    args[which] = torch.tensor([0.0, math.nan, 1.0])
    with pytest.raises(ValueError, match=f"{which} contains NaN"):
        metrics.gaussian_nll(args["input"], args["target"], 1.0)


def test_gaussian_nll_takes_input_first_as_torch_does():
    g = torch.Generator().manual_seed(3)
    mu, y, std = torch.randn(5, generator=g), torch.randn(5, generator=g), torch.rand(5, generator=g) + 0.2
    torch.testing.assert_close(metrics.gaussian_nll(input=mu, target=y, std=std),
                               torch.nn.functional.gaussian_nll_loss(mu, y, std ** 2, full=True))


# ---------------------------------------------------------------- recalibration and conformal intervals

def test_fit_temperature_finds_the_minimum_of_the_nll_over_log_t():
    g = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(400, 4, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, -1), 1, generator=g)[:, 0]
    t = metrics.fit_temperature(3.0 * z, labels)  # three times overconfident
    log_ts = torch.linspace(-1, 3, 40001, dtype=torch.float64)  # brute force, step 1e-4
    nlls = torch.stack([torch.nn.functional.cross_entropy(3.0 * z / math.exp(lt), labels) for lt in log_ts[::10]])
    best = log_ts[::10][nlls.argmin()].item()
    assert abs(math.log(t) - best) < 2e-3
    assert 2.0 < t < 4.5  # near the true overconfidence factor 3 (400 labels)


def test_fit_temperature_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="logits contains NaN"):
        metrics.fit_temperature(torch.tensor([[0.0, math.nan]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        metrics.fit_temperature(torch.zeros(2, 2), torch.tensor([0, 2]))
    with pytest.raises(TypeError, match="labels"):
        metrics.fit_temperature(torch.zeros(2, 2), torch.tensor([0.0, 1.0]))


def test_split_conformal_takes_the_ceil_n_plus_1_level_th_smallest_score():
    mean_cal = torch.zeros(19)
    y_cal = torch.arange(1.0, 20.0)[torch.randperm(19, generator=torch.Generator().manual_seed(0))]
    y_test = torch.tensor([0.5, -18.5, 19.5, 30.0])
    q, cov = metrics.split_conformal(mean_cal, y_cal, torch.zeros(4), y_test, level=0.95)
    assert q == 19.0 and cov == 0.5  # k = ceil(20 * 0.95) = 19 exactly
    q, _ = metrics.split_conformal(mean_cal, y_cal, torch.zeros(4), y_test, level=0.9)
    assert q == 18.0
    q, cov = metrics.split_conformal(torch.zeros(5), torch.ones(5), torch.zeros(2), torch.ones(2), level=0.95)
    assert q == math.inf and cov == 1.0  # k = 6 > n = 5: no finite quantile


def test_split_conformal_covers_about_level_of_new_points():
    g = torch.Generator().manual_seed(1)
    q, cov = metrics.split_conformal(torch.zeros(999), torch.randn(999, generator=g), torch.zeros(20000),
                                     torch.randn(20000, generator=g), level=0.9)
    assert q == pytest.approx(1.645, abs=0.12) and cov == pytest.approx(0.9, abs=0.025)


def test_split_conformal_rejects_mismatched_input():
    with pytest.raises(ValueError, match="input_cal and target_cal"):
        metrics.split_conformal(torch.zeros(3), torch.zeros(4), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="level"):
        metrics.split_conformal(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(2), level=95)


def test_oob_gaussian_nll_uses_the_out_of_bag_residual_variance():
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    y = x[:, 0] + 0.3 * rng.normal(size=120)
    forest = RandomForestRegressor(n_estimators=30, oob_score=True, random_state=0).fit(x[:100], y[:100])
    s2 = np.mean((y[:100] - forest.oob_prediction_) ** 2)
    r = y[100:] - forest.predict(x[100:])
    expected = np.mean(0.5 * np.log(2 * np.pi * s2) + r ** 2 / (2 * s2))
    assert metrics.oob_gaussian_nll(forest, x[:100], y[:100], x[100:], y[100:]) == pytest.approx(expected)
    no_oob = RandomForestRegressor(n_estimators=5, random_state=0).fit(x[:100], y[:100])
    with pytest.raises(ValueError, match="oob_score=True"):
        metrics.oob_gaussian_nll(no_oob, x[:100], y[:100], x[100:], y[100:])
