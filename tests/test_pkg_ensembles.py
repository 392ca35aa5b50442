"""Specification of bdl_course.ensembles: the vectorised ensemble, its training, the mixture."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, Normal

from bdl_course import data, ensembles, likelihoods, metrics, predict
from bdl_course.utils import seed_everything


# a few epochs on a toy leave members below the predict-the-mean baseline: that report is
# specified by its own tests below, and only noise in the others
pytestmark = pytest.mark.filterwarnings("ignore::bdl_course.ensembles.MemberFailedWarning")


def _ensemble(n_members=4, hidden=8, seed=0, **kwargs):
    seed_everything(seed)
    return ensembles.GaussianEnsemble(n_members, 3, hidden, **kwargs)


def _toy(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x[:, 0] - 0.5 * x[:, 1] + 0.3 * torch.randn(n, generator=g)


def _member_forward(model, j, x):
    return model.head(model.member(j)(x))


# ---------------------------------------------------------------- the vectorised network

def test_ensemble_linear_equals_one_linear_map_per_member():
    seed_everything(0)
    layer = ensembles.EnsembleLinear(3, 4, 5)
    x = torch.randn(3, 7, 4)
    out = layer(x)
    assert out.shape == (3, 7, 5)
    for j in range(3):
        torch.testing.assert_close(out[j], x[j] @ layer.weight[j] + layer.bias[j, 0])
    shared = layer(x[0])  # [N, in]: every member reads the same rows
    assert shared.shape == (3, 7, 5)
    torch.testing.assert_close(shared[1], x[0] @ layer.weight[1] + layer.bias[1, 0])


def test_each_member_equals_its_own_independently_computed_network():
    model = _ensemble(hidden=[8, 6])
    x = torch.randn(10, 3)
    mu, sigma = model(x)
    assert mu.shape == sigma.shape == (4, 10)
    per_member_x = torch.randn(4, 10, 3)
    mu_own, sigma_own = model(per_member_x)
    for j in range(4):
        net = model.member(j)
        assert isinstance(net, torch.nn.Sequential) and isinstance(net[0], torch.nn.Linear)
        raw = net(x)
        torch.testing.assert_close(mu[j], raw[:, 0])
        torch.testing.assert_close(sigma[j], F.softplus(raw[:, 1]) + model.min_std)
        torch.testing.assert_close(mu_own[j], _member_forward(model, j, per_member_x[j])[0])


def test_members_start_from_different_initialisations():
    model = _ensemble()
    weights = [model.member(j)[0].weight for j in range(4)]
    assert all(not torch.allclose(weights[0], w) for w in weights[1:])
    mu, _ = model(torch.randn(5, 3))
    assert all(not torch.allclose(mu[0], mu[j]) for j in range(1, 4))


def test_the_same_seed_gives_the_same_members():
    torch.testing.assert_close(_ensemble(seed=3).member(2)[0].weight, _ensemble(seed=3).member(2)[0].weight)


def test_predicted_std_is_positive_and_floored():
    model = _ensemble(min_std=0.25)
    with torch.no_grad():
        model.groups[0].layers[-1].bias[:, :, 1] = -50.0  # raw std far below the floor
    _, sigma = model(torch.randn(6, 3))
    assert (sigma >= 0.25).all() and torch.allclose(sigma, torch.full_like(sigma, 0.25))


def _two_devices() -> list[str]:
    """Two really separate devices: CPU plus a GPU when there is one (two GPUs when there are two)."""
    if torch.cuda.device_count() >= 2:
        return ["cuda:0", "cuda:1"]
    if torch.cuda.is_available():
        return ["cpu", "cuda:0"]
    pytest.skip("needs a CUDA device: members spread over cpu and cpu cannot show a missing .to(device)")


def test_members_spread_over_one_device_in_groups_give_the_same_predictions():
    single = _ensemble(n_members=5, seed=4)
    spread = _ensemble(n_members=5, seed=4, devices=["cpu", "cpu"])
    assert sorted(g.layers[0].n_members for g in spread.groups) == [2, 3]
    x, per_member = torch.randn(6, 3), torch.randn(5, 6, 3)
    for inputs in (x, per_member):
        for a, b in zip(single(inputs), spread(inputs)):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(spread.member(4)[0].weight, single.member(4)[0].weight)


def test_members_spread_over_two_real_devices_predict_and_train_as_on_one():
    devices = _two_devices()
    single = _ensemble(n_members=4, seed=4)
    spread = _ensemble(n_members=4, seed=4, devices=devices)
    assert [g.layers[0].weight.device.type for g in spread.groups] == [torch.device(d).type for d in devices]
    x, y = _toy(n=12)
    for a, b in zip(single(x), spread(x)):
        assert b.device == torch.device(devices[0])
        torch.testing.assert_close(a, b.cpu(), atol=1e-5, rtol=1e-4)
    seed_everything(2)
    h_single = ensembles.fit_ensemble(single, x, y, epochs=3, batch_size=4, progress=False)
    seed_everything(2)
    h_spread = ensembles.fit_ensemble(spread, x.to(devices[0]), y.to(devices[0]), epochs=3, batch_size=4, progress=False)
    torch.testing.assert_close(h_single, h_spread, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(single.member(3)[0].weight, spread.member(3)[0].weight.cpu(), atol=1e-4, rtol=1e-3)


def test_bad_constructor_arguments_name_themselves():
    for kwargs, name in [(dict(n_members=0), "n_members"), (dict(dropout=1.0), "dropout"),
                         (dict(min_std=0.0), "min_std"), (dict(hidden=[8, 0]), "hidden"),
                         (dict(devices=[]), "devices")]:
        args = dict(n_members=2, in_features=3, hidden=8) | kwargs
        with pytest.raises(ValueError, match=name):
            ensembles.GaussianEnsemble(**args)


def test_bad_inputs_get_clear_errors():
    model = _ensemble()
    with pytest.raises(ValueError, match="x"):
        model(torch.randn(5, 4))  # 4 inputs, the model takes 3
    with pytest.raises(ValueError, match="n_members"):
        model(torch.randn(3, 5, 3))  # 3 member slices for 4 members
    with pytest.raises(ValueError, match="NaN"):
        model(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="j"):
        model.member(4)


# ---------------------------------------------------------------- training

def test_member_batches_give_each_member_its_own_permutation():
    seed_everything(0)
    batches = ensembles.member_batches(6, 23, 5)
    assert [b.shape for b in batches] == [(6, 5)] * 4 + [(6, 3)]
    perm = torch.cat(batches, dim=1)
    for j in range(6):
        assert torch.equal(perm[j].sort().values, torch.arange(23))
    assert all(not torch.equal(perm[0], perm[j]) for j in range(1, 6))


def test_training_the_vectorised_ensemble_equals_training_each_member_alone():
    """Same init, same minibatch order: the J-member step is J independent Adam runs."""
    x, y = _toy()
    model = _ensemble(n_members=3)
    alone = [model.member(j) for j in range(3)]
    seed_everything(7)
    history = ensembles.fit_ensemble(model, x, y, epochs=3, batch_size=16, lr=1e-2, weight_decay=1e-3, progress=False)
    assert history.shape == (3, 3)
    seed_everything(7)
    orders = [ensembles.member_batches(3, len(x), 16) for _ in range(3)]  # the draws fit_ensemble made
    for j, net in enumerate(alone):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
        for epoch in orders:
            for idx in epoch:
                mu, sigma = model.head(net(x[idx[j]]))
                loss = metrics.gaussian_nll(y[idx[j]], mu, sigma)
                opt.zero_grad()
                loss.backward()
                opt.step()
        trained = model.member(j)
        for p, q in zip(net.parameters(), trained.parameters()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_members_with_their_own_data_see_only_their_own_rows():
    x, y = _toy(n=30)
    xs = torch.stack([x, x.flip(0) * 2.0])  # member 1 gets different data
    ys = torch.stack([y, -y])
    runs = []
    for member_1_y in (ys[1], torch.randn(30)):
        model = _ensemble(n_members=2)
        seed_everything(5)
        ensembles.fit_ensemble(model, xs, torch.stack([ys[0], member_1_y]), epochs=2, batch_size=8, progress=False)
        runs.append(model)
    torch.testing.assert_close(runs[0].member(0)[0].weight, runs[1].member(0)[0].weight)  # member 0 untouched
    assert not torch.allclose(runs[0].member(1)[0].weight, runs[1].member(1)[0].weight)


def test_fit_ensemble_lowers_the_training_nll_and_repeats_with_the_same_seed():
    x, y = _toy(n=64)
    histories = []
    for _ in range(2):
        model = _ensemble()
        seed_everything(1)
        histories.append(ensembles.fit_ensemble(model, x, y, epochs=20, batch_size=16, progress=False))
    assert (histories[0][-1] < histories[0][0]).all()
    assert torch.equal(histories[0], histories[1])
    assert not model.training


def test_fit_ensemble_rejects_mismatched_data():
    model = _ensemble()
    x, y = _toy()
    with pytest.raises(ValueError, match="y"):
        ensembles.fit_ensemble(model, x, y[:-1], epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="K dividing n_members = 4"):
        ensembles.fit_ensemble(model, x.expand(3, *x.shape), y.expand(3, *y.shape), epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="lr"):
        ensembles.fit_ensemble(model, x, y, epochs=1, batch_size=8, lr=0.0, progress=False)
    with pytest.raises(TypeError, match="model"):
        ensembles.fit_ensemble(torch.nn.Linear(3, 1), x, y, epochs=1, batch_size=8)


def test_mc_dropout_members_draw_one_gaussian_per_mask():
    model = _ensemble(dropout=0.3)
    model.eval()
    xs = torch.randn(4, 7, 3)  # one data set per member
    p = model.predictive(xs, n_samples=5)
    assert p.loc.shape == p.scale.shape == (5, 4, 7)
    assert not torch.allclose(p.loc[0], p.loc[1])
    assert not model.training
    torch.testing.assert_close(model(xs)[0], model(xs)[0])  # eval mode without sampling: no dropout


def test_mc_dropout_with_a_tiny_rate_is_the_deterministic_network():
    model = _ensemble(dropout=1e-9)
    x = torch.randn(4, 4, 3)
    p = model.predictive(x, n_samples=3)
    torch.testing.assert_close(p.loc[2], model.eval()(x)[0])


# ---------------------------------------------------------------- the ensemble's predictive

def test_predictive_of_an_ensemble_has_one_component_per_member():
    model = _ensemble(n_members=4)
    x = torch.randn(5, 3)
    p = model.predictive(x)
    mu, sigma = model(x)
    assert p.n_components == 4 and p.shape == (5,)
    torch.testing.assert_close(p.loc, mu)
    torch.testing.assert_close(p.scale, sigma)
    torch.testing.assert_close(p.var(), _mixture_reference(mu.detach(), sigma.detach()).variance)
    with pytest.raises(ValueError, match="n_samples=1"):
        model.predictive(x, n_samples=3)


def test_groups_of_members_form_one_model_per_data_set():
    """x [K, N, D]: members k*M .. k*M+M-1 are model k, applied to x[k] (e.g. one model per split)."""
    model = _ensemble(n_members=6)
    xs = torch.randn(3, 5, 3)
    p = model.predictive(xs)
    assert p.n_components == 2 and p.shape == (3, 5)
    for k in range(3):
        for m in range(2):
            mu, sigma = _member_forward(model, 2 * k + m, xs[k])
            torch.testing.assert_close(p.loc[m, k], mu)
            torch.testing.assert_close(p.scale[m, k], sigma)
    with pytest.raises(ValueError, match="K dividing"):
        model.predictive(torch.randn(4, 5, 3))


def test_mc_dropout_masks_are_the_components_and_each_member_keeps_its_own_data():
    model = _ensemble(n_members=4, dropout=0.3)
    xs = torch.randn(4, 7, 3)
    seed_everything(1)
    p = model.predictive(xs, n_samples=5)
    assert p.n_components == 5 and p.shape == (4, 7)
    # mask s of member j: the member's own network on its own rows, with that mask (one vectorised pass:
    # the same draws as running the members' raw outputs on [J, S*N, D])
    seed_everything(1)
    tiled = xs.unsqueeze(1).expand(4, 5, 7, 3).reshape(4, 35, 3)
    mu, sigma = model.head(model.raw(tiled, dropout_on=True))
    torch.testing.assert_close(p.loc, mu.view(4, 5, 7).transpose(0, 1))
    torch.testing.assert_close(p.scale, sigma.view(4, 5, 7).transpose(0, 1))
    assert model.predictive(torch.randn(7, 3), n_samples=5).n_components == 20


def test_predict_predictive_delegates_to_the_ensemble():
    from bdl_course import predict

    model = _ensemble(n_members=3)
    x = torch.randn(4, 3)
    torch.testing.assert_close(predict.predictive(model, x).loc, model.predictive(x).loc)


# ---------------------------------------------------------------- any network as an ensemble

def _nets(j=3, seed=0, dropout=0.0):
    seed_everything(seed)
    layers = lambda: [torch.nn.Linear(3, 8), torch.nn.ReLU()] + ([torch.nn.Dropout(dropout)] if dropout else []) + [torch.nn.Linear(8, 2)]
    return [torch.nn.Sequential(*layers()) for _ in range(j)]


def test_a_deep_ensemble_of_any_network_runs_every_member_at_once():
    nets = _nets()
    model = ensembles.DeepEnsemble(nets)
    x = torch.randn(5, 3)
    out = model(x)
    assert out.shape == (3, 5, 2)
    for j, net in enumerate(nets):
        torch.testing.assert_close(out[j], net(x))
        torch.testing.assert_close(model.member(j)(x), net(x))
    per_member = torch.randn(3, 5, 3)
    torch.testing.assert_close(model(per_member, per_member=True)[1], nets[1](per_member[1]))
    assert sum(p.numel() for p in model.parameters()) == 3 * sum(p.numel() for p in nets[0].parameters())


def test_a_deep_ensemble_gives_its_predictive_through_a_likelihood():
    from bdl_course import likelihoods, predict

    nets = _nets()
    model = ensembles.DeepEnsemble(nets)
    x = torch.randn(5, 3)
    lik = likelihoods.HeteroskedasticGaussian(10)
    p = predict.predictive(model, x, lik)
    assert p.n_components == 3
    torch.testing.assert_close(p.loc[2], nets[2](x)[:, 0])
    with pytest.raises(ValueError, match="dropout"):
        model.predictive(x, lik, n_samples=4)
    with pytest.raises(TypeError, match="likelihood"):
        model.predictive(x)


def test_a_deep_ensemble_of_dropout_networks_draws_masks_per_member_and_restores_modes():
    from bdl_course import likelihoods

    model = ensembles.DeepEnsemble(_nets(dropout=0.5))
    model.train()
    p = model.predictive(torch.randn(5, 3), likelihoods.HeteroskedasticGaussian(10), n_samples=4)
    assert p.n_components == 12 and p.epistemic().min() > 0
    assert model.training and model._base.training and all(m.training for m in model._base.modules())


def test_deep_ensemble_rejects_members_of_different_architectures():
    with pytest.raises(ValueError, match="one architecture"):
        ensembles.DeepEnsemble([torch.nn.Linear(3, 2), torch.nn.Linear(3, 4)])
    with pytest.raises(TypeError, match="nets"):
        ensembles.DeepEnsemble(torch.nn.Linear(3, 2))


def test_training_a_deep_ensemble_equals_training_each_member_alone():
    from bdl_course import likelihoods

    x, y = _toy(n=24)
    nets = _nets(j=2, seed=3)
    model = ensembles.DeepEnsemble(nets)
    lik = likelihoods.HeteroskedasticGaussian(24)
    seed_everything(7)
    history = ensembles.fit_ensemble(model, x, y, epochs=2, batch_size=8, likelihood=lik, progress=False)
    assert history.shape == (2, 2)
    seed_everything(7)
    orders = [ensembles.member_batches(2, len(x), 8) for _ in range(2)]
    for j, net in enumerate(nets):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for epoch in orders:
            for idx in epoch:
                loss = lik.nll(net(x[idx[j]]), y[idx[j]])
                opt.zero_grad()
                loss.backward()
                opt.step()
        for p, q in zip(net.parameters(), model.member(j).parameters()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- a member that fails to train

def test_baseline_nll_is_the_nll_of_the_targets_own_gaussian():
    y = torch.tensor([[0.0, 2.0, 4.0], [1.0, 1.5, 2.0]], dtype=torch.float64)
    expected = torch.stack([-torch.distributions.Normal(r.mean(), r.std(unbiased=False)).log_prob(r).mean() for r in y])
    torch.testing.assert_close(ensembles.baseline_nll(y), expected)


def _with_a_broken_member(seed=0):
    """Member 1 starts with a huge, confidently wrong output (mean 40, std ~0.0025) that 30 epochs cannot undo."""
    model = _ensemble(n_members=3, seed=seed)
    with torch.no_grad():
        model.groups[0].layers[-1].bias[1, 0, 0] = 40.0
        model.groups[0].layers[-1].bias[1, 0, 1] = -6.0
    return model


def test_a_member_worse_than_predicting_the_mean_is_reported_by_name():
    x, y = _toy(n=64)
    seed_everything(0)
    with pytest.warns(ensembles.MemberFailedWarning, match=r"1 of 3 members.*\(member 1: "):
        ensembles.fit_ensemble(_with_a_broken_member(), x, y, epochs=30, batch_size=16, progress=False)
    seed_everything(0)
    with pytest.raises(ensembles.TrainingFailure, match="member 1") as failure:
        ensembles.fit_ensemble(_with_a_broken_member(), x, y, epochs=30, batch_size=16, progress=False,
                               on_failure="raise")
    assert failure.value.members == [1]
    with pytest.raises(ValueError, match="on_failure"):
        ensembles.fit_ensemble(_ensemble(), x, y, epochs=1, batch_size=16, on_failure="ignore")


@pytest.mark.filterwarnings("error::bdl_course.ensembles.MemberFailedWarning")
def test_members_that_train_raise_no_report():
    x, y = _toy(n=64)
    seed_everything(0)
    ensembles.fit_ensemble(_ensemble(), x, y, epochs=30, batch_size=16, progress=False, on_failure="raise")


# ---------------------------------------------------------------- the mixture

def _mixture_reference(mu, sigma):
    """torch.distributions' uniform mixture over the leading dimension of [J, N]."""
    return MixtureSameFamily(Categorical(logits=torch.zeros(mu.shape[1], mu.shape[0], dtype=mu.dtype)),
                             Normal(mu.T, sigma.T))


