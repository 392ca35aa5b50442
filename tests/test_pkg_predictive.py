"""Specification of bdl_course.predictive: the Predictive type (S components, axis first) and the
decompositions it is built on, each checked against torch.distributions or a direct formula."""
import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from bdl_course import predictive
from bdl_course.predictive import Predictive
from conftest import F64


def _gaussian(s=5, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc = 2 * torch.randn(s, n, generator=g, dtype=F64)
    scale = torch.rand(s, n, generator=g, dtype=F64) + 0.2
    return loc, scale


def _mixture(loc, scale):
    """The same uniform mixture in torch.distributions, batch over inputs."""
    s = loc.shape[0]
    comps = Normal(loc.movedim(0, -1), scale.movedim(0, -1))
    return MixtureSameFamily(Categorical(torch.full((*loc.shape[1:], s), 1.0 / s, dtype=loc.dtype)), comps)


def _categorical(s=6, n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(3 * torch.randn(s, n, c, generator=g, dtype=F64), dim=-1)


# ---------------------------------------------------------------- construction

def test_gaussian_broadcasts_a_scalar_or_shared_scale_to_every_component():
    loc = torch.zeros(3, 4)
    assert Predictive.gaussian(loc, 0.5).scale.shape == (3, 4)
    p = Predictive.gaussian(loc, torch.tensor(0.5))
    assert p.kind == "gaussian" and p.n_components == 3 and p.shape == (4,)
    torch.testing.assert_close(p.scale, torch.full((3, 4), 0.5))


def test_a_point_estimate_is_one_component_with_the_gaussians_own_moments():
    mu, sigma = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0])
    p = Predictive.gaussian(mu[None], sigma[None])
    torch.testing.assert_close(p.mean(), mu)
    torch.testing.assert_close(p.std(), sigma)
    assert torch.all(p.epistemic() == 0)


@pytest.mark.parametrize("loc, scale, error, match", [
    (torch.zeros(4), 1.0, ValueError, r"loc must have shape \[S, N, \.\.\.\]"),
    ([0.0, 1.0], 1.0, TypeError, "loc must be a torch.Tensor"),
    (torch.zeros(2, 3), 0.0, ValueError, "scale must be positive"),
    (torch.zeros(2, 3), torch.ones(4), ValueError, "does not broadcast"),
    (torch.zeros(2, 3), "1", TypeError, "scale must be a positive number or a tensor"),
    (torch.tensor([[0.0, math.nan]]), 1.0, ValueError, "loc contains NaN"),
])
def test_gaussian_rejects_bad_components_naming_the_argument(loc, scale, error, match):
    with pytest.raises(error, match=match):
        Predictive.gaussian(loc, scale)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(3, 4), r"\[S, N, C\]"),
    (torch.randn(2, 3, 4), "log-probabilities"),
    (torch.log(torch.full((2, 3, 4), 0.3)), "normalised"),
    (torch.full((2, 3, 4), math.nan), "no NaN"),
])
def test_categorical_rejects_logits_unnormalised_values_and_wrong_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        Predictive.categorical(bad)


