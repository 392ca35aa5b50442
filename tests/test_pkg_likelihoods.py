"""Specification of bdl_course.likelihoods: per-example NLL, the negative ELBO with KL / N by
construction, and raw outputs turned into a Predictive."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal

from bdl_course import bnn, likelihoods, metrics, models, train
from bdl_course.predictive import Predictive
from bdl_course.utils import seed_everything


def test_gaussian_nll_is_the_normal_negative_log_density_of_the_single_output_unit():
    lik = likelihoods.Gaussian(100, noise_std=0.5)
    out, y = torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([0.3, 1.0, -1.0])
    expected = -Normal(out[:, 0], 0.5).log_prob(y)
    torch.testing.assert_close(lik.nll(out, y, reduction="none"), expected)
    torch.testing.assert_close(lik.nll(out, y), expected.mean())


def test_a_learned_noise_starts_at_its_initial_value_is_floored_and_is_a_parameter():
    lik = likelihoods.Gaussian(10, noise_std=0.8, learn_noise=True, min_noise_std=0.01)
    assert lik.noise_std.item() == pytest.approx(0.8)
    assert [name for name, _ in lik.named_parameters()] == ["raw_noise"]
    with torch.no_grad():
        lik.raw_noise.fill_(-100.0)
    assert lik.noise_std.item() == pytest.approx(0.01)
    assert list(likelihoods.Gaussian(10, noise_std=0.8).parameters()) == []


def test_heteroskedastic_reads_mean_and_softplus_scale_or_a_mean_std_pair():
    lik = likelihoods.HeteroskedasticGaussian(50, min_std=0.1)
    out = torch.tensor([[0.0, -1.0], [2.0, 3.0]])
    y = torch.tensor([0.5, 1.0])
    std = F.softplus(out[:, 1]) + 0.1
    expected = -Normal(out[:, 0], std).log_prob(y)
    torch.testing.assert_close(lik.nll(out, y, reduction="none"), expected)
    torch.testing.assert_close(lik.nll((out[:, 0], std), y, reduction="none"), expected)


def test_categorical_nll_is_cross_entropy_for_one_and_for_s_weight_samples():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(3, 6, 4, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    lik = likelihoods.Categorical(6)
    torch.testing.assert_close(lik.nll(logits[0], y), F.cross_entropy(logits[0], y))
    torch.testing.assert_close(lik.nll(logits, y), torch.stack([F.cross_entropy(l, y) for l in logits]).mean())


def test_neg_elbo_divides_the_kl_by_the_training_set_size_and_scales_it_by_kl_factor():
    seed_everything(0)
    model = models.bayes_mlp(2, 4, 1, init_sigma=0.3)
    x, y = torch.randn(5, 2), torch.randn(5)
    lik = likelihoods.Gaussian(1000, noise_std=0.4)
    seed_everything(1)
    loss = lik(model, x, y)
    seed_everything(1)
    nll = lik.nll(model(x), y)
    kl = bnn.total_kl(model)
    torch.testing.assert_close(loss, nll + kl / 1000)
    lik.kl_factor = 0.25
    seed_everything(1)
    torch.testing.assert_close(lik.neg_elbo(model, x, y), nll + 0.25 * kl / 1000)


def test_for_a_deterministic_network_the_loss_is_the_nll():
    model = models.mlp(2, 4, 1)
    x, y = torch.randn(5, 2), torch.randn(5)
    lik = likelihoods.Gaussian(5, noise_std=1.0)
    torch.testing.assert_close(lik(model, x, y), lik.nll(model(x), y))


def test_predictive_takes_the_component_axis_first():
    lik = likelihoods.Gaussian(10, noise_std=0.3)
    p = lik.predictive(torch.randn(4, 6, 1))
    assert isinstance(p, Predictive) and p.n_components == 4 and p.shape == (6,)
    torch.testing.assert_close(p.scale, torch.full((4, 6), 0.3))
    q = likelihoods.Categorical(10).predictive(torch.randn(4, 6, 3))
    assert q.kind == "categorical" and q.logits.shape == (4, 6, 3)
    torch.testing.assert_close(q.logits.exp().sum(-1), torch.ones(4, 6))


@pytest.mark.parametrize("lik, out, y, error, match", [
    (likelihoods.Gaussian(5), torch.zeros(3, 2), torch.zeros(3), ValueError, r"one unit \(output \[\.\.\., 1\]\)"),
    (likelihoods.Gaussian(5), (torch.zeros(3), torch.ones(3)), torch.zeros(3), TypeError, "HeteroskedasticGaussian"),
    (likelihoods.Gaussian(5), torch.zeros(3, 1), torch.zeros(4), ValueError, "does not end in y's shape"),
    (likelihoods.HeteroskedasticGaussian(5), torch.zeros(3, 1), torch.zeros(3), ValueError, "two units"),
    (likelihoods.Categorical(5), torch.zeros(3, 4), torch.zeros(3), TypeError, "integer tensor"),
])
def test_outputs_that_do_not_fit_the_likelihood_raise_saying_what_is_expected(lik, out, y, error, match):
    with pytest.raises(error, match=match):
        lik.nll(out, y)


def test_bad_constructor_arguments_name_themselves():
    with pytest.raises(ValueError, match="dataset_size"):
        likelihoods.Gaussian(0)
    with pytest.raises(ValueError, match="noise_std"):
        likelihoods.Gaussian(10, noise_std=-1.0)
    with pytest.raises(ValueError, match="min_noise_std"):
        likelihoods.Gaussian(10, noise_std=0.01, learn_noise=True, min_noise_std=0.1)


class _NoiseInTheModel(torch.nn.Module):
    """The pre-likelihood way: the network holds its noise std, the loss is written by hand."""

    def __init__(self, body, noise_std):
        super().__init__()
        self.body = body
        self.raw_noise = torch.nn.Parameter(torch.log(torch.expm1(torch.tensor(noise_std - 1e-3))))

    def noise_std(self):
        return F.softplus(self.raw_noise) + 1e-3


def test_training_with_a_learned_noise_likelihood_repeats_the_hand_written_elbo_exactly():
    x = torch.linspace(-2, 2, 24).unsqueeze(1)
    y = torch.sin(2 * x[:, 0]) + 0.1 * torch.randn(24, generator=torch.Generator().manual_seed(0))

    seed_everything(3)
    old = _NoiseInTheModel(models.bayes_mlp(1, 8, 1, init_sigma=0.05), noise_std=0.5)

    def old_loss(m, xb, yb):
        return train.neg_elbo(metrics.gaussian_nll(m.body(xb)[:, 0], yb, m.noise_std()), bnn.total_kl(m), 1 / 24)
    seed_everything(4)
    h_old = train.fit(old, x, y, old_loss, epochs=5, batch_size=8, progress=False)

    seed_everything(3)
    body = models.bayes_mlp(1, 8, 1, init_sigma=0.05)
    lik = likelihoods.Gaussian(24, noise_std=0.5, learn_noise=True)
    seed_everything(4)
    h_new = train.fit(body, x, y, lik, epochs=5, batch_size=8, progress=False)
    assert h_new == pytest.approx(h_old, rel=1e-5)
    assert lik.noise_std.item() == pytest.approx(old.noise_std().item(), rel=1e-5)


def test_a_kl_warmup_callback_moves_kl_factor_from_0_to_1():
    lik = likelihoods.Categorical(10)
    seen = []
    cb = train.kl_warmup_callback(lik, warmup_steps=4)

    def loss(m, xb, yb):
        seen.append(lik.kl_factor)
        return lik(m, xb, yb)
    model = models.bayes_mlp(2, 3, 2)
    train.fit(model, torch.randn(8, 2), torch.randint(0, 2, (8,)), loss, epochs=3, batch_size=4,
              progress=False, callback=cb)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert math.isclose(lik.kl_factor, 1.0)
