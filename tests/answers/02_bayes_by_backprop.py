"""Answer suite for lesson 02 (format: tests/answer_suite.py).

SETUP runs the lesson's imports and its data cell (read from the solution notebook, so it
cannot drift): the ELBO tests use the training wines X_train, Y_train and n_train.
"""
from pathlib import Path

import nbformat

_NB = Path(__file__).resolve().parents[2] / "solutions" / "02_bayes_by_backprop" / "02_bayes_by_backprop.ipynb"
_CELLS = {c.get("id"): c.source for c in nbformat.read(_NB, as_version=4).cells}

SETUP = """
import math
import warnings
import torch
import torch.nn.functional as F
import bdl_course as bdl
device = torch.device("cpu")
""" + _CELLS["data"] + "\n"

EXERCISES = {
    "kl_answer": {
        "tests": ["kl_tests", "kl_hidden"],
        "correct": [
            '''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return torch.log(sigma_p) - torch.log(sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5
''',
            # through the variances
            '''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    var_q, var_p = torch.as_tensor(sigma_q) ** 2, torch.as_tensor(sigma_p) ** 2
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)
''',
            # everything in float64, with a warning on stderr
            '''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    warnings.warn("computing the KL in float64")
    mu_q, sigma_q, mu_p, sigma_p = (torch.as_tensor(t, dtype=torch.float64) for t in (mu_q, sigma_q, mu_p, sigma_p))
    ratio = sigma_q / sigma_p
    return 0.5 * (ratio**2 + ((mu_q - mu_p) / sigma_p) ** 2 - 1) - torch.log(ratio)
''',
            # math.log for floats, torch.log for tensors
            '''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    log = lambda t: torch.log(t) if isinstance(t, torch.Tensor) else math.log(t)
    return log(sigma_p) - log(sigma_q) + (sigma_q * sigma_q + (mu_q - mu_p) * (mu_q - mu_p)) / (2 * sigma_p * sigma_p) - 0.5
''',
        ],
        "wrong": [
            # torch.log of a Python float raises: the float sigma_q the text allows
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_p = torch.as_tensor(sigma_p)
    return torch.log(sigma_p) - torch.log(sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5
''', {"kl_tests": 1, "kl_hidden": 0}),
            # forgets the -1/2
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return torch.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2)
''', {"kl_tests": 0, "kl_hidden": 0}),
            # the reverse KL(p || q)
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return torch.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_q - mu_p) ** 2) / (2 * sigma_q**2) - 0.5
''', {"kl_tests": 0, "kl_hidden": 0}),
            # drops log(sigma_p): right only for a prior std of 1 (the visible case)
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return -torch.log(sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5
''', {"kl_tests": 1, "kl_hidden": 0}),
            # reads the standard deviations as variances
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return 0.5 * torch.log(sigma_p / sigma_q) + (sigma_q + (mu_q - mu_p) ** 2) / (2 * sigma_p) - 0.5
''', {"kl_tests": 0, "kl_hidden": 0}),
            # sums over the elements
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    sigma_q, sigma_p = torch.as_tensor(sigma_q), torch.as_tensor(sigma_p)
    return (torch.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5).sum()
''', {"kl_tests": 0, "kl_hidden": 0}),
            # the course's own KL (forbidden)
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    return bdl.functional.kl_normal(torch.as_tensor(mu_q), torch.as_tensor(sigma_q), mu_p, sigma_p)
''', {"kl_tests": 0, "kl_hidden": 0}),
            # torch's KL, which the tests compare with (forbidden)
            ('''
