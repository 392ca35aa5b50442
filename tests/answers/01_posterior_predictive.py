"""Answer suite for lesson 01 (format: tests/answer_suite.py).

SETUP rebuilds what the test cells read from the lesson: its data and features (float64, as in
the notebook) and the lesson's own ``log_evidence`` cell, read from the solution notebook so it
cannot drift. Like the lesson, it computes in float64 by default; the hidden tests also pass
float32 inputs.
"""
from pathlib import Path

import nbformat

_NB = Path(__file__).resolve().parents[2] / "solutions" / "01_posterior_predictive" / "01_posterior_predictive.ipynb"
_CELLS = {c.get("id"): c.source for c in nbformat.read(_NB, as_version=4).cells}

SETUP = """
import math
import warnings
import torch
import bdl_course as bdl
torch.set_default_dtype(torch.float64)  # as the lesson does (the harness restores it afterwards)
noise_std = 0.25
x, y = bdl.data.make_gap_regression(n=40, noise_std=noise_std, seed=0)
centers = torch.linspace(-3, 3, 12)
lengthscale = 0.6
beta = 1.0 / noise_std**2
phi = bdl.conjugate.rbf_features(x, centers, lengthscale)
""" + _CELLS["evidence"].split("\nprint(")[0] + "\n"

EXERCISES = {
    "posterior_answer": {
        "tests": ["posterior_tests", "posterior_hidden"],
        "correct": [
            # the formulas, with an explicit inverse
            '''
def conjugate_posterior(phi, y, alpha, beta):
    precision = alpha * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi
    S = torch.linalg.inv(precision)
    return beta * S @ phi.T @ y, S
''',
            # solve instead of inv, computed in float64 whatever comes in
            '''
def conjugate_posterior(phi, y, alpha, beta):
    phi, y = phi.double(), y.double()
    A = alpha * torch.eye(phi.shape[1], dtype=torch.float64) + beta * phi.T @ phi
    S = torch.linalg.solve(A, torch.eye(phi.shape[1], dtype=torch.float64))
    m = torch.linalg.solve(A, beta * phi.T @ y)
    return m, S
''',
            # Cholesky, with a warning printed on stderr along the way
            '''
def conjugate_posterior(phi, y, alpha, beta):
    warnings.warn("using a Cholesky factorisation")
    d = phi.shape[1]
    L = torch.linalg.cholesky(beta * phi.T @ phi + alpha * torch.eye(d, dtype=phi.dtype))
    S = torch.cholesky_inverse(L)
    m = torch.cholesky_solve((beta * phi.T @ y)[:, None], L)[:, 0]
    return m, S
''',
            # precision divided by beta first (ridge form), the same posterior
            '''
def conjugate_posterior(phi, y, alpha, beta):
    lam = alpha / beta
    G = phi.T @ phi + lam * torch.eye(phi.shape[1], dtype=phi.dtype)
    m = torch.linalg.solve(G, phi.T @ y)
    return m, torch.linalg.inv(G) / beta
''',
        ],
        "wrong": [
            # forgets beta in the mean: right only when beta == 1 (the visible case)
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    S = torch.linalg.inv(alpha * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi)
    return S @ phi.T @ y, S
''', {"posterior_tests": 1, "posterior_hidden": 0}),
            # forgets beta in the precision
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    S = torch.linalg.inv(alpha * torch.eye(phi.shape[1], dtype=phi.dtype) + phi.T @ phi)
    return beta * S @ phi.T @ y, S
''', {"posterior_tests": 1, "posterior_hidden": 0}),
            # treats alpha as a prior variance instead of a precision
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    S = torch.linalg.inv(torch.eye(phi.shape[1], dtype=phi.dtype) / alpha + beta * phi.T @ phi)
    return beta * S @ phi.T @ y, S
''', {"posterior_tests": 1, "posterior_hidden": 0}),
            # returns the precision instead of the covariance
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    A = alpha * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi
    return beta * torch.linalg.solve(A, phi.T @ y), A
''', {"posterior_tests": 0, "posterior_hidden": 0}),
            # calls the course's own implementation (forbidden)
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    return bdl.conjugate.posterior(phi, y, alpha, beta)
''', {"posterior_tests": 0, "posterior_hidden": 0}),
            # the same, hidden behind a default argument
            ('''
def conjugate_posterior(phi, y, alpha, beta, _post=bdl.conjugate.posterior):
    return _post(phi, y, alpha, beta)
''', {"posterior_tests": 0, "posterior_hidden": 0}),
            # the MLE (least squares) as the mean, ignoring the prior
            ('''
def conjugate_posterior(phi, y, alpha, beta):
    S = torch.linalg.inv(alpha * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi)
    return torch.linalg.lstsq(phi, y[:, None]).solution[:, 0], S
''', {"posterior_tests": 0, "posterior_hidden": 0}),
        ],
    },
    "mc_answer": {
        "tests": ["mc_tests", "mc_hidden"],
        "correct": [
            '''
def mc_log_predictive(y, means, noise_std):
    log_densities = torch.distributions.Normal(means, noise_std).log_prob(y)
    return torch.logsumexp(log_densities, dim=0) - math.log(means.shape[0])
''',
            # the log-density written out, computed in float64
            '''
def mc_log_predictive(y, means, noise_std):
    y, means = y.double(), means.double()
    ell = -0.5 * ((y - means) / noise_std) ** 2 - math.log(noise_std) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(ell, 0) - math.log(len(means))
''',
            # the max-shift by hand, per target
            '''
def mc_log_predictive(y, means, noise_std):
    ell = torch.distributions.Normal(means, noise_std).log_prob(y)
    top = ell.max(dim=0, keepdim=True).values
    return (top + torch.log(torch.exp(ell - top).mean(dim=0, keepdim=True)))[0]
''',
            # with a warning on stderr
            '''
def mc_log_predictive(y, means, noise_std):
    warnings.warn("Monte Carlo estimate")
    ell = torch.distributions.Normal(means, noise_std).log_prob(y[None, :])
    return torch.logsumexp(ell - math.log(means.shape[0]), dim=0)
''',
        ],
        "wrong": [
            # averages the densities, then takes the log: -inf far from every sample
            ('''
def mc_log_predictive(y, means, noise_std):
    return torch.distributions.Normal(means, noise_std).log_prob(y).exp().mean(0).log()
''', {"mc_tests": 1, "mc_hidden": 0}),
            # forgets the -log J
            ('''
def mc_log_predictive(y, means, noise_std):
    return torch.logsumexp(torch.distributions.Normal(means, noise_std).log_prob(y), 0)
''', {"mc_tests": 0, "mc_hidden": 0}),
            # the mean of the log-densities (Jensen's lower bound), not the log of the mean
            ('''
def mc_log_predictive(y, means, noise_std):
    return torch.distributions.Normal(means, noise_std).log_prob(y).mean(0)
''', {"mc_tests": 0, "mc_hidden": 0}),
            # passes the variance where a standard deviation is expected
            ('''
def mc_log_predictive(y, means, noise_std):
    ell = torch.distributions.Normal(means, noise_std ** 2).log_prob(y)
    return torch.logsumexp(ell, 0) - math.log(means.shape[0])
''', {"mc_tests": 0, "mc_hidden": 0}),
            # one global maximum shift for all targets: underflows beside a far target
            ('''
def mc_log_predictive(y, means, noise_std):
    ell = torch.distributions.Normal(means, noise_std).log_prob(y)
    top = ell.max()
    return top + torch.log(torch.exp(ell - top).mean(0))
''', {"mc_tests": 1, "mc_hidden": 0}),
            # divides by the number of test inputs M instead of the number of samples J
            ('''
def mc_log_predictive(y, means, noise_std):
    ell = torch.distributions.Normal(means, noise_std).log_prob(y)
    return torch.logsumexp(ell, 0) - math.log(means.shape[1])
''', {"mc_tests": 0, "mc_hidden": 0}),
            # the course's mixture log-density (forbidden)
            ('''
def mc_log_predictive(y, means, noise_std):
    return bdl.predictive.gaussian_mixture_log_prob(means, torch.full_like(means, noise_std), y)
''', {"mc_tests": 0, "mc_hidden": 0}),
            # the course's logmeanexp (forbidden)
            ('''
def mc_log_predictive(y, means, noise_std):
    return bdl.predictive.logmeanexp(torch.distributions.Normal(means, noise_std).log_prob(y), 0)
''', {"mc_tests": 0, "mc_hidden": 0}),
            # the old mixture density in bdl.ensembles, which computes the same answer (forbidden)
            ('''
def mc_log_predictive(y, means, noise_std):
    return bdl.ensembles.mixture_log_prob(y, means, torch.full_like(means, noise_std))
''', {"mc_tests": 0, "mc_hidden": 0}),
        ],
    },
    "evidence_answer": {
        "tests": ["evidence_tests", "evidence_hidden"],
        "correct": [
            # a grid of 1% steps
            '''
def evidence_alpha(phi, y, beta):
    log_alphas = torch.linspace(math.log(1e-3), math.log(1e3), 1401)
    values = torch.stack([log_evidence(phi, y, a, beta) for a in log_alphas.exp().tolist()])
    return log_alphas[values.argmax()].exp().item()
''',
            # golden-section search on log alpha, then the ends checked
            '''
def evidence_alpha(phi, y, beta):
    f = lambda t: float(log_evidence(phi, y, math.exp(t), beta))
    lo, hi = math.log(1e-3), math.log(1e3)
    coarse = [lo + (hi - lo) * k / 60 for k in range(61)]
    best = max(range(61), key=lambda k: f(coarse[k]))
    a, b = coarse[max(best - 1, 0)], coarse[min(best + 1, 60)]
    r = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - r * (b - a), a + r * (b - a)
        if f(c) > f(d):
            b = d
        else:
            a = c
    t = max([lo, hi, (a + b) / 2], key=f)
    return math.exp(t)
''',
            # MacKay's fixed point, clipped to the range, in float64, with a warning
            '''
def evidence_alpha(phi, y, beta):
    warnings.warn("fixed-point iteration")
    phi, y = phi.double(), y.double()
    lam = torch.linalg.eigvalsh(beta * phi.T @ phi)
    a = 1.0
    for _ in range(500):
        A = a * torch.eye(phi.shape[1], dtype=torch.float64) + beta * phi.T @ phi
        m = beta * torch.linalg.solve(A, phi.T @ y)
        gamma = (lam / (a + lam)).sum().item()
        a = min(max(gamma / max((m @ m).item(), 1e-300), 1e-3), 1e3)
    return a
''',
            # a fine grid returned as a 0-d tensor
            '''
def evidence_alpha(phi, y, beta):
    alphas = torch.logspace(-3, 3, 3001)
    values = torch.tensor([float(log_evidence(phi, y, a, beta)) for a in alphas.tolist()])
    return alphas[values.argmax()]
''',
        ],
        "wrong": [
            # a grid of one point per decade tenth: 26% steps, far from 1%
            ('''
def evidence_alpha(phi, y, beta):
    alphas = torch.logspace(-3, 3, 61)
    values = torch.stack([log_evidence(phi, y, a, beta) for a in alphas.tolist()])
    return alphas[values.argmax()].item()
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # a grid even in alpha, not in log alpha: coarse where the maxima are
            ('''
def evidence_alpha(phi, y, beta):
    alphas = torch.linspace(1e-3, 1e3, 2000)
    values = torch.stack([log_evidence(phi, y, a, beta) for a in alphas.tolist()])
    return alphas[values.argmax()].item()
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # the minimiser
            ('''
def evidence_alpha(phi, y, beta):
    alphas = torch.logspace(-3, 3, 1401)
    values = torch.stack([log_evidence(phi, y, a, beta) for a in alphas.tolist()])
    return alphas[values.argmin()].item()
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # maximises the fit term of the MAP objective only: always the weakest prior
            ('''
def evidence_alpha(phi, y, beta):
    best, best_value = None, -math.inf
    for a in torch.logspace(-3, 3, 1401).tolist():
        A = a * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi
        m = beta * torch.linalg.solve(A, phi.T @ y)
        value = -(beta / 2 * ((y - phi @ m) ** 2).sum() + a / 2 * m @ m).item()
        if value > best_value:
            best, best_value = a, value
    return best
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # forgets beta (evaluates the evidence at beta = 1)
            ('''
def evidence_alpha(phi, y, beta):
    alphas = torch.logspace(-3, 3, 1401)
    values = torch.stack([log_evidence(phi, y, a, 1.0) for a in alphas.tolist()])
    return alphas[values.argmax()].item()
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # returns log10(alpha) instead of alpha
            ('''
def evidence_alpha(phi, y, beta):
    exps = torch.linspace(-3, 3, 1401)
    values = torch.stack([log_evidence(phi, y, 10 ** e, beta) for e in exps.tolist()])
    return exps[values.argmax()].item()
''', {"evidence_tests": 0, "evidence_hidden": 0}),
            # MacKay's fixed point without the range: runs off to infinity when there is no signal
            ('''
def evidence_alpha(phi, y, beta):
    lam = torch.linalg.eigvalsh(beta * phi.T @ phi)
    a = 1.0
    for _ in range(500):
        A = a * torch.eye(phi.shape[1], dtype=phi.dtype) + beta * phi.T @ phi
        m = beta * torch.linalg.solve(A, phi.T @ y)
        a = ((lam / (a + lam)).sum() / (m @ m)).item()
    return a
''', {"evidence_tests": 1, "evidence_hidden": 0}),
            # searches only [0.1, 10]: misses the maxima outside it
            ('''
def evidence_alpha(phi, y, beta):
    alphas = torch.logspace(-1, 1, 1001)
    values = torch.stack([log_evidence(phi, y, a, beta) for a in alphas.tolist()])
    return alphas[values.argmax()].item()
''', {"evidence_tests": 1, "evidence_hidden": 0}),
        ],
    },
}
