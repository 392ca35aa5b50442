"""Specification of bdl_course.metrics: every metric, in the (input, target, ...) convention."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from bdl_course import metrics, predictive
from bdl_course.predictive import Predictive
from conftest import F64


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
    (torch.zeros(4, 3), torch.zeros(5, dtype=torch.int64), "one entry per example", ValueError),
    (torch.zeros(2, 3), torch.tensor([0, 3]), r"\[0, 3\)", ValueError),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), "empty", ValueError),
])
def test_accuracy_rejects_bad_input_with_a_clear_message(scores, labels, match, error):
    with pytest.raises(error, match=match):
        metrics.accuracy(scores, labels)


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


# ---------------------------------------------------------------- entropy and its decomposition

def test_entropy_uses_zero_log_zero_and_matches_categorical():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=F64)
    got = metrics.entropy(p)
    torch.testing.assert_close(got, Categorical(probs=p).entropy())
    assert got[0] == 0 and torch.isfinite(got).all()


def test_entropy_decomposition_identities_on_random_and_sparse_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(10, 40, 5, generator=g, dtype=F64)
    logits[torch.rand(10, 40, 5, generator=g) < 0.4] = -math.inf
    logits[..., 0] = 0.0
    p = torch.softmax(logits, -1)
    total, expected, mi = predictive.uncertainty_decomposition(p)
    assert total.shape == expected.shape == mi.shape == (40,)
    torch.testing.assert_close(total, Categorical(probs=p.mean(0)).entropy())
    torch.testing.assert_close(expected, Categorical(probs=p).entropy().mean(0))
    assert (mi >= 0).all()
    torch.testing.assert_close(total, expected + mi)
    assert (total <= math.log(5) + 1e-12).all()


def test_mutual_information_is_zero_when_the_samples_agree_and_log2_when_two_sure_samples_disagree():
    p = torch.softmax(torch.randn(1, 6, 4), -1).expand(5, 6, 4)
    assert torch.allclose(predictive.uncertainty_decomposition(p)[2], torch.zeros(6), atol=1e-6)
    sure = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    total, expected, mi = predictive.uncertainty_decomposition(sure)
    torch.testing.assert_close(expected, torch.zeros(1))
    torch.testing.assert_close(mi, torch.tensor([math.log(2)]))


@pytest.mark.parametrize("bad", [torch.randn(3, 4, 5), torch.full((3, 4, 5), 0.5), torch.ones(4, 5) / 5])
def test_uncertainty_decomposition_rejects_logits_and_wrong_shapes_naming_probs(bad):
    with pytest.raises(ValueError, match="probs"):
        predictive.uncertainty_decomposition(bad)


# ---------------------------------------------------------------- NLL, Brier, calibration

def test_categorical_nll_and_brier_score_by_hand():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=F64)
    y = torch.tensor([0, 1])
    assert metrics.categorical_nll(p.log(), y) == pytest.approx(-(math.log(0.7) + math.log(0.1)) / 2)
    assert metrics.brier_score(p, y) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.01 + 0.81 + 0.64)) / 2)
    assert metrics.categorical_nll(torch.tensor([[0.0, -math.inf]]), torch.tensor([1])) == math.inf
    with pytest.raises(ValueError, match="log_probs"):
        metrics.categorical_nll(torch.tensor([[2.0, 1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="labels"):
        metrics.brier_score(p, torch.tensor([0, 3]))


def test_ece_of_a_perfectly_calibrated_toy_is_zero():
    # confidence 0.8 on five inputs, four right; confidence 0.6 on five inputs, three right
    p = torch.tensor([[0.8, 0.2]] * 5 + [[0.4, 0.6]] * 5)
    y = torch.tensor([0, 0, 0, 0, 1] + [1, 1, 1, 0, 0])
    assert metrics.ece(p, y, n_bins=10) == pytest.approx(0.0, abs=1e-6)


def test_ece_weights_bins_by_their_counts_and_matches_a_reference_loop():
    p = torch.tensor([[0.99, 0.01]] * 3 + [[0.6, 0.4]])
    y = torch.tensor([0, 0, 0, 1])
    assert metrics.ece(p, y, n_bins=10) == pytest.approx(0.75 * 0.01 + 0.25 * 0.6, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(3 * torch.randn(400, 10, generator=g, dtype=F64), -1)
    y = torch.randint(10, (400,), generator=g)
    conf, pred = p.max(1)
    ref = 0.0
    for b in range(15):
        m = (conf > b / 15) & (conf <= (b + 1) / 15)
        if m.any():
            ref += m.double().mean().item() * abs((pred[m] == y[m]).double().mean().item() - conf[m].mean().item())
    assert metrics.ece(p, y, n_bins=15) == pytest.approx(ref, abs=1e-9)


def test_calibration_bins_put_confidence_one_in_the_last_bin_and_mark_empty_bins():
    p = torch.tensor([[1.0, 0.0], [0.55, 0.45]])
    bins = metrics.calibration_bins(p, torch.tensor([0, 1]), n_bins=4)
    assert bins["count"].tolist() == [0, 0, 1, 1]
    assert torch.isnan(bins["accuracy"][:2]).all()
    assert bins["accuracy"][2:].tolist() == [0.0, 1.0]
    assert bins["edges"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


# ---------------------------------------------------------------- AUROC and rejection

@pytest.mark.parametrize("seed", [0, 1])
def test_auroc_equals_sklearn_roc_auc_score_with_and_without_ties(seed):
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(seed)
    labels = torch.rand(300, generator=g) < 0.3
    scores = torch.randn(300, generator=g) + labels.float()
    assert metrics.auroc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    rounded = (scores * 2).round() / 2  # many ties
    assert metrics.auroc(rounded, labels.long()) == pytest.approx(roc_auc_score(labels.numpy(), rounded.numpy()), abs=1e-12)


def test_auroc_extremes_and_errors():
    y = torch.tensor([0, 0, 1, 1])
    assert metrics.auroc(torch.tensor([0.1, 0.2, 0.3, 0.4]), y) == 1.0
    assert metrics.auroc(torch.tensor([0.4, 0.3, 0.2, 0.1]), y) == 0.0
    assert metrics.auroc(torch.ones(4), y) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        metrics.auroc(torch.ones(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="scores"):
        metrics.auroc(torch.tensor([0.1, math.nan]), torch.tensor([0, 1]))


def test_rejection_accuracy_drops_the_most_uncertain_inputs_first():
    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    y = torch.tensor([0, 0, 1, 1])  # the two least certain are wrong
    uncertainty = torch.tensor([0.1, 0.2, 0.9, 0.8])
    acc = metrics.rejection_accuracy(p, y, uncertainty, [0.0, 0.25, 0.5, 0.75])
    torch.testing.assert_close(acc, torch.tensor([0.5, 2 / 3, 1.0, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="fractions"):
        metrics.rejection_accuracy(p, y, uncertainty, [1.0])


# ---------------------------------------------------------------- the UCI protocol's scores

def test_uci_scores_of_a_predictive_are_the_mixture_scores_in_original_units():
    from torch.distributions import Categorical, MixtureSameFamily

    # two splits, three components, four test rows; standardised components, targets in original units
    g = torch.Generator().manual_seed(5)
    mu = torch.randn(3, 2, 4, generator=g, dtype=F64)
    sigma = torch.rand(3, 2, 4, generator=g, dtype=F64) + 0.2
    y = 5 + torch.randn(2, 4, generator=g, dtype=F64)
    y_mean, y_std = torch.tensor([5.0, 6.0], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64)
    pred = Predictive.gaussian(mu, sigma)
    rmse, nll = metrics.uci_scores(pred, y, y_mean, y_std)
    _, nll_one = metrics.uci_scores(pred, y, y_mean, y_std, one_gaussian=True)
    assert rmse.shape == nll.shape == (2,)
    for k in range(2):
        components = Normal(y_mean[k] + y_std[k] * mu[:, k].T, y_std[k] * sigma[:, k].T)  # [4, 3]
        mixture = MixtureSameFamily(Categorical(logits=torch.zeros(4, 3, dtype=F64)), components)
        torch.testing.assert_close(nll[k], -mixture.log_prob(y[k]).mean())
        torch.testing.assert_close(rmse[k], (mixture.mean - y[k]).pow(2).mean().sqrt())
        torch.testing.assert_close(nll_one[k], -Normal(mixture.mean, mixture.variance.sqrt()).log_prob(y[k]).mean())


def test_uci_scores_need_a_gaussian_predictive_ending_in_the_targets_shape():
    pred = Predictive.gaussian(torch.zeros(3, 2, 4), 1.0)
    with pytest.raises(TypeError, match="Gaussian Predictive"):
        metrics.uci_scores(torch.zeros(3, 2, 4), torch.zeros(2, 4), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match=r"must end in target's \[K, N\]"):
        metrics.uci_scores(pred, torch.zeros(2, 5), torch.zeros(2), torch.ones(2))


def test_classification_metrics_accept_a_categorical_predictive_as_its_probabilities():
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(2 * torch.randn(5, 30, 3, generator=g, dtype=F64), dim=-1)
    labels = torch.randint(0, 3, (30,), generator=g)
    pred = Predictive.categorical(lp)
    probs = lp.exp().mean(0)
    assert metrics.accuracy(pred, labels) == metrics.accuracy(probs, labels)
    assert metrics.categorical_nll(pred, labels) == pytest.approx(metrics.categorical_nll(probs.log(), labels))
    assert metrics.brier_score(pred, labels) == pytest.approx(metrics.brier_score(probs, labels))
    assert metrics.ece(pred, labels, n_bins=5) == pytest.approx(metrics.ece(probs, labels, n_bins=5))
    torch.testing.assert_close(metrics.entropy(pred), metrics.entropy(probs))
    torch.testing.assert_close(metrics.rejection_accuracy(pred, labels, pred.entropy(), [0.0, 0.5]),
                               metrics.rejection_accuracy(probs, labels, pred.entropy(), [0.0, 0.5]))


def test_mean_and_se_is_the_mean_and_the_standard_error_of_the_mean():
    mean, se = metrics.mean_and_se([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0 and se == pytest.approx(math.sqrt(((4 + 1 + 0 + 9) / 3) / 4))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mean_and_se([1.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.mean_and_se([1.0, math.nan])