def _random_mixture(j=5, n=9, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(j, n, generator=g, dtype=dtype) * 2, torch.rand(j, n, generator=g, dtype=dtype) + 0.1


def test_mixture_nll_matches_torch_distributions():
    mu, sigma = _random_mixture(seed=3)
    y = torch.randn(9, dtype=torch.float64) * 3
    ref = -_mixture_reference(mu, sigma).log_prob(y)
    torch.testing.assert_close(ensembles.mixture_nll(y, mu, sigma, reduction="none"), ref)
    torch.testing.assert_close(ensembles.mixture_nll(y, mu, sigma), ref.mean())
    torch.testing.assert_close(ensembles.mixture_log_prob(y, mu, sigma), -ref)


def test_mixture_nll_of_one_member_is_the_gaussian_nll():
    mu, sigma = _random_mixture(j=1)
    y = torch.randn(9, dtype=torch.float64)
    torch.testing.assert_close(ensembles.mixture_nll(y, mu, sigma, reduction="none"),
                               metrics.gaussian_nll(y, mu[0], sigma[0], reduction="none"))


def test_mixture_nll_stays_finite_far_from_every_member():
    mu = torch.tensor([[0.0], [1.0]])
    sigma = torch.tensor([[0.1], [0.2]])
    y = torch.tensor([1e3])  # every member's density underflows to 0 in float32
    nll = ensembles.mixture_nll(y, mu, sigma, reduction="none")
    assert torch.isfinite(nll).all()
    expected = -_mixture_reference(mu.double(), sigma.double()).log_prob(y.double())
    torch.testing.assert_close(nll.double(), expected, rtol=1e-6, atol=0)


def test_mixture_functions_reject_bad_input_by_name():
    mu, sigma = _random_mixture(j=2, n=3)
    with pytest.raises(ValueError, match="sigma"):
        ensembles.mixture_nll(torch.zeros(3, dtype=torch.float64), mu, -sigma)
    with pytest.raises(ValueError, match="same shape"):
        ensembles.mixture_nll(torch.zeros(3, dtype=torch.float64), mu, sigma[:, :2])
    with pytest.raises(ValueError, match="y"):
        ensembles.mixture_nll(torch.zeros(2, dtype=torch.float64), mu, sigma)
    with pytest.raises(ValueError, match="reduction"):
        ensembles.mixture_nll(torch.zeros(3, dtype=torch.float64), mu, sigma, reduction="sum")
    with pytest.raises(ValueError, match="mu"):
        ensembles.mixture_nll(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0))


