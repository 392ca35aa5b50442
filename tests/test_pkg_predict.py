"""Specification of bdl_course.predict: batched predictive sampling, logmeanexp and summaries."""
import math

import pytest
import torch

from bdl_course import layers, models, predict


def _regressor(init_sigma=0.3):
    torch.manual_seed(0)
    return models.GaussianRegressor(models.bayes_mlp(3, 8, 1, init_sigma=init_sigma))


# ---------------------------------------------------------------- sample_predictions

def test_sample_predictions_of_a_regressor_is_samples_by_points():
    out = predict.sample_predictions(_regressor(), torch.randn(5, 3), n_samples=7)
    assert out.shape == (7, 5)


def test_sample_predictions_of_a_multi_output_network_keeps_the_output_dimension():
    out = predict.sample_predictions(models.bayes_mlp(3, 8, 2), torch.randn(5, 3), n_samples=7)
    assert out.shape == (7, 5, 2)


def test_sample_predictions_draws_different_weights_for_each_sample():
    out = predict.sample_predictions(_regressor(), torch.randn(5, 3), n_samples=4)
    assert all(not torch.allclose(out[0], out[s]) for s in range(1, 4))


def test_sample_predictions_builds_no_autograd_graph():
    out = predict.sample_predictions(_regressor(), torch.randn(5, 3), n_samples=2)
    assert not out.requires_grad


def test_a_frozen_model_gives_identical_samples_in_the_batched_and_the_loop_version():
    model = _regressor()
    for layer in layers.bayes_layers(model):
        layer.freeze()
    x = torch.randn(4, 3)
    batched = predict.sample_predictions(model, x, n_samples=3)
    looped = predict.sample_predictions_loop(model, x, n_samples=3)
    assert batched.shape == looped.shape == (3, 4)
    torch.testing.assert_close(batched, looped)
    torch.testing.assert_close(batched[0], model(x))
    assert torch.equal(batched[0], batched[2])


def test_batched_and_loop_samples_agree_in_distribution():
    model = _regressor(init_sigma=0.3)
    x = torch.randn(2, 3)
    torch.manual_seed(1)
    batched = predict.sample_predictions(model, x, n_samples=4000)
    looped = predict.sample_predictions_loop(model, x, n_samples=800)
    std = batched.std(0)
    assert torch.all(std > 0.05)  # the test below is about a real spread
    # means within 5 standard errors of their difference; stds within 10%
    se = std * math.sqrt(1 / 4000 + 1 / 800)
    assert torch.all((batched.mean(0) - looped.mean(0)).abs() < 5 * se)
    torch.testing.assert_close(looped.std(0), std, rtol=0.1, atol=0)


def test_sample_predictions_loop_keeps_the_output_dimension():
    out = predict.sample_predictions_loop(models.bayes_mlp(3, 4, 2), torch.randn(5, 3), n_samples=2)
    assert out.shape == (2, 5, 2)


@pytest.mark.parametrize("fn", [predict.sample_predictions, predict.sample_predictions_loop])
def test_sampling_rejects_a_batched_input_and_a_zero_sample_count(fn):
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        fn(_regressor(), torch.randn(2, 5, 3), n_samples=2)
    with pytest.raises(ValueError, match="n_samples"):
        fn(_regressor(), torch.randn(5, 3), n_samples=0)


# ---------------------------------------------------------------- logmeanexp

def test_logmeanexp_equals_log_of_mean_of_exp_for_moderate_values():
    t = torch.randn(6, 4, dtype=torch.float64) * 3
    torch.testing.assert_close(predict.logmeanexp(t), t.exp().mean(0).log())
    torch.testing.assert_close(predict.logmeanexp(t, dim=1), t.exp().mean(1).log())


def test_logmeanexp_is_finite_and_exact_for_large_values():
    # exp(1000) overflows; the stable version must not
    t = torch.tensor([[1000.0, -1000.0], [1000.0, -1002.0]], dtype=torch.float64)
    got = predict.logmeanexp(t, dim=0)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.tensor([1000.0, -1000.0 + math.log((1 + math.exp(-2)) / 2)],
                                                 dtype=torch.float64))


def test_logmeanexp_removes_the_reduced_dimension():
    assert predict.logmeanexp(torch.zeros(5, 3, 2), dim=1).shape == (5, 2)


# ---------------------------------------------------------------- summarize

def test_summarize_gives_mean_std_min_max_range_per_point():
    samples = torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 8.0]])
    s = predict.summarize(samples)
    assert set(s) == {"mean", "std", "min", "max", "range"}
    assert all(v.shape == (2,) for v in s.values())
    torch.testing.assert_close(s["mean"], torch.tensor([2.0, 6.0]))
    torch.testing.assert_close(s["std"], samples.std(0))
    torch.testing.assert_close(s["min"], torch.tensor([1.0, 5.0]))
    torch.testing.assert_close(s["max"], torch.tensor([3.0, 8.0]))
    torch.testing.assert_close(s["range"], torch.tensor([2.0, 3.0]))


def test_summarize_rejects_samples_that_are_not_two_dimensional():
    with pytest.raises(ValueError, match="samples must have 2 dimensions"):
        predict.summarize(torch.zeros(3, 4, 2))
