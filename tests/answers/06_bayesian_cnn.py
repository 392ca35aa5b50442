"""Answer suite for lesson 06 (format: tests/answer_suite.py).

The test cells read nothing from the lesson but its imports, so SETUP is the setup cell's imports.
"""

SETUP = """
import math
import warnings
import numpy as np
import torch
import torch.nn.functional as F
import bdl_course as bdl
"""

EXERCISES = {
    "entropy_answer": {
        "tests": ["entropy_tests", "entropy_hidden"],
        "correct": [
            # the solution's way: clamp inside the log, 0 * finite = 0
            '''
def entropy_decomposition(probs):
    def h(p):
        return -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    total = h(probs.mean(0))
    expected = h(probs).mean(0)
    return total, expected, total - expected
''',
            # torch.special.entr handles 0 log 0 itself; computed in float64
            '''
def entropy_decomposition(probs):
    p = probs.double()
    total = torch.special.entr(p.mean(0)).sum(-1)
    expected = torch.special.entr(p).sum(-1).mean(0)
    return total, expected, total - expected
''',
            # xlogy, mutual information written as the mean KL to the average (with a warning)
            '''
def entropy_decomposition(probs):
    warnings.warn("computing the mutual information as a mean KL divergence")
    mean = probs.mean(0)
    total = -torch.xlogy(mean, mean).sum(-1)
    expected = -torch.xlogy(probs, probs).sum(-1).mean(0)
    kl = (torch.xlogy(probs, probs) - torch.xlogy(probs, mean.expand_as(probs))).sum(-1).mean(0)
    return total, expected, kl
''',
            # torch.where around the log, float32 throughout
            '''
def entropy_decomposition(probs):
    def h(p):
        safe = torch.where(p > 0, p, torch.ones_like(p))
        return -(torch.where(p > 0, p * safe.log(), torch.zeros_like(p))).sum(-1)
    t = h(probs.mean(dim=0))
    e = h(probs).mean(dim=0)
    return t, e, t - e
''',
        ],
        "wrong": [
            # p log p is NaN where p = 0 (right for strictly positive probabilities)
            ('''
def entropy_decomposition(probs):
    total = -(probs.mean(0) * probs.mean(0).log()).sum(-1)
    expected = -(probs * probs.log()).sum(-1).mean(0)
    return total, expected, total - expected
''', {"entropy_tests": 1, "entropy_hidden": 0}),
            # log base 2 (bits, not nats)
            ('''
def entropy_decomposition(probs):
    def h(p):
        return -torch.xlogy(p, p).sum(-1) / math.log(2)
    total = h(probs.mean(0))
    expected = h(probs).mean(0)
    return total, expected, total - expected
''', {"entropy_tests": 0, "entropy_hidden": 0}),
            # the parts swapped: mutual information returned as the expected entropy
            ('''
def entropy_decomposition(probs):
    total = torch.special.entr(probs.mean(0)).sum(-1)
    expected = torch.special.entr(probs).sum(-1).mean(0)
    return total, total - expected, expected
''', {"entropy_tests": 0, "entropy_hidden": 0}),
            # the entropy of the mean over classes instead of over samples
            ('''
def entropy_decomposition(probs):
    total = torch.special.entr(probs.mean(0)).sum(-1)
    expected = torch.special.entr(probs.mean(-1, keepdim=True).expand_as(probs)).sum(-1).mean(0)
    return total, expected, total - expected
''', {"entropy_tests": 0, "entropy_hidden": 0}),
            # the expected entropy as the entropy of the first sample only
            ('''
def entropy_decomposition(probs):
    total = torch.special.entr(probs.mean(0)).sum(-1)
    expected = torch.special.entr(probs[0]).sum(-1)
    return total, expected, total - expected
''', {"entropy_tests": 0, "entropy_hidden": 0}),
            # only calls the package's predictive type (forbidden in the tests)
            ('''
def entropy_decomposition(probs):
    p = bdl.predictive.Predictive.categorical(probs.clamp_min(1e-45).log())
    return p.entropy(), p.expected_entropy(), p.mutual_information()
''', {"entropy_tests": 0, "entropy_hidden": 0}),
        ],
    },
    "ece_answer": {
        "tests": ["ece_tests", "ece_hidden"],
        "correct": [
            # the solution's loop over bins with ceil
            '''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).to(probs.dtype)
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    error = probs.new_zeros(())
    for b in range(n_bins):
        in_bin = index == b
        if in_bin.any():
            error = error + in_bin.sum() / len(probs) * (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
    return error
''',
            # explicit edges, lo < conf <= hi, in float64, returning a Python float
            '''
def expected_calibration_error(probs, labels, n_bins=15):
    conf, pred = probs.double().max(1)
    right = (pred == labels).double()
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        mask = (conf > lo) & (conf <= hi)
        if b == 0:
            mask = mask | (conf == 0)
        if mask.any():
            total += mask.double().mean().item() * abs(right[mask].mean().item() - conf[mask].mean().item())
    return total
''',
            # torch.bucketize (right=False: edges[i-1] < x <= edges[i]) and scatter sums, with a warning
            '''
def expected_calibration_error(probs, labels, n_bins=15):
    warnings.warn("ECE with bucketize")
    conf, pred = probs.max(1)
    right = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype)[1:-1]
    index = torch.bucketize(conf, edges)
    count = torch.zeros(n_bins).index_add_(0, index, torch.ones_like(conf))
    acc = torch.zeros(n_bins).index_add_(0, index, right)
    cf = torch.zeros(n_bins).index_add_(0, index, conf.float())
    return ((acc - cf).abs().sum() / len(conf)).item()
''',
            # numpy, np.digitize with right=True
            '''
def expected_calibration_error(probs, labels, n_bins=15):
    p = np.asarray(probs, dtype=np.float64)
    conf, pred = p.max(1), p.argmax(1)
    right = (pred == np.asarray(labels)).astype(float)
    index = np.clip(np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(index):
        m = index == b
        ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    return ece
''',
        ],
        "wrong": [
            # an unweighted mean of the gaps (right only when every bin holds as many inputs)
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    gaps = [(correct[index == b].mean() - confidence[index == b].mean()).abs()
            for b in range(n_bins) if (index == b).any()]
    return torch.stack(gaps).mean()
''', {"ece_tests": 1, "ece_hidden": 0}),
            # left-closed bins [lo, hi): floor instead of ceil (confidence on an edge in the wrong bin)
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    index = torch.floor(confidence * n_bins).long().clamp(0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        m = index == b
        if m.any():
            error += m.float().mean() * (correct[m].mean() - confidence[m].mean()).abs()
    return error
''', {"ece_tests": 1, "ece_hidden": 0}),
            # confidence exactly 1 dropped (index n_bins is never visited)
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    index = torch.ceil(confidence * n_bins).long() - 1
    error = 0.0
    for b in range(n_bins - 1):
        m = index == b
        if m.any():
            error += m.float().mean() * (correct[m].mean() - confidence[m].mean()).abs()
    return float(error)
''', {"ece_tests": 0, "ece_hidden": 0}),
            # the signed gap, not its absolute value
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        m = index == b
        if m.any():
            error += m.float().mean() * (correct[m].mean() - confidence[m].mean())
    return float(error)
''', {"ece_tests": 0, "ece_hidden": 0}),
            # the probability of the true class instead of the confidence of the predicted one
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence = probs.gather(1, labels[:, None])[:, 0]
    correct = (probs.argmax(1) == labels).float()
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        m = index == b
        if m.any():
            error += m.float().mean() * (correct[m].mean() - confidence[m].mean()).abs()
    return float(error)
''', {"ece_tests": 0, "ece_hidden": 0}),
            # the overall gap |accuracy - mean confidence|, no bins at all
            ('''
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, predicted = probs.max(dim=1)
    return float(((predicted == labels).float().mean() - confidence.mean()).abs())
''', {"ece_tests": 0, "ece_hidden": 0}),
        ],
    },
    "temp_answer": {
        "tests": ["temp_tests", "temp_hidden"],
        "correct": [
            # the solution: a grid on log T, then golden-section search
            '''
def fit_temperature(logits, labels):
    z, y = logits.double(), labels.long()
    def nll(log_t):
        return F.cross_entropy(z / math.exp(log_t), y).item()
    best = min([i / 10 for i in range(-60, 61)], key=nll)
    lo, hi = best - 0.1, best + 0.1
    g = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)
