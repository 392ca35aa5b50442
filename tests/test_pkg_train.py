"""Specification of bdl_course.train: KL scaling, the negative ELBO, warm-up, and the one fit loop."""
import math

import pytest
import torch
import torch.nn.functional as F

from bdl_course import bnn, ensembles, likelihoods, metrics, models, train
from bdl_course.utils import seed_everything


# ---------------------------------------------------------------- KL scaling

@pytest.mark.parametrize("scheme, expected", [("per_example", 1 / 1000), ("per_batch", 1 / 50),
                                              ("per_param", 1 / 321), ("none", 0.0)])
def test_kl_weight_for_each_scheme(scheme, expected):
    assert train.kl_weight(scheme, n_train=1000, batch_size=50, num_params=321) == pytest.approx(expected, rel=1e-15)


def test_kl_weight_rejects_an_unknown_scheme_listing_the_known_ones():
    with pytest.raises(ValueError, match="per_dataset") as info:
        train.kl_weight("per_dataset", n_train=100)
    for scheme in train.KL_SCHEMES:
        assert scheme in str(info.value)


@pytest.mark.parametrize("scheme, missing", [("per_batch", "batch_size"), ("per_param", "num_params")])
def test_kl_weight_needs_the_size_its_scheme_divides_by(scheme, missing):
    with pytest.raises(ValueError, match=missing):
        train.kl_weight(scheme, n_train=100)


def test_kl_weight_rejects_a_non_positive_n_train():
    with pytest.raises(ValueError, match="n_train"):
        train.kl_weight("per_example", n_train=0)


# ---------------------------------------------------------------- negative ELBO

def test_neg_elbo_adds_the_weighted_kl_to_the_mean_nll():
    nll, kl = torch.tensor(1.5, requires_grad=True), torch.tensor(40.0, requires_grad=True)
    loss = train.neg_elbo(nll, kl, 0.25)
    assert loss.item() == pytest.approx(1.5 + 0.25 * 40.0)
    loss.backward()
    assert nll.grad.item() == 1.0 and kl.grad.item() == 0.25


def test_neg_elbo_with_zero_weight_is_the_nll():
    assert train.neg_elbo(torch.tensor(2.0), torch.tensor(1e6), 0.0).item() == 2.0


@pytest.mark.parametrize("bad", [-0.1, math.nan])
def test_neg_elbo_rejects_a_negative_or_nan_weight(bad):
    with pytest.raises(ValueError, match="kl_weight"):
        train.neg_elbo(torch.tensor(1.0), torch.tensor(1.0), bad)


# ---------------------------------------------------------------- fit

def _line(n=32):
    x = torch.linspace(-1, 1, n)[:, None]
    return x, 2 * x[:, 0] + 1


def _mse(model, xb, yb):
    return ((model(xb)[:, 0] - yb) ** 2).mean()


def test_fit_reduces_the_loss_of_a_tiny_regression_and_returns_one_value_per_epoch():
    seed_everything(0)
    model = models.mlp(1, 16, 1)
    x, y = _line()
    history = train.fit(model, x, y, _mse, epochs=40, batch_size=8, lr=1e-2, progress=False)
    assert len(history) == 40 and all(math.isfinite(h) for h in history)
    assert history[-1] < 0.05 * history[0]
    assert not model.training  # left in eval mode


def test_fit_is_repeatable_under_seed_everything():
    def run():
        seed_everything(1)
        model = models.mlp(1, 8, 1)
        history = train.fit(model, *_line(), _mse, epochs=5, batch_size=5, progress=False)
        return history, [p.detach().clone() for p in model.parameters()]

    (h1, p1), (h2, p2) = run(), run()
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_fit_trains_a_bayesian_regressor_on_the_per_example_elbo():
    seed_everything(0)
    x, y = _line()
    x, y = x.double(), y.double()
    model = models.bayes_mlp(1, 8, 1, init_sigma=0.05).double()
    lik = likelihoods.Gaussian(len(x), noise_std=1.0, learn_noise=True).double()
    before = lik.raw_noise.detach().clone()
    history = train.fit(model, x, y, lik, epochs=20, batch_size=16, progress=False)
    assert history[-1] < history[0]
    assert not torch.equal(lik.raw_noise.detach(), before)  # fit optimises the likelihood's noise too


