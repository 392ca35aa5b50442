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
