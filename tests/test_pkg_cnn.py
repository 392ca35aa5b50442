"""Specification of lesson 06's package code: BayesConv2d, the LeNets, image data and shifts,
classification metrics (entropy decomposition, NLL, Brier, ECE, AUROC, rejection) and plots."""
import math
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Normal, kl_divergence

from bdl_course import data, layers, metrics, models, plots, predict
from bdl_course.layers import BayesConv2d, BayesLinear

F64 = torch.float64


def _randomised(layer: nn.Module, seed: int = 0) -> nn.Module:
    """Give every mu and rho a distinct random value, so sums cannot agree by symmetry."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer


# ---------------------------------------------------------------- BayesConv2d: shapes

@pytest.mark.parametrize("local_reparam", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_bayes_conv2d_maps_images_with_and_without_a_sample_dimension(local_reparam, bias):
    conv = BayesConv2d(3, 5, kernel_size=3, padding=1, bias=bias, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0)
    assert conv(torch.randn(4, 3, 8, 8)).shape == (4, 5, 8, 8)
    assert conv(torch.randn(6, 4, 3, 8, 8)).shape == (6, 4, 5, 8, 8)
    x = torch.randn(4, 3, 8, 8)
    assert conv(x.unsqueeze(0).expand(6, *x.shape)).shape == (6, 4, 5, 8, 8)  # broadcast input
    strided = BayesConv2d(3, 2, kernel_size=3, stride=2, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0)
    assert strided(torch.randn(4, 3, 9, 9)).shape == (4, 2, 4, 4)
    assert strided(torch.randn(2, 4, 3, 9, 9)).shape == (2, 4, 2, 4, 4)


@pytest.mark.parametrize("shape", [(3, 8, 8), (4, 2, 8, 8), (1, 2, 4, 3, 8, 8)])
def test_bayes_conv2d_rejects_inputs_of_the_wrong_shape_stating_the_expected_one(shape):
    conv = BayesConv2d(3, 5, kernel_size=3, prior_mu=0.0, prior_sigma=1.0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\] or \[S, N, 3, H, W\]"):
        conv(torch.randn(*shape))


@pytest.mark.parametrize("kwargs, name", [(dict(prior_sigma=0.0), "prior_sigma"), (dict(init_sigma=-1.0), "init_sigma"),
                                          (dict(in_channels=0), "in_channels"), (dict(kernel_size=0), "kernel_size"),
                                          (dict(padding=-1), "padding")])
def test_bayes_conv2d_rejects_bad_arguments_naming_them(kwargs, name):
    args = {**dict(prior_mu=0.0, prior_sigma=1.0, in_channels=2, out_channels=3, kernel_size=3), **kwargs}
    with pytest.raises(ValueError, match=name):
        BayesConv2d(**args)


# ---------------------------------------------------------------- BayesConv2d: frozen and sampled outputs

@pytest.mark.parametrize("local_reparam", [False, True])
def test_freeze_gives_f_conv2d_with_the_posterior_means(local_reparam):
    conv = _randomised(BayesConv2d(2, 3, kernel_size=3, padding=1, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0))
    x = torch.randn(4, 2, 6, 6)
    assert conv.freeze() is conv
    expected = F.conv2d(x, conv.weight_mu, conv.bias_mu, padding=1)
    torch.testing.assert_close(conv(x), expected)
    out = conv(x.unsqueeze(0).expand(5, *x.shape))
    assert out.shape == (5, 4, 3, 6, 6)
    for s in range(5):
        torch.testing.assert_close(out[s], expected)
    assert conv.unfreeze() is conv
    assert not torch.allclose(conv(x), conv(x))


def test_without_local_reparameterisation_a_sample_is_one_kernel_shared_by_positions_and_images():
    torch.manual_seed(0)
    conv = _randomised(BayesConv2d(1, 2, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0))
    x = torch.zeros(2, 1, 7, 7)
    x[0, 0, 2, 2] = x[1, 0, 3, 3] = 1.0  # image 1 is image 0 moved by one pixel
    out = conv(x)
    torch.testing.assert_close(out[1, :, 1:, 1:], out[0, :, :-1, :-1])
    many = conv(x.unsqueeze(0).expand(3, *x.shape))
    for s in range(3):
        torch.testing.assert_close(many[s, 1, :, 1:, 1:], many[s, 0, :, :-1, :-1])
    assert not torch.allclose(many[0], many[1])  # each leading index draws its own kernel
    conv.local_reparam = True  # independent noise per example and position
    out = conv(x)
    assert not torch.allclose(out[1, :, 1:, 1:], out[0, :, :-1, :-1])


def test_grouped_sampling_matches_one_conv2d_per_sample_with_the_same_noise():
    conv = _randomised(BayesConv2d(2, 3, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.randn(4, 5, 2, 6, 6, dtype=F64)  # a different input for each sample
    torch.manual_seed(7)
    out = conv(x)
    torch.manual_seed(7)
    eps_w = torch.randn((4, *conv.weight_mu.shape), dtype=F64)
    eps_b = torch.randn((4, 3), dtype=F64)
    for s in range(4):
        w = conv.weight_mu + conv.weight_sigma * eps_w[s]
        b = conv.bias_mu + conv.bias_sigma * eps_b[s]
        torch.testing.assert_close(out[s], F.conv2d(x[s], w, b, padding=1))


@pytest.mark.parametrize("local_reparam", [False, True])
def test_a_one_pixel_kernel_output_has_the_posterior_mean_and_std(local_reparam):
    # 1x1 kernel on a one-pixel image of value 1: the output is w + b, mean mu_w + mu_b,
    # variance sigma_w^2 + sigma_b^2, with either sampler
    torch.manual_seed(0)
    conv = _randomised(BayesConv2d(1, 2, kernel_size=1, local_reparam=local_reparam, prior_mu=0.0, prior_sigma=1.0).double())
    x = torch.ones(1, 1, 1, 1, dtype=F64).expand(20000, 1, 1, 1, 1)
    out = conv(x)[:, 0, :, 0, 0]  # [S, 2]
    mean = conv.weight_mu[:, 0, 0, 0] + conv.bias_mu
    std = (conv.weight_sigma[:, 0, 0, 0] ** 2 + conv.bias_sigma ** 2).sqrt()
    torch.testing.assert_close(out.mean(0), mean.detach(), rtol=0, atol=(4 * std / 20000 ** 0.5).max().item())
    torch.testing.assert_close(out.std(0), std.detach(), rtol=0.03, atol=0)


def test_local_reparameterisation_matches_the_mean_and_variance_of_kernel_sampling():
    torch.manual_seed(0)
    conv = _randomised(BayesConv2d(2, 2, kernel_size=3, padding=1, prior_mu=0.0, prior_sigma=1.0).double())
    with torch.no_grad():
        conv.weight_rho.sub_(1.0)
    x = torch.randn(1, 2, 4, 4, dtype=F64)
    many = x.expand(20000, 1, 2, 4, 4)
    exact = conv(many)[:, 0]
    conv.local_reparam = True
    local = conv(many)[:, 0]
    torch.testing.assert_close(local.mean(0), exact.mean(0), rtol=0, atol=0.15)
    torch.testing.assert_close(local.var(0), exact.var(0), rtol=0.08, atol=0.02)
    mean = F.conv2d(x, conv.weight_mu, conv.bias_mu, padding=1)[0]
    var = F.conv2d(x ** 2, conv.weight_sigma ** 2, conv.bias_sigma ** 2, padding=1)[0]
    torch.testing.assert_close(local.var(0), var.detach(), rtol=0.08, atol=0.02)
    torch.testing.assert_close(local.mean(0), mean.detach(), rtol=0, atol=0.15)


def test_local_reparam_conv2d_checks_its_arguments():
    w = torch.ones(3, 2, 3, 3)
    with pytest.raises(ValueError, match="x must"):
        layers.local_reparam_conv2d(torch.ones(2, 8, 8), w, w)
    with pytest.raises(ValueError, match="weight_sigma"):
        layers.local_reparam_conv2d(torch.ones(1, 2, 8, 8), w, torch.ones(3, 2, 1, 1))
    with pytest.raises(ValueError, match="channels"):
        layers.local_reparam_conv2d(torch.ones(1, 4, 8, 8), w, w)
    with pytest.raises(ValueError, match="bias_mu and bias_sigma"):
        layers.local_reparam_conv2d(torch.ones(1, 2, 8, 8), w, w, bias_mu=torch.zeros(3))


def test_a_zero_input_without_bias_has_finite_gradients_under_local_reparameterisation():
    conv = BayesConv2d(1, 2, kernel_size=3, padding=1, bias=False, local_reparam=True, prior_mu=0.0, prior_sigma=1.0)
    conv(torch.zeros(2, 1, 4, 4)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


# ---------------------------------------------------------------- BayesConv2d: KL, counting, model-level sums

@pytest.mark.parametrize("bias", [True, False])
def test_bayes_conv2d_kl_equals_torch_distributions(bias):
    conv = _randomised(BayesConv2d(2, 3, kernel_size=3, bias=bias, prior_mu=0.3, prior_sigma=0.8).double())
    prior = Normal(torch.tensor(0.3, dtype=F64), torch.tensor(0.8, dtype=F64))
    expected = kl_divergence(Normal(conv.weight_mu, F.softplus(conv.weight_rho)), prior).sum()
    if bias:
        expected = expected + kl_divergence(Normal(conv.bias_mu, F.softplus(conv.bias_rho)), prior).sum()
    torch.testing.assert_close(conv.kl(), expected, rtol=1e-12, atol=1e-12)
    assert conv.num_stochastic() == 2 * 3 * 9 + (3 if bias else 0)


def test_total_kl_num_stochastic_and_bayes_layers_include_convolutions():
    conv = _randomised(BayesConv2d(1, 4, kernel_size=3, prior_mu=0.0, prior_sigma=1.0).double(), seed=1)
    dense = _randomised(BayesLinear(4, 2, prior_mu=0.0, prior_sigma=1.0).double(), seed=2)
    model = nn.Sequential(conv, nn.ReLU(), nn.Sequential(nn.Conv2d(4, 4, 1), nn.Flatten()), dense)
    assert layers.bayes_layers(model) == [conv, dense]
    torch.testing.assert_close(layers.total_kl(model), conv.kl() + dense.kl())
    assert layers.num_stochastic(model) == (4 * 9 + 4) + (4 * 2 + 2)


# ---------------------------------------------------------------- LeNets

def test_bayes_lenet_maps_images_to_logits_with_and_without_samples():
    net = models.bayes_lenet(1, 8, 10, channels=(4, 6), hidden=(12,))
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert net(torch.randn(3, 5, 1, 8, 8)).shape == (3, 5, 10)
    kinds = [type(m) for m in layers.bayes_layers(net)]
    assert kinds == [BayesConv2d, BayesConv2d, BayesLinear, BayesLinear]
    assert layers.num_stochastic(net) == (1 * 4 * 9 + 4) + (4 * 6 * 9 + 6) + (6 * 4 * 12 + 12) + (12 * 10 + 10)


def test_lenet_is_the_deterministic_twin_with_the_same_parameter_count_and_leading_dimensions():
    net = models.lenet(3, 32, 10, channels=(6, 16))
    bayes = models.bayes_lenet(3, 32, 10, channels=(6, 16))
    assert sum(p.numel() for p in net.parameters()) == layers.num_stochastic(bayes)
    x = torch.randn(4, 3, 32, 32)
    out = net(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(net(x.unsqueeze(0).expand(2, *x.shape)), out.expand(2, 4, 10))


def test_a_frozen_bayes_lenet_equals_a_lenet_with_its_mean_weights():
    bayes = _randomised(models.bayes_lenet(1, 8, 3, channels=(2, 3), hidden=4))
    net = models.lenet(1, 8, 3, channels=(2, 3), hidden=4)
    with torch.no_grad():
        for b, d in zip(layers.bayes_layers(bayes), [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]):
            d.weight.copy_(b.weight_mu)
            d.bias.copy_(b.bias_mu)
            b.freeze()
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(bayes(x), net(x))
    # max-pool then ReLU as in torch's own layers
    h = x
    for conv in [m for m in net.modules() if isinstance(m, nn.Conv2d)]:
        h = F.max_pool2d(F.relu(conv(h)), 2)
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    torch.testing.assert_close(net(x), dense[1](F.relu(dense[0](h.flatten(1)))))


@pytest.mark.parametrize("kwargs, name", [(dict(image_size=6), "image_size"), (dict(kernel_size=4), "kernel_size"),
                                          (dict(channels=(4,)), "channels"), (dict(n_classes=1), "n_classes"),
                                          (dict(hidden=(0,)), "hidden")])
def test_lenet_builders_reject_bad_arguments_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        models.bayes_lenet(**kwargs)
    with pytest.raises(ValueError, match=name):
        models.lenet(**kwargs)


def test_lenet_rejects_images_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"\[N, 1, 8, 8\]"):
        models.lenet()(torch.randn(2, 1, 28, 28))


def test_sample_log_probs_gives_normalised_log_probabilities_per_sample_in_batches():
    torch.manual_seed(0)
    net = models.bayes_lenet(1, 8, 10, init_sigma=0.3)
    x = torch.rand(7, 1, 8, 8)
    lp = predict.sample_log_probs(net, x, n_samples=4, batch_size=3)
    assert lp.shape == (4, 7, 10) and not lp.requires_grad
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(4, 7))
    assert not torch.allclose(lp[0], lp[1])
    cnn = models.lenet()
    same = predict.sample_log_probs(cnn, x, n_samples=2)
    torch.testing.assert_close(same[0], torch.log_softmax(cnn(x), -1))
    with pytest.raises(ValueError, match="x must"):
        predict.sample_log_probs(cnn, torch.zeros(0, 1, 8, 8), 2)


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
    total, expected, mi = metrics.uncertainty_decomposition(p)
    assert total.shape == expected.shape == mi.shape == (40,)
    torch.testing.assert_close(total, Categorical(probs=p.mean(0)).entropy())
    torch.testing.assert_close(expected, Categorical(probs=p).entropy().mean(0))
    assert (mi >= 0).all()
    torch.testing.assert_close(total, expected + mi)
    assert (total <= math.log(5) + 1e-12).all()


def test_mutual_information_is_zero_when_the_samples_agree_and_log2_when_two_sure_samples_disagree():
    p = torch.softmax(torch.randn(1, 6, 4), -1).expand(5, 6, 4)
    assert torch.allclose(metrics.uncertainty_decomposition(p)[2], torch.zeros(6), atol=1e-6)
    sure = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    total, expected, mi = metrics.uncertainty_decomposition(sure)
    torch.testing.assert_close(expected, torch.zeros(1))
    torch.testing.assert_close(mi, torch.tensor([math.log(2)]))


@pytest.mark.parametrize("bad", [torch.randn(3, 4, 5), torch.full((3, 4, 5), 0.5), torch.ones(4, 5) / 5])
def test_uncertainty_decomposition_rejects_logits_and_wrong_shapes_naming_probs(bad):
    with pytest.raises(ValueError, match="probs"):
        metrics.uncertainty_decomposition(bad)


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


# ---------------------------------------------------------------- image data and shifts

def test_load_images_digits_is_a_held_out_split_of_8x8_images_in_the_unit_interval():
    d = data.load_images("digits", test_fraction=0.2, seed=0)
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert 0 <= d.x_train.min() and d.x_train.max() == 1
    assert d.classes == tuple("0123456789")
    again = data.load_images("digits", test_fraction=0.2, seed=0)
    assert torch.equal(d.x_test, again.x_test)
    small = data.load_images("digits", max_train=100, max_test=10)
    assert small.x_train.shape[0] == 100 and small.x_test.shape[0] == 10


def test_load_images_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_images("imagenet")


def test_torchvision_sets_need_torchvision_and_say_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(ImportError, match="torchvision"):
        data.load_images("mnist")


def test_torchvision_sets_go_through_the_torchvision_loaders(monkeypatch, tmp_path):
    calls = []

    class FakeMNIST:
        classes = [f"{i} - digit" for i in range(10)]

        def __init__(self, root, train, download):
            calls.append((root, train, download))
            n = 50 if train else 20
            self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
            self.targets = torch.randint(0, 10, (n,))

    class FakeCIFAR10:
        classes = ["airplane"] + [f"c{i}" for i in range(9)]

        def __init__(self, root, train, download):
            n = 30 if train else 10
            self.data = np.random.randint(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(np.random.randint(0, 10, n))

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=FakeMNIST, CIFAR10=FakeCIFAR10)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    mnist = data.load_images("mnist", data_dir=tmp_path, max_train=40)
    assert mnist.x_train.shape == (40, 1, 28, 28) and mnist.x_test.shape == (20, 1, 28, 28)
    assert 0 <= mnist.x_train.min() and mnist.x_train.max() <= 1 and mnist.y_train.dtype == torch.int64
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    cifar = data.load_images("cifar10", data_dir=tmp_path)
    assert cifar.x_train.shape == (30, 3, 32, 32) and cifar.classes[0] == "airplane"


def test_a_failed_torchvision_download_raises_a_data_error_that_says_what_to_do(monkeypatch, tmp_path):
    class Offline:
        def __init__(self, root, train, download):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=Offline, CIFAR10=Offline)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(data.DataError, match="internet.*digits"):
        data.load_images("mnist", data_dir=tmp_path)


def test_rotate_images_by_0_and_360_degrees_is_the_identity_and_by_90_moves_the_top_row_left():
    x = data.load_images("digits").x_test[:5]
    torch.testing.assert_close(data.rotate_images(x, 0), x)
    torch.testing.assert_close(data.rotate_images(x, 360), x, atol=1e-5, rtol=0)
    bar = torch.zeros(1, 1, 8, 8)
    bar[0, 0, 0, 2:6] = 1.0  # a bar along the top edge
    turned = data.rotate_images(bar, 90)  # counter-clockwise: now along the left edge
    torch.testing.assert_close(turned[0, 0, 2:6, 0], torch.ones(4))
    assert turned[0, 0, 0].sum() == 0
    with pytest.raises(ValueError, match="degrees"):
        data.rotate_images(x, math.nan)


def test_noise_and_photo_patches_have_the_requested_shape_and_range_and_are_seeded():
    noise = data.noise_images(6, channels=3, size=12, seed=1)
    assert noise.shape == (6, 3, 12, 12) and 0 <= noise.min() and noise.max() <= 1
    torch.testing.assert_close(noise, data.noise_images(6, channels=3, size=12, seed=1))
    photos = data.natural_image_patches(5, channels=1, size=8, seed=2)
    assert photos.shape == (5, 1, 8, 8)
    torch.testing.assert_close(photos.amin(dim=(1, 2, 3)), torch.zeros(5))
    torch.testing.assert_close(photos.amax(dim=(1, 2, 3)), torch.ones(5))
    torch.testing.assert_close(photos, data.natural_image_patches(5, channels=1, size=8, seed=2))
    assert data.natural_image_patches(2, channels=3, size=8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="channels"):
        data.natural_image_patches(2, channels=2)


# ---------------------------------------------------------------- plots

def test_reliability_diagram_and_image_grid_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = torch.softmax(3 * torch.randn(100, 10), -1)
    y = torch.randint(10, (100,))
    fig, axes = plt.subplots(1, 4)
    plots.reliability_diagram(axes[0], p, y, n_bins=10, label="model")
    assert len(axes[0].patches) == int((metrics.calibration_bins(p, y, 10)["count"] > 0).sum())
    plots.image_grid(axes[1:], torch.rand(2, 1, 8, 8), ["a", "b"])
    assert axes[1].get_title() == "a" and len(axes[1].images) == 1 and not axes[3].axison
    with pytest.raises(ValueError, match="images"):
        plots.image_grid(axes[1:], torch.rand(2, 8, 8))
    plt.close(fig)