def test_a_loss_that_becomes_nan_raises_floating_point_error_before_any_step():
    model = models.mlp(1, 4, 1)
    before = [p.detach().clone() for p in model.parameters()]

    def nan_loss(m, xb, yb):
        return _mse(m, xb, yb) * math.nan

    with pytest.raises(FloatingPointError, match="nan"):
        train.fit(model, *_line(), nan_loss, epochs=3, batch_size=8, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fit_rejects_x_and_y_of_different_lengths():
    x, y = _line()
    with pytest.raises(ValueError, match="same number of rows"):
        train.fit(models.mlp(1, 4, 1), x, y[:-1], _mse, epochs=1, batch_size=4, progress=False)


@pytest.mark.parametrize("kwargs", [dict(epochs=0, batch_size=4), dict(epochs=1, batch_size=0)])
def test_fit_rejects_non_positive_epochs_and_batch_size(kwargs):
    with pytest.raises(ValueError):
        train.fit(models.mlp(1, 4, 1), *_line(), _mse, progress=False, **kwargs)


# ---------------------------------------------------------------- progress bars and TQDM_DISABLE

@pytest.mark.parametrize("env, progress, hidden", [
    (None, None, False), (None, True, False), (None, False, True),
    ("1", None, True), ("1", True, True), ("true", True, True), ("0", True, False), ("", None, False),
])
def test_tqdm_disable_in_the_environment_wins_over_progress_true(monkeypatch, env, progress, hidden):
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    assert train.progress_disabled(progress) is hidden


@pytest.mark.filterwarnings("ignore::bdl_course.ensembles.MemberFailedWarning")  # one epoch: not the point here
@pytest.mark.parametrize("fitter", ["fit", "fit_ensemble"])
def test_fit_and_fit_ensemble_hand_the_bar_the_environments_choice(monkeypatch, fitter):
    from bdl_course import ensembles

    seen = []
    real = train.tqdm

    def recording(*args, **kwargs):
        seen.append(kwargs.get("disable"))
        return real(*args, **kwargs)
    monkeypatch.setattr(train, "tqdm", recording)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    x, y = _line(8)
    if fitter == "fit":
        train.fit(models.mlp(1, 3, 1), x, y, _mse, epochs=1, batch_size=4, progress=True)
    else:
        model = ensembles.GaussianEnsemble(2, 1, 3)
        ensembles.fit_ensemble(model, x, y, epochs=1, batch_size=4, progress=True, on_failure="warn")
    assert seen == [True]


# ---------------------------------------------------------------- fit with class labels

def test_fit_trains_a_classifier_on_integer_labels():
    torch.manual_seed(0)
    x = torch.randn(200, 2)
    y = (x[:, 0] > 0).long()
    model = models.mlp(2, 8, 2)
    history = train.fit(model, x, y, lambda m, a, b: F.cross_entropy(m(a), b), epochs=30, batch_size=50,
                        lr=5e-2, progress=False)
    assert history[-1] < history[0]
    with torch.no_grad():
        assert metrics.accuracy(model(x), y) > 0.9


def test_fit_still_rejects_float_targets_with_nan():
    with pytest.raises(ValueError, match="y"):
        train.fit(models.mlp(2, 4, 1), torch.randn(4, 2), torch.tensor([0.0, math.nan, 1.0, 2.0]),
                  lambda m, a, b: m(a).sum(), epochs=1, batch_size=2, progress=False)


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



def test_in_a_notebook_the_bar_is_shown_through_a_handle_that_is_emptied_at_the_end(monkeypatch):
    """A saved notebook then holds no widget view that a reopened one cannot render (issue 12)."""
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=False):
        shown.append(("display", obj))
        return Handle()
    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(train, "_in_notebook", lambda: True)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    x, y = _line(8)
    train.fit(models.mlp(1, 3, 1), x, y, _mse, epochs=2, batch_size=4, progress=True)
    assert [kind for kind, _ in shown] == ["display", "update"]
    assert shown[-1][1].data == ""  # the output is replaced by nothing
    shown.clear()
    monkeypatch.setenv("TQDM_DISABLE", "1")
    train.fit(models.mlp(1, 3, 1), x, y, _mse, epochs=1, batch_size=4, progress=True)
    assert shown == []  # no bar, no display at all
