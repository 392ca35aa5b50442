"""Answer suite for lesson 03 (format: tests/answer_suite.py).

The test cells build their own networks, so SETUP is only the lesson's imports.
"""

SETUP = """
import copy
import math
import warnings
import torch
import torch.nn.functional as F
from torch import nn
import bdl_course as bdl
from bdl_course.layers import BayesLinear
"""

EXERCISES = {
    "kl_answer": {
        "tests": ["kl_tests", "kl_hidden"],
        "correct": [
            # modules() finds every layer once; numel of the means counts each random variable once
            '''
def kl_loss(model):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    total = sum(layer.kl() for layer in layers)
    count = sum(layer.weight_mu.numel() + (0 if layer.bias_mu is None else layer.bias_mu.numel()) for layer in layers)
    return total / count
''',
            # the layer's own counter, a stacked sum, and a warning on stderr
            '''
def kl_loss(model):
    warnings.warn("summing the KL of every Bayesian layer")
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    return torch.stack([layer.kl() for layer in layers]).sum() / sum(layer.num_stochastic() for layer in layers)
''',
            # computed in float64, the KL written out from the means and standard deviations
            '''
def kl_loss(model):
    total, count = torch.zeros((), dtype=torch.float64), 0
    for m in model.modules():
        if isinstance(m, BayesLinear):
            for mu, sigma in [(m.weight_mu, m.weight_sigma), (m.bias_mu, m.bias_sigma)]:
                if mu is None:
                    continue
                mu, sigma = mu.double(), sigma.double()
                p = m.prior_sigma
                total = total + (math.log(p) - sigma.log() + (sigma**2 + (mu - m.prior_mu) ** 2) / (2 * p**2) - 0.5).sum()
                count += mu.numel()
    return total / count
''',
            # an explicit walk over named_modules, keyed by identity
            '''
def kl_loss(model):
    seen = {}
    for _, m in model.named_modules():
        if isinstance(m, BayesLinear):
            seen[id(m)] = m
    total = 0.0
    count = 0
    for m in seen.values():
        total = total + m.kl()
        count += m.weight_mu.numel()
        if m.bias_mu is not None:
            count += m.bias_mu.numel()
    return total / count
''',
        ],
        "wrong": [
            # only the top-level children: blind to nested layers and to a model that is a layer
            ('''
def kl_loss(model):
    layers = [m for m in model.children() if isinstance(m, BayesLinear)]
    return sum(layer.kl() for layer in layers) / sum(layer.num_stochastic() for layer in layers)
''', {"kl_tests": 1, "kl_hidden": 0}),
            # a (mu, rho) pair counted as two parameters
            ('''
def kl_loss(model):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    return sum(layer.kl() for layer in layers) / sum(p.numel() for layer in layers for p in layer.parameters())
''', {"kl_tests": 0, "kl_hidden": 0}),
            # the total KL, not divided
            ('''
def kl_loss(model):
    return sum(m.kl() for m in model.modules() if isinstance(m, BayesLinear))
''', {"kl_tests": 0, "kl_hidden": 0}),
            # weights counted, biases forgotten
            ('''
def kl_loss(model):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    return sum(layer.kl() for layer in layers) / sum(layer.weight_mu.numel() for layer in layers)
''', {"kl_tests": 0, "kl_hidden": 0}),
            # a shared layer counted every time it is used
            ('''
def kl_loss(model):
    layers = [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, BayesLinear)]
    return sum(layer.kl() for layer in layers) / sum(layer.num_stochastic() for layer in layers)
''', {"kl_tests": 1, "kl_hidden": 0}),
            # the mean of the per-layer averages, not one average over all parameters
            ('''
def kl_loss(model):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    return torch.stack([layer.kl() / layer.num_stochastic() for layer in layers]).mean()
''', {"kl_tests": 0, "kl_hidden": 0}),
            # a Python float: no gradient can flow
            ('''
def kl_loss(model):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    return sum(layer.kl().item() for layer in layers) / sum(layer.num_stochastic() for layer in layers)
''', {"kl_tests": 0, "kl_hidden": 0}),
        ],
    },
    "avg_answer": {
        "tests": ["avg_tests", "avg_hidden"],
        "correct": [
            '''
def average_weights(nets):
    mean_net = copy.deepcopy(nets[0])
    params = [dict(net.named_parameters()) for net in nets]
    with torch.no_grad():
        for name, p in mean_net.named_parameters():
            p.copy_(torch.stack([ps[name] for ps in params]).mean(dim=0))
    return mean_net
''',
            # through state_dicts, summed in float64 and divided, with a warning
            '''
def average_weights(nets):
    warnings.warn("averaging state dicts")
    new = copy.deepcopy(nets[0])
    states = [net.state_dict() for net in nets]
    new.load_state_dict({k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) for k, v in states[0].items()})
    return new
''',
            # zip over parameters, a running sum divided at the end
            '''
def average_weights(nets):
    out = copy.deepcopy(nets[0])
    with torch.no_grad():
        for p in out.parameters():
            p.zero_()
        for net in nets:
            for p, q in zip(out.parameters(), net.parameters()):
                p.add_(q)
        for p in out.parameters():
            p.div_(len(nets))
    return out
''',
        ],
        "wrong": [
            # a running pairwise average: right for two networks only
            ('''
def average_weights(nets):
    avg = copy.deepcopy(nets[0])
    with torch.no_grad():
        for net in nets[1:]:
            for p, q in zip(avg.parameters(), net.parameters()):
                p.copy_((p + q) / 2)
    return avg
''', {"avg_tests": 1, "avg_hidden": 0}),
            # averaged into nets[0] itself, which is returned: the input is modified
            ('''
def average_weights(nets):
    with torch.no_grad():
        for name, p in nets[0].named_parameters():
            p.copy_(torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0))
    return nets[0]
''', {"avg_tests": 0, "avg_hidden": 0}),
            # the sum, not the mean
            ('''
def average_weights(nets):
    out = copy.deepcopy(nets[0])
    with torch.no_grad():
        for name, p in out.named_parameters():
            p.copy_(sum(dict(n.named_parameters())[name] for n in nets))
    return out
''', {"avg_tests": 0, "avg_hidden": 0}),
            # a shallow copy: the "new" network shares its parameters with nets[0]
            ('''
def average_weights(nets):
    out = copy.copy(nets[0])
    with torch.no_grad():
        for name, p in out.named_parameters():
            p.copy_(torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0))
    return out
''', {"avg_tests": 0, "avg_hidden": 0}),
            # the weights averaged, the biases left at nets[0]'s
            ('''
def average_weights(nets):
    out = copy.deepcopy(nets[0])
    with torch.no_grad():
        for name, p in out.named_parameters():
            if name.endswith("weight"):
                p.copy_(torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0))
    return out
''', {"avg_tests": 0, "avg_hidden": 0}),
            # only the first two networks
            ('''
def average_weights(nets):
    out = copy.deepcopy(nets[0])
    with torch.no_grad():
        for p, a, b in zip(out.parameters(), nets[0].parameters(), nets[min(1, len(nets) - 1)].parameters()):
            p.copy_((a + b) / 2)
    return out
''', {"avg_tests": 1, "avg_hidden": 0}),
        ],
    },
    "snr_answer": {
        "tests": ["snr_tests", "snr_hidden"],
        "correct": [
            '''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''',
            # a sorted Python list of (snr, layer, index), SNR from rho in float64
            '''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    entries = []
    with torch.no_grad():
        for n, layer in enumerate(layers):
            snr = layer.weight_mu.double().abs() / F.softplus(layer.weight_rho.double())
            entries += [(v, n, i) for i, v in enumerate(snr.flatten().tolist())]
        entries.sort()
        for _, n, i in entries[:int(fraction * len(entries))]:
            layers[n].weight_mu.view(-1)[i] = 0.0
    for layer in layers:
        layer.freeze()
    return pruned
''',
            # a threshold on the k-th smallest SNR; an ordinary network of the means is returned
            '''
def snr_prune(model, fraction):
    work = copy.deepcopy(model)
    layers = [m for m in work.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(l.weight_mu / l.weight_sigma).abs().detach().flatten() for l in layers])
    k = math.floor(fraction * len(snr))
    with torch.no_grad():
        if k > 0:
            cut = snr.sort().values[k - 1]
            for l in layers:
                l.weight_mu[(l.weight_mu / l.weight_sigma).abs() <= cut] = 0.0
        for l in layers:
            l.freeze()
    return bdl.bnn.sample_network(work)
''',
            # topk of the negated SNR, and a warning on stderr
            '''
def snr_prune(model, fraction):
    warnings.warn("pruning by signal-to-noise ratio")
    net = copy.deepcopy(model)
    layers = [m for m in net.modules() if isinstance(m, BayesLinear)]
    sizes = [l.weight_mu.numel() for l in layers]
    snr = torch.cat([l.weight_mu.detach().abs().flatten() / l.weight_sigma.detach().flatten() for l in layers])
    k = int(math.floor(fraction * snr.numel()))
    chosen = torch.topk(-snr, k).indices if k else torch.zeros(0, dtype=torch.long)
    keep = torch.ones(snr.numel())
    keep[chosen] = 0.0
    with torch.no_grad():
        for l, m in zip(layers, keep.split(sizes)):
            l.weight_mu.mul_(m.view_as(l.weight_mu))
            l.freeze()
    return net
''',
        ],
        "wrong": [
            # one ranking per layer instead of one across layers
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for layer in [m for m in pruned.modules() if isinstance(m, BayesLinear)]:
            snr = (layer.weight_mu.abs() / layer.weight_sigma).flatten()
            layer.weight_mu.view(-1)[snr.argsort()[:math.floor(fraction * snr.numel())]] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 1, "snr_hidden": 0}),
            # the sign kept: large negative means ranked as "small"
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 0, "snr_hidden": 0}),
            # magnitude pruning: |mu| alone, sigma ignored
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    score = torch.cat([layer.weight_mu.abs().flatten() for layer in layers])
    drop = torch.zeros(score.numel(), dtype=torch.bool)
    drop[score.argsort()[:math.floor(fraction * score.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 1, "snr_hidden": 0}),
            # divided by the variance, not the standard deviation
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma**2).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 1, "snr_hidden": 0}),
            # k rounded to the nearest integer, not down: 7.5 -> 8
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:int(fraction * snr.numel() + 0.5)]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 1, "snr_hidden": 0}),
            # the biases ranked and pruned with the weights
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    params = [(l.weight_mu, l.weight_sigma) for l in layers] + [(l.bias_mu, l.bias_sigma) for l in layers if l.bias_mu is not None]
    snr = torch.cat([(mu.abs() / s).flatten() for mu, s in params])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for (mu, _), d in zip(params, drop.split([mu.numel() for mu, _ in params])):
            mu[d.view_as(mu)] = 0.0
    for l in layers:
        l.freeze()
    return pruned
''', {"snr_tests": 0, "snr_hidden": 0}),
            # pruned in place: the model itself changes
            ('''
def snr_prune(model, fraction):
    layers = [m for m in model.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return model
''', {"snr_tests": 0, "snr_hidden": 0}),
            # not frozen: the copy still samples its weights
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
    return pruned
''', {"snr_tests": 0, "snr_hidden": 0}),
            # a shared layer counted (and ranked) every time it is used
            ('''
def snr_prune(model, fraction):
    pruned = copy.deepcopy(model)
    layers = [m for _, m in pruned.named_modules(remove_duplicate=False) if isinstance(m, BayesLinear)]
    snr = torch.cat([(layer.weight_mu.abs() / layer.weight_sigma).flatten() for layer in layers])
    drop = torch.zeros(snr.numel(), dtype=torch.bool)
    drop[snr.argsort()[:math.floor(fraction * snr.numel())]] = True
    with torch.no_grad():
        for layer, d in zip(layers, drop.split([layer.weight_mu.numel() for layer in layers])):
            layer.weight_mu[d.view_as(layer.weight_mu)] = 0.0
            layer.freeze()
    return pruned
''', {"snr_tests": 1, "snr_hidden": 0}),
        ],
    },
}
