"""Answer suite for lesson 04 (format: tests/answer_suite.py).

The test cells build their own inputs, so SETUP is only the lesson's imports.
"""

SETUP = """
import math
import statistics
import warnings
import torch
from torch.distributions import Normal
import bdl_course as bdl
"""

EXERCISES = {
    "nll_answer": {
        "tests": ["nll_tests", "nll_hidden"],
        "correct": [
            '''
def mean_gaussian_nll(y, mu, sigma):
    nll = 0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / (2 * sigma**2)
    return nll.mean()
''',
            # through the variance, computed in float64 whatever comes in
            '''
def mean_gaussian_nll(y, mu, sigma):
    y, mu, var = y.double(), mu.double(), sigma.double() ** 2
    return (0.5 * torch.log(2 * math.pi * var) + (y - mu) ** 2 / (2 * var)).mean()
''',
            # standardised residuals, summed and divided, with a warning on stderr
            '''
def mean_gaussian_nll(y, mu, sigma):
    warnings.warn("computing the Gaussian NLL by hand")
    z = (y - mu) / sigma
    total = (0.5 * z * z + sigma.log() + 0.5 * math.log(2 * math.pi)).sum()
    return total / y.numel()
''',
            # torch's own distribution (allowed: only the course's functions are forbidden)
            '''
def mean_gaussian_nll(y, mu, sigma):
    return -Normal(mu, sigma).log_prob(y).mean()
''',
        ],
        "wrong": [
            # torch's built-in clamps the variance at 1e-6: wrong for tiny sigma
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return torch.nn.functional.gaussian_nll_loss(mu, y, sigma**2, full=True)
''', {"nll_tests": 1, "nll_hidden": 0}),
            # sigma clamped at 1e-3 "for safety": wrong for tiny sigma
            ('''
def mean_gaussian_nll(y, mu, sigma):
    s = sigma.clamp(min=1e-3)
    return (0.5 * math.log(2 * math.pi) + torch.log(s) + (y - mu) ** 2 / (2 * s**2)).mean()
''', {"nll_tests": 1, "nll_hidden": 0}),
            # log of the variance where the log of the standard deviation belongs
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return (0.5 * math.log(2 * math.pi) + torch.log(sigma**2) + (y - mu) ** 2 / (2 * sigma**2)).mean()
''', {"nll_tests": 1, "nll_hidden": 0}),
            # sigma read as a variance
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return (0.5 * math.log(2 * math.pi) + 0.5 * torch.log(sigma) + (y - mu) ** 2 / (2 * sigma)).mean()
''', {"nll_tests": 1, "nll_hidden": 0}),
            # summed, not averaged
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return (0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / (2 * sigma**2)).sum()
''', {"nll_tests": 0, "nll_hidden": 0}),
            # the constant dropped
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return (torch.log(sigma) + (y - mu) ** 2 / (2 * sigma**2)).mean()
''', {"nll_tests": 0, "nll_hidden": 0}),
            # the 1/2 of the quadratic term dropped
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return (0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / sigma**2).mean()
''', {"nll_tests": 0, "nll_hidden": 0}),
            # a Python float: no gradient reaches mu or sigma
            ('''
def mean_gaussian_nll(y, mu, sigma):
    return torch.tensor((0.5 * math.log(2 * math.pi) + torch.log(sigma) + (y - mu) ** 2 / (2 * sigma**2)).mean().item())
''', {"nll_tests": 1, "nll_hidden": 0}),
        ],
    },
    "coverage_answer": {
        "tests": ["coverage_tests", "coverage_hidden"],
        "correct": [
            '''
def empirical_coverage(y, mean, std, level=0.95):
    z = Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2, dtype=torch.float64)).item()
    return ((y - mean).abs() <= z * std).double().mean().item()
''',
            # the interval's two ends, z from the standard library, float32 throughout
            '''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)
    lo, hi = mean - z * std, mean + z * std
    return float(((y >= lo) & (y <= hi)).float().mean())
''',
            # standardised errors, counted, with a warning on stderr
            '''
def empirical_coverage(y, mean, std, level=0.95):
    warnings.warn("coverage of the central interval")
    z = Normal(torch.tensor(0.0), torch.tensor(1.0)).icdf(torch.tensor((1 + level) / 2))
    inside = ((y - mean) / std).abs() <= z
    return inside.sum().item() / len(y)
''',
        ],
        "wrong": [
            # z fixed at 1.96 whatever the level
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    return ((y - mean).abs() <= 1.96 * std).double().mean().item()
''', {"coverage_tests": 1, "coverage_hidden": 0}),
            # one-sided quantile Phi^-1(level)
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(level)
    return ((y - mean).abs() <= z * std).double().mean().item()
''', {"coverage_tests": 0, "coverage_hidden": 0}),
            # the boundary left out
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return ((y - mean).abs() < z * std).double().mean().item()
''', {"coverage_tests": 1, "coverage_hidden": 0}),
            # std read as a variance
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return ((y - mean).abs() <= z * std.sqrt()).double().mean().item()
''', {"coverage_tests": 0, "coverage_hidden": 0}),
            # a tensor, not a Python float: the visible test asks for a float, the hidden ones convert
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return ((y - mean).abs() <= z * std).double().mean()
''', {"coverage_tests": 0, "coverage_hidden": 2}),
            # only the upper side checked
            ('''
