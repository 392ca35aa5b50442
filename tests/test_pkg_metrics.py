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
