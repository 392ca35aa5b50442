"""Specification of bdl_course.bnn: model-level utilities for Bayesian networks (every Bayesian
layer, KL and size of a model, frozen / local-reparameterisation contexts, posterior samples
as ordinary networks, weight averaging)."""
import pytest
import torch
from torch import nn

from bdl_course import bnn, models
from bdl_course.layers import BayesConv2d, BayesLinear


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