def empirical_coverage(y, mean, std, level=0.95):
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return ((y - mean) <= z * std).double().mean().item()
''', {"coverage_tests": 0, "coverage_hidden": 0}),
        ],
    },
    "conformal_answer": {
        "tests": ["conformal_tests", "conformal_hidden"],
        "correct": [
            '''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = math.ceil((len(scores) + 1) * level)
    q = float("inf") if k > len(scores) else scores[k - 1].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''',
            # kthvalue, computed in float64
            '''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal.double() - mean_cal.double()).abs()
    n = scores.numel()
    k = math.ceil((n + 1) * level)
    if k > n:
        return math.inf, 1.0
    q = scores.kthvalue(k).values.item()
    return q, float(((y_test.double() - mean_test.double()).abs() <= q).double().mean())
''',
            # numpy's inverted-CDF quantile at k / n (the k-th order statistic), with a warning
            '''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    import numpy as np
    warnings.warn("split conformal with numpy")
    scores = np.abs(y_cal.numpy() - mean_cal.numpy())
    n = len(scores)
    k = int(np.ceil((n + 1) * level))
    q = float("inf") if k > n else float(np.quantile(scores, k / n, method="inverted_cdf"))
    return q, float(np.mean(np.abs(y_test.numpy() - mean_test.numpy()) <= q))
''',
            # a plain Python sort
            '''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = sorted(abs(a - b) for a, b in zip(y_cal.tolist(), mean_cal.tolist()))
    k = -int(-(len(scores) + 1) * level // 1)
    q = scores[k - 1] if k <= len(scores) else float("inf")
    inside = [abs(a - b) <= q for a, b in zip(y_test.tolist(), mean_test.tolist())]
    return float(q), sum(inside) / len(inside)
''',
        ],
        "wrong": [
            # the boundary left out
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = math.ceil((len(scores) + 1) * level)
    q = float("inf") if k > len(scores) else scores[k - 1].item()
    return q, ((y_test - mean_test).abs() < q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
            # k = ceil(n * level): no finite-sample correction
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = math.ceil(len(scores) * level)
    q = scores[k - 1].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
            # torch.quantile with its default linear interpolation
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    q = torch.quantile((y_cal - mean_cal).abs().double(), level).item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
            # the k-th score counted from 0: one too far
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = math.ceil((len(scores) + 1) * level)
    q = float("inf") if k >= len(scores) else scores[k].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
            # k rounded to the nearest integer, not up
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = round((len(scores) + 1) * level)
    q = float("inf") if k > len(scores) else scores[k - 1].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 1, "conformal_hidden": 0}),
            # k > n not handled: the largest score is used instead of infinity
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).abs().sort().values
    k = min(math.ceil((len(scores) + 1) * level), len(scores))
    q = scores[k - 1].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 1, "conformal_hidden": 0}),
            # signed errors: the sign is not part of the score
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    scores = (y_cal - mean_cal).sort().values
    k = math.ceil((len(scores) + 1) * level)
    q = float("inf") if k > len(scores) else scores[k - 1].item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
            # a Gaussian interval from the calibration errors' standard deviation
            ('''
def conformal_coverage(y_cal, mean_cal, y_test, mean_test, level=0.95):
    q = statistics.NormalDist().inv_cdf(0.5 + level / 2) * (y_cal - mean_cal).std().item()
    return q, ((y_test - mean_test).abs() <= q).double().mean().item()
''', {"conformal_tests": 0, "conformal_hidden": 0}),
        ],
    },
}
