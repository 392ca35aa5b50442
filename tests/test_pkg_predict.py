"""Specification of bdl_course.predict: batched predictive sampling, logmeanexp and summaries."""
import math

import pytest
import torch
from torch import nn

from bdl_course import bnn, likelihoods, models, predict


def _body(init_sigma=0.3, out=1):
    torch.manual_seed(0)
    return models.bayes_mlp(3, 8, out, init_sigma=init_sigma)


def _lik():
    return likelihoods.Gaussian(10, noise_std=0.5)


# ---------------------------------------------------------------- predictive of a Bayesian network, against the loop

def test_predictive_of_a_regressor_has_samples_by_points_components():
    p = predict.predictive(_body(), torch.randn(5, 3), _lik(), n_samples=7)
    assert p.loc.shape == p.scale.shape == (7, 5)


def test_each_component_is_a_different_weight_sample_and_no_graph_is_built():
    p = predict.predictive(_body(), torch.randn(5, 3), _lik(), n_samples=4)
    assert all(not torch.allclose(p.loc[0], p.loc[s]) for s in range(1, 4))
    assert not p.loc.requires_grad


def test_a_frozen_model_gives_identical_samples_in_the_batched_and_the_loop_version():
    model = _body()
    for layer in bnn.bayes_layers(model):
        layer.freeze()
    x = torch.randn(4, 3)
    batched = predict.predictive(model, x, _lik(), n_samples=3).loc
    looped = predict.sample_predictions_loop(model, x, n_samples=3).squeeze(-1)
    assert batched.shape == looped.shape == (3, 4)
    torch.testing.assert_close(batched, looped)
    torch.testing.assert_close(batched[0], model(x)[:, 0])
    assert torch.equal(batched[0], batched[2])


def test_batched_and_loop_samples_agree_in_distribution():
    model = _body(init_sigma=0.3)
    x = torch.randn(2, 3)
    torch.manual_seed(1)
    batched = predict.predictive(model, x, _lik(), n_samples=4000).loc
    looped = predict.sample_predictions_loop(model, x, n_samples=800).squeeze(-1)
    std = batched.std(0)
    assert torch.all(std > 0.05)  # the test below is about a real spread
    # means within 5 standard errors of their difference; stds within 5 standard errors of a std (~std/sqrt(2n))
    se = std * math.sqrt(1 / 4000 + 1 / 800)
    assert torch.all((batched.mean(0) - looped.mean(0)).abs() < 5 * se)
    assert torch.all((looped.std(0) - std).abs() < 5 * std * math.sqrt(1 / 8000 + 1 / 1600))


def test_sample_predictions_loop_keeps_the_output_dimension_and_rejects_bad_input():
    out = predict.sample_predictions_loop(models.bayes_mlp(3, 4, 2), torch.randn(5, 3), n_samples=2)
    assert out.shape == (2, 5, 2)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        predict.sample_predictions_loop(_body(), torch.randn(2, 5, 3), n_samples=2)
    with pytest.raises(ValueError, match="n_samples"):
        predict.sample_predictions_loop(_body(), torch.randn(5, 3), n_samples=0)


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

# ---------------------------------------------------------------- predictive: one call for every method

def test_predictive_of_a_bbb_network_draws_s_weight_samples_in_one_pass():
    from bdl_course import likelihoods

    torch.manual_seed(0)
    body = models.bayes_mlp(2, 8, 1, init_sigma=0.3)
    x = torch.randn(6, 2)
    p = predict.predictive(body, x, likelihoods.Gaussian(100, noise_std=0.2), n_samples=50)
    assert p.n_components == 50 and p.shape == (6,)
    assert p.epistemic().min() > 0
    torch.testing.assert_close(p.scale, torch.full((50, 6), 0.2))
    torch.manual_seed(1)
    direct = body(x.expand(50, *x.shape)).squeeze(-1)
    torch.manual_seed(1)
    torch.testing.assert_close(predict.predictive(body, x, likelihoods.Gaussian(100, noise_std=0.2), 50).loc, direct)


def test_predictive_of_a_point_estimate_is_one_component_and_batches_give_the_same_result():
    from bdl_course import likelihoods

    net = models.mlp(3, 5, 2)
    x = torch.randn(10, 3)
    lik = likelihoods.HeteroskedasticGaussian(10)
    p = predict.predictive(net, x, lik)
    q = predict.predictive(net, x, lik, batch_size=3)
    assert p.n_components == 1
    torch.testing.assert_close(p.loc, q.loc)
    torch.testing.assert_close(p.scale, q.scale)


def test_predictive_restores_the_train_or_eval_mode_of_every_module():
    from bdl_course import likelihoods

    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))
    net.train()
    net[1].eval()
    predict.predictive(net, torch.randn(3, 2), likelihoods.Gaussian(3))
    assert net.training and net[0].training and not net[1].training


def test_predictive_rejects_a_missing_likelihood_and_bad_inputs():
    net = models.mlp(2, 3, 1)
    with pytest.raises(TypeError, match="likelihood"):
        predict.predictive(net, torch.randn(3, 2), None)
    with pytest.raises(ValueError, match=r"\[N, \.\.\.\]"):
        predict.predictive(net, torch.randn(2), object())
    with pytest.raises(TypeError, match="model"):
        predict.predictive(lambda x: x, torch.randn(3, 2), None)


class _ShiftInTrainMode(torch.nn.Module):
    """Adds 100 in train mode: a module (like batch norm) whose output depends on its mode."""

    def forward(self, x):
        return x + 100.0 if self.training else x


def _dropout_net(p=0.5):
    return torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Dropout(p),
                               torch.nn.Linear(32, 32), _ShiftInTrainMode(), torch.nn.Linear(32, 1))


def test_mc_dropout_wraps_any_network_with_dropout_and_keeps_only_dropout_on():
    from bdl_course import likelihoods

    torch.manual_seed(0)
    net = _dropout_net()
    net.eval()
    x = torch.randn(4, 2)
    lik = likelihoods.Gaussian(4, noise_std=0.1)
    p = predict.predictive(predict.mc_dropout(net), x, lik, n_samples=200)
    assert p.n_components == 200 and p.epistemic().min() > 0
    assert not net.training and not net[2].training and not net[4].training  # modes restored
    # the shift stayed in eval mode: the mean over masks is the mean network's output,
    # as dropout's 1/(1-p) scaling keeps every hidden unit's mean (here within 4 standard errors)
    mean_net = net(x).squeeze(-1)
    se = (p.epistemic() / 200).sqrt()
    assert ((p.mean() - mean_net).abs() < 4 * se + 1e-6).all()


def test_mc_dropout_restores_train_mode_and_refuses_a_network_without_dropout():
    net = _dropout_net()
    net.train()
    from bdl_course import likelihoods
    predict.predictive(predict.mc_dropout(net), torch.randn(4, 2), likelihoods.Gaussian(4), n_samples=3)
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="no nn.Dropout"):
        predict.mc_dropout(models.mlp(2, 3, 1))


def test_the_loop_restores_the_models_mode_instead_of_leaving_it_in_eval():
    model = _body()
    model.train()
    predict.sample_predictions_loop(model, torch.randn(3, 3), 2)
    assert model.training