def test_categorical_accepts_a_probability_of_zero():
    lp = torch.log(torch.tensor([[[1.0, 0.0], [0.5, 0.5]]]))
    p = Predictive.categorical(lp)
    torch.testing.assert_close(p.probs(), torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    assert p.nll(torch.tensor([1, 0])) == math.inf


def test_cat_joins_components_and_refuses_different_kinds_or_shapes():
    a, b = Predictive.gaussian(torch.zeros(2, 3), 1.0), Predictive.gaussian(torch.ones(4, 3), 2.0)
    joined = Predictive.cat([a, b])
    assert joined.n_components == 6
    torch.testing.assert_close(joined.mean(), torch.full((3,), 4 / 6))
    with pytest.raises(ValueError, match="shape"):
        Predictive.cat([a, Predictive.gaussian(torch.zeros(2, 5), 1.0)])
    with pytest.raises(ValueError, match="categorical"):
        Predictive.cat([a, Predictive.categorical(torch.log(torch.full((1, 3, 2), 0.5)))])


# ---------------------------------------------------------------- Gaussian mixtures against torch.distributions

def test_mean_and_variance_are_those_of_the_mixture_by_the_law_of_total_variance():
    loc, scale = _gaussian()
    p, ref = Predictive.gaussian(loc, scale), _mixture(loc, scale)
    torch.testing.assert_close(p.mean(), ref.mean)
    torch.testing.assert_close(p.var(), ref.variance)
    torch.testing.assert_close(p.aleatoric() + p.epistemic(), p.var())
    torch.testing.assert_close(p.aleatoric(), (scale ** 2).mean(0))


def test_the_mixture_variance_adds_the_spread_of_the_means_to_the_mean_variance():
    p = Predictive.gaussian(torch.tensor([[-1.0], [1.0]]), torch.tensor([[0.5], [0.5]]))
    assert p.mean().item() == 0.0 and p.var().item() == pytest.approx(0.25 + 1.0)  # a variance, not a std


def test_log_prob_and_nll_are_the_exact_mixture_density_and_stay_finite_far_away():
    loc, scale = _gaussian()
    p, ref = Predictive.gaussian(loc, scale), _mixture(loc, scale)
    y = torch.linspace(-3, 3, 7, dtype=F64)
    torch.testing.assert_close(p.log_prob(y), ref.log_prob(y))
    torch.testing.assert_close(p.nll(y), -ref.log_prob(y).mean())
    torch.testing.assert_close(p.nll(y, reduction="sum"), -ref.log_prob(y).sum())
    far = torch.full((7,), 1e4, dtype=F64)
    assert torch.isfinite(p.log_prob(far)).all()
    with pytest.raises(ValueError, match="reduction"):
        p.nll(y, reduction="max")
    with pytest.raises(ValueError, match=r"target must have shape \(7,\)"):
        p.log_prob(torch.zeros(3, dtype=F64))


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_interval_holds_level_of_the_mixture_mass_between_its_ends(level):
    loc, scale = _gaussian(seed=3)
    p, ref = Predictive.gaussian(loc, scale), _mixture(loc, scale)
    lo, hi = p.interval(level)
    torch.testing.assert_close(ref.cdf(lo), torch.full_like(lo, (1 - level) / 2), atol=1e-9, rtol=0)
    torch.testing.assert_close(ref.cdf(hi), torch.full_like(hi, (1 + level) / 2), atol=1e-9, rtol=0)


def test_the_interval_of_one_gaussian_is_mean_plus_minus_z_std():
    p = Predictive.gaussian(torch.tensor([[1.0, -2.0]]), torch.tensor([[2.0, 0.5]]))
    lo, hi = p.interval(0.95)
    torch.testing.assert_close(hi, torch.tensor([1.0 + 1.959964 * 2, -2.0 + 1.959964 * 0.5]))
    torch.testing.assert_close(lo, torch.tensor([1.0 - 1.959964 * 2, -2.0 - 1.959964 * 0.5]))
    with pytest.raises(ValueError, match="level"):
        p.interval(95)


def test_samples_of_y_follow_the_mixture_within_their_standard_error():
    loc, scale = _gaussian(s=3, n=4, seed=5)
    p = Predictive.gaussian(loc, scale)
    n = 20000
    draws = p.sample(n, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (n, 4)
    se = (p.var() / n).sqrt()
    assert ((draws.mean(0) - p.mean()).abs() < 4 * se).all()
    # fraction below the mixture median: binomial with p = 1/2
    median_lo, _ = p.interval(1e-9)
    below = (draws < median_lo).double().mean(0)
    assert ((below - 0.5).abs() < 4 * math.sqrt(0.25 / n)).all()


def test_sample_is_repeatable_with_a_generator():
    p = Predictive.gaussian(*_gaussian())
    a = p.sample(5, generator=torch.Generator().manual_seed(1))
    b = p.sample(5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_extra_per_input_axes_pass_through():
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(4, 3, 5, generator=g), torch.rand(4, 3, 5, generator=g) + 0.1
    p = Predictive.gaussian(loc, scale)
    assert p.shape == (3, 5) and p.var().shape == (3, 5) and p.interval()[0].shape == (3, 5)
    assert p.log_prob(torch.zeros(3, 5)).shape == (3, 5) and p.sample(2).shape == (2, 3, 5)


def test_gaussian_only_methods_refuse_a_categorical_predictive_and_back():
    c = Predictive.categorical(_categorical())
    g = Predictive.gaussian(*_gaussian())
    with pytest.raises(TypeError, match="gaussian"):
        c.var()
    with pytest.raises(TypeError, match="categorical"):
        g.entropy()


# ---------------------------------------------------------------- categorical mixtures

def test_probs_entropy_and_mutual_information_of_the_class_mixture():
    lp = _categorical()
    p = Predictive.categorical(lp)
    probs = lp.exp()
    torch.testing.assert_close(p.probs(), probs.mean(0))
    torch.testing.assert_close(p.log_probs(), torch.log(probs.mean(0)))
    torch.testing.assert_close(p.entropy(), Categorical(probs=probs.mean(0)).entropy())
    torch.testing.assert_close(p.expected_entropy(), Categorical(probs=probs).entropy().mean(0))
    torch.testing.assert_close(p.mutual_information(), p.entropy() - p.expected_entropy())
    torch.testing.assert_close(p.aleatoric(), p.expected_entropy())
    torch.testing.assert_close(p.epistemic(), p.mutual_information())


def test_class_log_prob_is_the_log_of_the_mean_probability_of_the_label():
    lp = _categorical()
    p = Predictive.categorical(lp)
    y = torch.tensor([0, 3, 1, 1, 2])
    expected = torch.log(lp.exp().mean(0)[torch.arange(5), y])
    torch.testing.assert_close(p.log_prob(y), expected)
    torch.testing.assert_close(p.nll(y), -expected.mean())
    with pytest.raises(TypeError, match="integer tensor"):
        p.log_prob(y.double())
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        p.log_prob(torch.tensor([0, 4, 1, 1, 2]))


def test_class_samples_follow_the_mean_probabilities_within_their_standard_error():
    lp = _categorical(s=3, n=2, c=3, seed=2)
    p = Predictive.categorical(lp)
    n = 20000
    draws = p.sample(n, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (n, 2) and draws.dtype == torch.int64
    freq = torch.stack([(draws == c).double().mean(0) for c in range(3)], dim=-1)
    probs = p.probs()
    assert ((freq - probs).abs() <= 4 * (probs * (1 - probs) / n).sqrt() + 1e-12).all()


def test_to_moves_every_tensor_and_keeps_the_values():
    p = Predictive.gaussian(*_gaussian()).to("cpu")
    assert p.device.type == "cpu" and p.loc.dtype == F64
    assert "gaussian" in repr(p) and "n_components=5" in repr(p)


# ---------------------------------------------------------------- the functional forms

def test_logmeanexp_is_exact_for_large_values_and_rejects_nan():
    t = torch.tensor([[1000.0, -5.0], [1000.0, -7.0]])
    torch.testing.assert_close(predictive.logmeanexp(t, dim=0),
                               torch.tensor([1000.0, math.log((math.exp(-5) + math.exp(-7)) / 2)]))
    assert predictive.logmeanexp(torch.tensor([-math.inf, 0.0])) == pytest.approx(math.log(0.5))
    with pytest.raises(ValueError, match="NaN"):
        predictive.logmeanexp(torch.tensor([0.0, math.nan]))


def test_gaussian_mixture_log_prob_takes_the_target_last():
    loc, scale = _gaussian()
    y = torch.zeros(7, dtype=F64)
    torch.testing.assert_close(predictive.gaussian_mixture_log_prob(loc, scale, y), _mixture(loc, scale).log_prob(y))


def test_uncertainty_decomposition_accepts_extra_input_axes():
    probs = torch.softmax(torch.randn(4, 2, 3, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    total, expected, mi = predictive.uncertainty_decomposition(probs)
    assert total.shape == expected.shape == mi.shape == (2, 3)
    assert (mi >= 0).all()


# ---------------------------------------------------------------- variance_decomposition

def test_variance_decomposition_is_mean_variance_and_variance_of_means():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(30, 4, generator=g, dtype=torch.float64)
    sigma = torch.rand(30, 4, generator=g, dtype=torch.float64) + 0.1
    aleatoric, epistemic = predictive.variance_decomposition(mu, sigma)
    assert aleatoric.shape == epistemic.shape == (4,)
    torch.testing.assert_close(aleatoric, (sigma ** 2).mean(0))
    torch.testing.assert_close(epistemic, mu.var(0, unbiased=False))  # divide by S: the mixture's variance


def test_the_two_parts_add_up_to_the_variance_of_the_mixture():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64) * 2
    sigma = torch.rand(5, 3, generator=g, dtype=torch.float64) + 0.2
    aleatoric, epistemic = predictive.variance_decomposition(mu, sigma)
    # E[y^2] - E[y]^2 of the uniform mixture, from its components' moments
    second_moment = (sigma ** 2 + mu ** 2).mean(0)
    torch.testing.assert_close(aleatoric + epistemic, second_moment - mu.mean(0) ** 2)


def test_one_weight_sample_has_no_epistemic_variance_and_extra_dimensions_pass_through():
    aleatoric, epistemic = predictive.variance_decomposition(torch.randn(1, 6), torch.full((1, 6), 0.5))
    assert torch.all(epistemic == 0) and torch.allclose(aleatoric, torch.full((6,), 0.25))
    aleatoric, epistemic = predictive.variance_decomposition(torch.randn(7, 2, 3), torch.ones(7, 2, 3))
    assert aleatoric.shape == epistemic.shape == (2, 3)


@pytest.mark.parametrize("mu, sigma, match", [
    (torch.zeros(3, 4), torch.ones(3, 5), "same shape"),
    (torch.tensor(0.0), torch.tensor(1.0), "same shape"),
    (torch.zeros(3, 4), torch.zeros(3, 4), "scale must be positive"),
    (torch.zeros(3, 4), torch.full((3, 4), math.nan), "scale"),
])
def test_variance_decomposition_rejects_bad_input(mu, sigma, match):
    with pytest.raises(ValueError, match=match):
        predictive.variance_decomposition(mu, sigma)


# ---------------------------------------------------------------- logmeanexp

def test_logmeanexp_equals_log_of_mean_of_exp_for_moderate_values():
    t = torch.randn(6, 4, dtype=torch.float64) * 3
    torch.testing.assert_close(predictive.logmeanexp(t), t.exp().mean(0).log())
    torch.testing.assert_close(predictive.logmeanexp(t, dim=1), t.exp().mean(1).log())


def test_logmeanexp_is_finite_and_exact_for_large_values():
    # exp(1000) overflows; the stable version must not
    t = torch.tensor([[1000.0, -1000.0], [1000.0, -1002.0]], dtype=torch.float64)
    got = predictive.logmeanexp(t, dim=0)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.tensor([1000.0, -1000.0 + math.log((1 + math.exp(-2)) / 2)],
                                                 dtype=torch.float64))


def test_logmeanexp_removes_the_reduced_dimension():
    assert predictive.logmeanexp(torch.zeros(5, 3, 2), dim=1).shape == (5, 2)
