"""Answer suite for lesson 05 (format: tests/answer_suite.py).

The test cells read nothing from the lesson but its imports, so SETUP is the setup cell's imports.
"""

SETUP = """
import math
import warnings
import numpy as np
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal
import bdl_course as bdl
"""

EXERCISES = {
    "moments_answer": {
        "tests": ["moments_tests", "moments_hidden"],
        "correct": [
            # the second moment minus the squared mean
            '''
def mixture_mean_variance(mu, sigma):
    mean = mu.mean(dim=0)
    return mean, (sigma**2 + mu**2).mean(dim=0) - mean**2
''',
            # the two parts of the law of total variance, computed in float64
            '''
def mixture_mean_variance(mu, sigma):
    mu, sigma = mu.double(), sigma.double()
    mean = mu.mean(0)
    return mean, (sigma**2).mean(0) + ((mu - mean) ** 2).mean(0)
''',
            # torch.var with the population convention (correction=0), with a warning
            '''
def mixture_mean_variance(mu, sigma):
    warnings.warn("members' disagreement by torch.var(correction=0)")
    return mu.mean(0), sigma.pow(2).mean(0) + torch.var(mu, dim=0, correction=0)
''',
            # float32 whatever comes in, sums divided by J
            '''
def mixture_mean_variance(mu, sigma):
    J = mu.shape[0]
    mu, sigma = mu.float(), sigma.float()
    mean = mu.sum(0) / J
    return mean, (sigma * sigma).sum(0) / J + ((mu - mean) * (mu - mean)).sum(0) / J
''',
        ],
        "wrong": [
            # the members' noise only: forgets their disagreement (right when the means agree)
            ('''
def mixture_mean_variance(mu, sigma):
    return mu.mean(dim=0), (sigma ** 2).mean(dim=0)
''', {"moments_tests": 1, "moments_hidden": 0}),
            # the spread of the means with J - 1 (torch.var's default)
            ('''
def mixture_mean_variance(mu, sigma):
    return mu.mean(0), (sigma**2).mean(0) + mu.var(0)
''', {"moments_tests": 1, "moments_hidden": 0}),
            # the mean standard deviation, squared (averages sigma, not sigma^2)
            ('''
def mixture_mean_variance(mu, sigma):
    mean = mu.mean(0)
    return mean, sigma.mean(0) ** 2 + ((mu - mean) ** 2).mean(0)
''', {"moments_tests": 0, "moments_hidden": 0}),
            # returns a standard deviation instead of a variance
            ('''
def mixture_mean_variance(mu, sigma):
    mean = mu.mean(0)
    return mean, ((sigma**2).mean(0) + ((mu - mean) ** 2).mean(0)).sqrt()
''', {"moments_tests": 0, "moments_hidden": 0}),
            # reduces over the last dimension (inputs) instead of the members
            ('''
def mixture_mean_variance(mu, sigma):
    mean = mu.mean(-1, keepdim=True)
    var = (sigma**2 + mu**2).mean(-1, keepdim=True) - mean**2
    return mean.expand_as(mu)[0], var.expand_as(mu)[0]
''', {"moments_tests": 0, "moments_hidden": 0}),
            # only calls the package's predictive type (forbidden in the tests)
            ('''
def mixture_mean_variance(mu, sigma):
    p = bdl.predictive.Predictive.gaussian(mu, sigma)
    return p.mean(), p.var()
''', {"moments_tests": 0, "moments_hidden": 0}),
        ],
    },
    "oob_answer": {
        "tests": ["oob_tests", "oob_hidden"],
        "correct": [
            # the definition, numpy
            '''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = np.mean((np.asarray(y_train) - forest.oob_prediction_) ** 2)
    r = np.asarray(y_test) - forest.predict(x_test)
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + r**2 / (2 * s2)))
''',
            # scipy's normal log-density with the out-of-bag RMSE as the scale, with a warning
            '''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    from scipy.stats import norm
    warnings.warn("scoring the forest with scipy.stats.norm")
    s = math.sqrt(np.mean((y_train - forest.oob_prediction_) ** 2))
    return -norm.logpdf(y_test, loc=forest.predict(x_test), scale=s).mean()
''',
            # torch.distributions in float64; the spread as the root mean square of the residuals
            '''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    residual = torch.as_tensor(y_train - forest.oob_prediction_, dtype=torch.float64)
    pred = torch.as_tensor(forest.predict(x_test), dtype=torch.float64)
    q = Normal(pred, residual.pow(2).mean().sqrt())
    return -q.log_prob(torch.as_tensor(y_test, dtype=torch.float64)).mean().item()
''',
            # the course's Gaussian NLL on tensors (float32), s^2 written through oob_score_ = R^2
            '''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = (1 - forest.oob_score_) * np.var(y_train) if hasattr(forest, "oob_score_") else \\
        np.mean((y_train - forest.oob_prediction_) ** 2)
    pred = torch.tensor(forest.predict(x_test), dtype=torch.float32)
    return bdl.metrics.gaussian_nll(torch.tensor(y_test, dtype=torch.float32), pred, math.sqrt(s2)).item()
''',
        ],
        "wrong": [
            # the centred std of the residuals (their variance around their mean), not their root mean square
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    residual = torch.as_tensor(y_train - forest.oob_prediction_, dtype=torch.float64)
    pred = torch.as_tensor(forest.predict(x_test), dtype=torch.float64)
    q = Normal(pred, residual.std(correction=0))
    return -q.log_prob(torch.as_tensor(y_test, dtype=torch.float64)).mean().item()
''', {"oob_tests": 0, "oob_hidden": 0}),
            # np.var centres the residuals: not the mean of their squares
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = np.var(y_train - forest.oob_prediction_)
    e = y_test - forest.predict(x_test)
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + e**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # the spread from the forest's errors on its own training rows: far too small
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = np.mean((y_train - forest.predict(x_train)) ** 2)
    r = y_test - forest.predict(x_test)
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + r**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # the spread from the test residuals: uses the test labels it is scored on
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    r = y_test - forest.predict(x_test)
    s2 = np.mean(r**2)
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + r**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # the variance passed where the std belongs
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    from scipy.stats import norm
    s2 = np.mean((y_train - forest.oob_prediction_) ** 2)
    return float(-norm.logpdf(y_test, forest.predict(x_test), s2).mean())
''', {"oob_tests": 0, "oob_hidden": 0}),
            # summed over the test rows, not averaged
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = np.mean((y_train - forest.oob_prediction_) ** 2)
    r = y_test - forest.predict(x_test)
    return float(np.sum(0.5 * np.log(2 * np.pi * s2) + r**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # the mean absolute out-of-bag residual as the spread (right when every |residual| is equal)
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s = np.mean(np.abs(y_train - forest.oob_prediction_))
    r = y_test - forest.predict(x_test)
    return float(np.mean(np.log(s) + 0.5 * np.log(2 * np.pi) + r**2 / (2 * s**2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # the 0.5 log(2 pi) constant left out
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    s2 = np.mean((y_train - forest.oob_prediction_) ** 2)
    r = y_test - forest.predict(x_test)
    return float(np.mean(0.5 * np.log(s2) + r**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
            # standardises the targets first: the NLL in the wrong units
            ('''
def oob_gaussian_nll(forest, x_train, y_train, x_test, y_test):
    scale = np.std(y_train)
    s2 = np.mean(((y_train - forest.oob_prediction_) / scale) ** 2)
    r = (y_test - forest.predict(x_test)) / scale
    return float(np.mean(0.5 * np.log(2 * np.pi * s2) + r**2 / (2 * s2)))
''', {"oob_tests": 0, "oob_hidden": 0}),
        ],
    },
}