''',
            # scipy's bounded Brent search on log T, float32 logits as given, with a warning
            '''
def fit_temperature(logits, labels):
    from scipy.optimize import minimize_scalar
    warnings.warn("fitting the temperature with scipy")
    def nll(log_t):
        return F.cross_entropy(logits / math.exp(log_t), labels).item()
    best = min(np.linspace(-6, 6, 121), key=nll)
    res = minimize_scalar(nll, bounds=(best - 0.1, best + 0.1), method="bounded", options={"xatol": 1e-7})
    return float(math.exp(res.x))
''',
            # Newton's method on beta = 1/T (the NLL is convex in beta), float64, returns a 0-dim tensor
            '''
def fit_temperature(logits, labels):
    z, y = logits.double(), labels.long()
    def nll(beta):
        return torch.logsumexp(beta * z, 1).mean() - beta * z.gather(1, y[:, None]).mean()
    betas = torch.exp(torch.linspace(-6, 6, 241, dtype=torch.float64))
    beta = betas[torch.stack([nll(b) for b in betas]).argmin()].clone()
    for _ in range(50):
        b = beta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nll(b), b, create_graph=True)
        (h,) = torch.autograd.grad(g, b)
        beta = (beta - g.detach() / h).clamp_min(beta / 2)
    return 1 / beta