def kl_gaussian(mu_q, sigma_q, mu_p, sigma_p):
    from torch.distributions import Normal, kl_divergence as kl
    return kl(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
''', {"kl_tests": 0, "kl_hidden": 0}),
        ],
    },
    "sample_answer": {
        "tests": ["sample_tests", "sample_hidden"],
        "correct": [
            '''
def sample_weight(mu, rho, eps):
    return mu + F.softplus(rho) * eps
''',
            '''
def sample_weight(mu, rho, eps):
    return torch.addcmul(mu, torch.logaddexp(torch.zeros_like(rho), rho), eps)
''',
            # the stable softplus by hand, with a warning
            '''
def sample_weight(mu, rho, eps):
    warnings.warn("hand-made softplus")
    sigma = torch.where(rho > 0, rho + torch.log1p(torch.exp(-rho)), torch.log1p(torch.exp(rho)))
    return mu + sigma * eps
''',
            # in float64, then back
            '''
def sample_weight(mu, rho, eps):
    return (mu.double() + torch.nn.Softplus()(rho.double()) * eps.double())
''',
        ],
        "wrong": [
            # the naive softplus in float64 and cast back: overflows to inf for rho = 1000
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.log1p(torch.exp(rho.double())).to(rho.dtype) * eps
''', {"sample_tests": 1, "sample_hidden": 0}),
            # the naive formula: overflows to inf at rho = 100 in float32
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.log(1 + torch.exp(rho)) * eps
''', {"sample_tests": 1, "sample_hidden": 0}),
            # log1p of exp: still overflows
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.log1p(torch.exp(rho)) * eps
''', {"sample_tests": 1, "sample_hidden": 0}),
            # guards the overflow but not the underflow: sigma rounds to 0 at rho = -30
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.where(rho > 20, rho, torch.log(1 + torch.exp(rho))) * eps
''', {"sample_tests": 1, "sample_hidden": 0}),
            # exp instead of softplus
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.exp(rho) * eps
''', {"sample_tests": 0, "sample_hidden": 0}),
            # reads softplus(rho) as a variance
            ('''
def sample_weight(mu, rho, eps):
    return mu + torch.sqrt(F.softplus(rho)) * eps
''', {"sample_tests": 0, "sample_hidden": 0}),
            # cuts the gradient to mu
            ('''
def sample_weight(mu, rho, eps):
    return mu.detach() + F.softplus(rho) * eps
''', {"sample_tests": 0, "sample_hidden": 2}),
            # forgets the softplus
            ('''
def sample_weight(mu, rho, eps):
    return mu + rho * eps
''', {"sample_tests": 0, "sample_hidden": 0}),
        ],
    },
    "elbo_answer": {
        "tests": ["elbo_tests", "elbo_hidden"],
        "correct": [
            '''
def elbo_loss(model, x, y, noise_std, n_train):
    nll = bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std)
    return nll + bdl.bnn.total_kl(model) / n_train
''',
            # the NLL written out
            '''
def elbo_loss(model, x, y, noise_std, n_train):
    mean = model(x)[:, 0]
    nll = 0.5 * math.log(2 * math.pi) + torch.log(noise_std) + 0.5 * ((y - mean) / noise_std) ** 2
    return nll.mean() + bdl.bnn.total_kl(model) / n_train
''',
            # torch.distributions, KL first, with a warning
            '''
def elbo_loss(model, x, y, noise_std, n_train):
    warnings.warn("one weight sample")
    kl = bdl.bnn.total_kl(model)
    log_lik = torch.distributions.Normal(model(x).reshape(-1), noise_std).log_prob(y)
    return -log_lik.mean() + kl / n_train
''',
            # torch's Gaussian NLL (it takes a variance), full constant, in float64
            '''
def elbo_loss(model, x, y, noise_std, n_train):
    mean = model(x).squeeze(1).double()
    var = (noise_std.double() ** 2).expand_as(mean)
    nll = F.gaussian_nll_loss(mean, y.double(), var, full=True, eps=0.0)
    return nll + bdl.bnn.total_kl(model).double() / n_train
''',
        ],
        "wrong": [
            # the classic: KL divided by the batch size; right only when the batch is everything
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    return bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std) + bdl.bnn.total_kl(model) / len(x)
''', {"elbo_tests": 1, "elbo_hidden": 0}),
            # KL divided by the number of parameters
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    return (bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std)
            + bdl.bnn.total_kl(model) / bdl.bnn.num_stochastic(model))
''', {"elbo_tests": 0, "elbo_hidden": 0}),
            # passes the variance as the std
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    return bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std**2) + bdl.bnn.total_kl(model) / n_train
''', {"elbo_tests": 0, "elbo_hidden": 0}),
            # drops the log-sigma term of the NLL
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    mean = model(x).squeeze(-1)
    nll = 0.5 * math.log(2 * math.pi) + (y - mean) ** 2 / (2 * noise_std**2)
    return nll.mean() + bdl.bnn.total_kl(model) / n_train
''', {"elbo_tests": 0, "elbo_hidden": 0}),
            # a sum over the batch divided by N: right only when the batch is everything
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    nll = bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std, reduction="sum")
    return (nll + bdl.bnn.total_kl(model)) / n_train
''', {"elbo_tests": 1, "elbo_hidden": 0}),
            # two weight samples averaged: not one call of model(x)
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    nll = sum(bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std) for _ in range(2)) / 2
    return nll + bdl.bnn.total_kl(model) / n_train
''', {"elbo_tests": 1, "elbo_hidden": 0}),
            # no KL at all
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    return bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std)
''', {"elbo_tests": 0, "elbo_hidden": 0}),
            # the course's likelihood does it all (forbidden)
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    return bdl.likelihoods.Gaussian(n_train, noise_std=float(noise_std)).neg_elbo(model, x, y)
''', {"elbo_tests": 0, "elbo_hidden": 0}),
            # the course's neg_elbo and kl_weight (forbidden)
            ('''
def elbo_loss(model, x, y, noise_std, n_train):
    nll = bdl.metrics.gaussian_nll(model(x).squeeze(-1), y, noise_std)
    return bdl.train.neg_elbo(nll, bdl.bnn.total_kl(model), bdl.train.kl_weight("per_example", n_train))
''', {"elbo_tests": 0, "elbo_hidden": 0}),
        ],
    },
}