# ---------------------------------------------------------------- the UCI protocol

def test_uci_splits_stack_standardised_splits_in_the_order_of_their_seeds():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=g) * 3 + 1, torch.randn(50, generator=g) + 5
    s = data.uci_splits(x, y, n_splits=3, test_fraction=0.1, seed=10)
    assert s["x_train"].shape == (3, 45, 4) and s["x_test"].shape == (3, 5, 4)
    assert s["y_train"].shape == (3, 45) and s["y_test"].shape == (3, 5) and s["y_std"].shape == (3,)
    torch.testing.assert_close(s["x_train"].mean(1), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(s["y_train"].std(1), torch.ones(3))
    x_tr, x_te, y_tr, y_te = data.train_test_split(x, y, test_fraction=0.1, seed=11)
    torch.testing.assert_close(s["y_test"][1], y_te)  # original units
    torch.testing.assert_close(s["y_train"][1] * s["y_std"][1] + s["y_mean"][1], y_tr)
    torch.testing.assert_close(s["x_test"][1], (x_te - x_tr.mean(0)) / x_tr.std(0))
    assert not torch.equal(s["y_test"][0], s["y_test"][1])


def test_the_cubic_toy_of_the_paper_is_seeded_sorted_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    x, y = data.make_cubic_regression(n=20, noise_std=3.0, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert x.shape == y.shape == (20,) and (x.diff() >= 0).all() and x.min() >= -4 and x.max() <= 4
    assert (y - x ** 3).abs().max() < 5 * 3.0 and (y - x ** 3).std() > 1.0  # noise of std 3 around x^3
    x2, y2 = data.make_cubic_regression(n=20, noise_std=3.0, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, data.make_cubic_regression(n=20, seed=1)[1])
    with pytest.raises(ValueError, match="noise_std"):
        data.make_cubic_regression(noise_std=0.0)


def test_a_deep_ensemble_of_classifiers_trains_vectorised_on_integer_labels():
    from bdl_course import likelihoods

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()  # three classes
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)) for _ in range(2)]
    model = ensembles.DeepEnsemble(nets)
    lik = likelihoods.Categorical(40)
    seed_everything(1)
    history = ensembles.fit_ensemble(model, x, y, epochs=2, batch_size=8, likelihood=lik, progress=False)
    seed_everything(1)
    orders = [ensembles.member_batches(2, 40, 8) for _ in range(2)]
    for j, net in enumerate(nets):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for epoch in orders:
            for idx in epoch:
                loss = torch.nn.functional.cross_entropy(net(x[idx[j]]), y[idx[j]])
                opt.zero_grad()
                loss.backward()
                opt.step()
        for p, q in zip(net.parameters(), model.member(j).parameters()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    assert history.shape == (2, 2)


def test_the_baseline_of_class_labels_is_the_entropy_of_their_frequencies():
    y = torch.tensor([[0, 0, 1, 2], [1, 1, 1, 1]])
    expected = torch.tensor([-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), 0.0], dtype=torch.float64)
    torch.testing.assert_close(ensembles.baseline_nll(y), expected)