''',
            # LBFGS on log T from the best point of a coarse grid
            '''
def fit_temperature(logits, labels):
    z = logits.double()
    grid = torch.linspace(-6, 6, 61, dtype=torch.float64)
    start = grid[torch.stack([F.cross_entropy(z / t.exp(), labels) for t in grid]).argmin()]
    log_t = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([log_t], lr=1, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), labels)
        loss.backward()
        return loss
    opt.step(closure)
    return log_t.exp().item()
''',
        ],
        "wrong": [
            # multiplies the logits by T: returns 1 / T*
            ('''
def fit_temperature(logits, labels):
    z = logits.double()
    def nll(log_t):
        return F.cross_entropy(z * math.exp(log_t), labels).item()
    best = min([i / 1000 for i in range(-6000, 6001)], key=nll)
    return math.exp(best)
''', {"temp_tests": 0, "temp_hidden": 0}),
            # a coarse grid of "usual" temperatures: right to 10%, not to 0.1%
            ('''
def fit_temperature(logits, labels):
    grid = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]
    return min(grid, key=lambda t: F.cross_entropy(logits.double() / t, labels).item())
''', {"temp_tests": 0, "temp_hidden": 0}),
            # a fine grid, but only on [0.5, 5]: misses the temperatures far from 1
            ('''
def fit_temperature(logits, labels):
    grid = torch.linspace(0.5, 5.0, 4501, dtype=torch.float64)
    return min(grid.tolist(), key=lambda t: F.cross_entropy(logits.double() / t, labels).item())
''', {"temp_tests": 1, "temp_hidden": 0}),
            # minimises the ECE instead of the NLL
            ('''
def fit_temperature(logits, labels):
    def ece(t):
        return bdl.metrics.ece(torch.softmax(logits.double() / t, -1), labels)
    grid = [math.exp(i / 100) for i in range(-500, 501)]
    return min(grid, key=ece)
''', {"temp_tests": 0, "temp_hidden": 0}),
            # LBFGS from T = 1 on log(softmax): saturated logits give log 0 = -inf there, and NaN gradients
            ('''
def fit_temperature(logits, labels):
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        p = torch.softmax(logits / log_t.exp(), -1)
        loss = -torch.log(p[torch.arange(len(labels)), labels]).mean()
        loss.backward()
        return loss
    opt.step(closure)
    return log_t.exp().item()
''', {"temp_tests": 1, "temp_hidden": 0}),
            # a few steps of gradient descent on T from 1: not converged
            ('''
def fit_temperature(logits, labels):
    t = torch.tensor(1.0, requires_grad=True)
    opt = torch.optim.SGD([t], lr=0.01)
    for _ in range(50):
        opt.zero_grad()
        F.cross_entropy(logits.float() / t, labels).backward()
        opt.step()
    return t.item()
''', {"temp_tests": 0, "temp_hidden": 0}),
            # the Brier score instead of the NLL
            ('''
def fit_temperature(logits, labels):
    onehot = F.one_hot(labels, logits.shape[1]).double()
    def brier(log_t):
        return ((torch.softmax(logits.double() / math.exp(log_t), -1) - onehot) ** 2).sum(-1).mean().item()
    best = min([i / 10 for i in range(-60, 61)], key=brier)
    lo, hi = best - 0.1, best + 0.1
    for _ in range(40):
        a, b = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, b) if brier(a) < brier(b) else (a, hi)
    return math.exp((lo + hi) / 2)
''', {"temp_tests": 0, "temp_hidden": 0}),
        ],
    },
}
