"""Specification of bdl_course.bnn: model-level utilities for Bayesian networks (every Bayesian
layer, KL and size of a model, frozen / local-reparameterisation contexts, posterior samples
as ordinary networks, weight averaging, pruning by signal-to-noise ratio)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bdl_course import bnn, models
from bdl_course.layers import BayesConv2d, BayesLinear
from conftest import randomised


# ---------------------------------------------------------------- sample_network over every kind of Bayesian layer

def test_sample_network_of_a_bayesian_cnn_is_deterministic_and_holds_no_bayesian_layer():
    torch.manual_seed(0)
    net = models.bayes_lenet(image_size=8, channels=(2, 3), init_sigma=0.5)
    sample = bnn.sample_network(net)
    assert not any(isinstance(m, (BayesLinear, BayesConv2d)) for m in sample.modules())
    assert sum(isinstance(m, nn.Conv2d) for m in sample.modules()) == 2
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(sample(x), sample(x))  # one fixed draw: the same network twice
    assert not torch.allclose(sample(x), bnn.sample_network(net)(x))  # a fresh draw each call


def test_a_sampled_convolution_holds_a_draw_near_the_posterior():
    torch.manual_seed(0)
    conv = BayesConv2d(2, 3, 3, padding=1, init_sigma=0.2)
    draws = torch.stack([bnn.sample_network(nn.Sequential(conv))[0].weight for _ in range(400)])
    se = conv.weight_sigma / 400 ** 0.5
    assert ((draws.mean(0) - conv.weight_mu).abs() < 4.5 * se).all()
    assert bnn.sample_network(conv).padding == (1, 1)


def test_a_frozen_bayesian_cnn_samples_its_mean_network():
    torch.manual_seed(0)
    net = models.bayes_lenet(image_size=8, channels=(2, 3), init_sigma=0.5)
    x = torch.rand(3, 1, 8, 8)
    with bnn.frozen(net):
        torch.testing.assert_close(bnn.sample_network(net)(x), net(x))


# ---------------------------------------------------------------- local_reparam context

def test_local_reparam_switches_every_layer_within_the_block_and_restores_each():
    net = nn.Sequential(BayesLinear(2, 3, local_reparam=True), nn.ReLU(), BayesLinear(3, 1))
    with bnn.local_reparam(net, False) as same:
        assert same is net
        assert [l.local_reparam for l in bnn.bayes_layers(net)] == [False, False]
    assert [l.local_reparam for l in bnn.bayes_layers(net)] == [True, False]
    with pytest.raises(RuntimeError):
        with bnn.local_reparam(net, True):
            assert [l.local_reparam for l in bnn.bayes_layers(net)] == [True, True]
            raise RuntimeError("restored even when the block fails")
    assert [l.local_reparam for l in bnn.bayes_layers(net)] == [True, False]
    with pytest.raises(TypeError, match="on must be a bool"):
        with bnn.local_reparam(net, 1):
            pass


def test_without_local_reparam_one_weight_sample_is_shared_by_all_inputs():
    torch.manual_seed(0)
    layer = BayesLinear(1, 1, bias=False, init_sigma=1.0, local_reparam=True)
    x = torch.ones(5, 1)
    assert layer(x).unique().numel() == 5  # every row its own noise
    with bnn.local_reparam(layer, False):
        assert layer(x).unique().numel() == 1  # one weight for the whole batch


# ---------------------------------------------------------------- pruning by signal-to-noise ratio

def _two_layer_net():
    net = nn.Sequential(BayesLinear(2, 2), nn.ReLU(), BayesLinear(2, 1))
    with torch.no_grad():
        net[0].weight_mu.copy_(torch.tensor([[1.0, -4.0], [0.5, 2.0]]))
        net[0].weight_rho.copy_(torch.log(torch.expm1(torch.tensor([[1.0, 1.0], [1.0, 0.1]]))))  # snr 1, 4, 0.5, 20
        net[2].weight_mu.copy_(torch.tensor([[3.0, -0.2]]))
        net[2].weight_rho.copy_(torch.log(torch.expm1(torch.tensor([[1.0, 1.0]]))))  # snr 3, 0.2
    return net


@pytest.mark.parametrize("fraction, largest, zeroed", [
    (0.0, False, []), (0.34, False, [(2, 0, 1), (0, 1, 0)]), (0.5, False, [(2, 0, 1), (0, 1, 0), (0, 0, 0)]),
    (0.34, True, [(0, 1, 1), (0, 0, 1)]), (1.0, False, "all"),
])
def test_prune_by_snr_zeroes_the_global_lowest_or_highest_snr_weights_of_a_frozen_copy(fraction, largest, zeroed):
    net = _two_layer_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pruned = bnn.prune_by_snr(net, fraction, largest=largest)
    for k, v in net.state_dict().items():  # the model itself is untouched
        torch.testing.assert_close(v, before[k])
    assert all(layer.frozen for layer in bnn.bayes_layers(pruned))
    for layer_index in (0, 2):
        mu, original = pruned[layer_index].weight_mu, net[layer_index].weight_mu
        for i in range(mu.shape[0]):
            for j in range(mu.shape[1]):
                dropped = zeroed == "all" or (layer_index, i, j) in zeroed
                assert mu[i, j].item() == (0.0 if dropped else original[i, j].item())
        torch.testing.assert_close(pruned[layer_index].bias_mu, net[layer_index].bias_mu)  # biases stay


def test_prune_by_snr_rejects_a_fraction_outside_0_1_and_a_model_without_bayesian_layers():
    with pytest.raises(ValueError, match="fraction"):
        bnn.prune_by_snr(_two_layer_net(), 1.5)
    with pytest.raises(TypeError, match="fraction"):
        bnn.prune_by_snr(_two_layer_net(), "half")
    with pytest.raises(ValueError, match="no Bayesian layers"):
        bnn.prune_by_snr(nn.Linear(2, 2), 0.5)


# ---------------------------------------------------------------- sample_network, frozen

def _nested_bayes_net() -> nn.Module:
    return nn.Sequential(BayesLinear(2, 4, init_sigma=0.3, prior_mu=0.0, prior_sigma=1.0), nn.ReLU(),
                         nn.Sequential(nn.Linear(4, 4), nn.ModuleList([BayesLinear(4, 1, bias=False, prior_mu=0.0, prior_sigma=1.0)])))


def test_sample_network_replaces_every_bayes_linear_by_a_linear_and_leaves_the_model_alone():
    model = _nested_bayes_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = bnn.sample_network(model)
    assert bnn.bayes_layers(net) == []
    assert isinstance(net[0], nn.Linear) and isinstance(net[2][1][0], nn.Linear) and net[2][1][0].bias is None
    torch.testing.assert_close(net[2][0].weight, model[2][0].weight)  # ordinary layers are copied
    assert net[2][0] is not model[2][0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert isinstance(model[0], BayesLinear)


def test_each_sampled_network_holds_a_fresh_draw_near_the_posterior():
    torch.manual_seed(0)
    layer = randomised(BayesLinear(3, 2, prior_mu=0.0, prior_sigma=1.0), rho_shift=-1.0)
    n = 1000
    draws = torch.stack([bnn.sample_network(layer).weight.detach() for _ in range(n)])
    assert not torch.equal(draws[0], draws[1])
    sigma = layer.weight_sigma.detach()
    # 4.5 standard errors per weight (6 weights): the mean's SE is sigma / sqrt(n), the std's ~ sigma / sqrt(2n)
    assert ((draws.mean(0) - layer.weight_mu.detach()).abs() < 4.5 * sigma / n ** 0.5).all()
    assert ((draws.std(0) - sigma).abs() < 4.5 * sigma / (2 * n) ** 0.5).all()


def test_a_frozen_layer_samples_its_mean_weights():
    layer = BayesLinear(3, 2, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0).freeze()
    net = bnn.sample_network(layer)
    torch.testing.assert_close(net.weight, layer.weight_mu)
    torch.testing.assert_close(net.bias, layer.bias_mu)


def test_a_shared_bayesian_layer_becomes_one_shared_linear_layer():
    shared = BayesLinear(3, 3, init_sigma=0.5, prior_mu=0.0, prior_sigma=1.0)
    net = bnn.sample_network(nn.Sequential(shared, nn.ReLU(), shared))
    assert net[0] is net[2] and isinstance(net[0], nn.Linear)


def test_sample_network_rejects_what_is_not_a_module():
    with pytest.raises(TypeError, match="model"):
        bnn.sample_network([BayesLinear(2, 2, prior_mu=0.0, prior_sigma=1.0)])


def test_frozen_evaluates_the_mean_network_and_restores_each_layers_state():
    model = models.bayes_mlp(2, 8, 1, init_sigma=0.5)
    model[2].freeze()  # one layer was frozen before and must stay frozen
    x = torch.randn(5, 2)
    with bnn.frozen(model):
        torch.testing.assert_close(model(x), model(x))
        expected = F.linear(F.relu(F.linear(x, model[0].weight_mu, model[0].bias_mu)), model[2].weight_mu, model[2].bias_mu)
        torch.testing.assert_close(model(x), expected)
    assert [layer.frozen for layer in bnn.bayes_layers(model)] == [False, True]
    with pytest.raises(RuntimeError):
        with bnn.frozen(model):
            raise RuntimeError("inside")
    assert [layer.frozen for layer in bnn.bayes_layers(model)] == [False, True]


# ---------------------------------------------------------------- average_parameters

def _plain_nets(n: int, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Sequential(nn.Linear(3, 1, bias=False))) for _ in range(n)]


def test_average_parameters_is_the_elementwise_mean_in_a_new_network():
    nets = _plain_nets(5)
    before = [{k: v.clone() for k, v in net.state_dict().items()} for net in nets]
    avg = bnn.average_parameters(nets)
    for name, p in avg.named_parameters():
        expected = torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0)
        torch.testing.assert_close(p, expected)
    assert all(avg is not n for n in nets)
    with torch.no_grad():
        for p in avg.parameters():
            p.add_(1.0)
    assert all(torch.equal(v, b[k]) for net, b in zip(nets, before) for k, v in net.state_dict().items())


def test_the_average_of_many_weight_samples_approaches_the_mean_network():
    torch.manual_seed(0)
    model = models.bayes_mlp(1, 8, 1, init_sigma=0.2)
    n = 200
    nets = [bnn.sample_network(model) for _ in range(n)]
    avg = bnn.average_parameters(nets)
    x = torch.linspace(-2, 2, 20)[:, None]
    with torch.no_grad(), bnn.frozen(model):
        # the averaged weights are mu + sigma * (mean of n draws): each within 4.5 sigma / sqrt(n) of mu
        for layer, avg_layer in zip(bnn.bayes_layers(model), (avg[0], avg[2])):
            assert ((avg_layer.weight - layer.weight_mu).abs() < 4.5 * layer.weight_sigma / n ** 0.5).all()
        # and the output moves (to first order) by the mean of n sampled output changes: within 5 of
        # their standard errors, std_s f_s(x) / sqrt(n) at each x
        spread = torch.stack([net(x) for net in nets]).std(0)
        assert ((avg(x) - model(x)).abs() < 5 * spread / n ** 0.5).all()


@pytest.mark.parametrize("nets, match", [([], "non-empty"),
                                         (nn.Linear(2, 2), "not a single network"),
                                         ([nn.Linear(2, 2), nn.Linear(2, 3)], "one architecture")])
def test_average_parameters_rejects_bad_input(nets, match):
    with pytest.raises(ValueError, match=match):
        bnn.average_parameters(nets)


def test_sample_network_draws_the_same_samples_under_a_seed_as_the_course_always_did():
    """The lessons print numbers from seeded posterior samples: the layer is built (its init drawn)
    before its weights are sampled, so a seed gives the draws it gave before the package moved."""
    layer = BayesLinear(3, 2, init_sigma=0.5)
    torch.manual_seed(5)
    got = bnn.sample_network(layer)
    torch.manual_seed(5)
    torch.nn.Linear(3, 2)  # the initialisation of the new layer comes first
    eps_w, eps_b = torch.randn(2, 3), torch.randn(2)
    torch.testing.assert_close(got.weight, layer.weight_mu + layer.weight_sigma * eps_w)
    torch.testing.assert_close(got.bias, layer.bias_mu + layer.bias_sigma * eps_b)
