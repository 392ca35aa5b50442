"""Answer suite for lesson 07 (format: tests/answer_suite.py).

The test cells read the pinned HMC samples (``gold``), the grid's gap mask (``in_gap``) and the
lesson's scores table (``scores``: a stand-in with the lesson's method names here), so SETUP
builds those besides the lesson's imports.
"""

SETUP = """
import math
import numpy as np
import torch
import bdl_course as bdl
import bdl_course.hmc
gold = bdl.hmc.load_gold()
in_cluster, in_gap = bdl.hmc.region_masks(bdl.hmc.make_toy().grid)
scores = {"MLE": {"gap var / HMC": 0.0}, "MAP": {"gap var / HMC": 0.0}, "MC dropout": {"gap var / HMC": 0.3},
          "deep ensemble": {"gap var / HMC": 0.2}, "mean-field BBB": {"gap var / HMC": 0.45},
          "Laplace": {"gap var / HMC": 1.7}, "HMC": {"gap var / HMC": 1.0}}
"""

EXERCISES = {
    "w1_answer": {
        "tests": ["w1_tests", "w1_hidden"],
        "correct": [
            '''
def w1_per_input(a, b):
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=0)
''',
            # column by column, in float64, through Python lists
            '''
def w1_per_input(a, b):
    out = []
    for m in range(a.shape[1]):
        xs, ys = sorted(a[:, m].tolist()), sorted(b[:, m].tolist())
        out.append(sum(abs(u - v) for u, v in zip(xs, ys)) / len(xs))
    return torch.tensor(out, dtype=torch.float64)
''',
            # the area between the empirical CDFs, in NumPy
            '''
def w1_per_input(a, b):
    A, B = a.double().numpy(), b.double().numpy()
    out = []
    for m in range(A.shape[1]):
        t = np.sort(np.concatenate([A[:, m], B[:, m]]))
        fa = np.searchsorted(np.sort(A[:, m]), t[:-1], side="right") / len(A)
        fb = np.searchsorted(np.sort(B[:, m]), t[:-1], side="right") / len(B)
        out.append(np.sum(np.abs(fa - fb) * np.diff(t)))
    return torch.tensor(out)
''',
            # torch.sort returns (values, indices)
            '''
def w1_per_input(a, b):
    sa, _ = torch.sort(a, 0)
    sb, _ = torch.sort(b, 0)
    return torch.mean(torch.abs(sa - sb), 0)
''',
        ],
        "wrong": [
            # the distance between the means: blind to a wrong width
            ('''
def w1_per_input(a, b):
    return (a.mean(dim=0) - b.mean(dim=0)).abs()
''', {"w1_tests": 1, "w1_hidden": 0}),
            # no sorting: pairs draws in the order they came
            ('''
def w1_per_input(a, b):
    return (a - b).abs().mean(dim=0)
''', {"w1_tests": 0, "w1_hidden": 0}),
            # sorted along the wrong axis (across inputs)
            ('''
def w1_per_input(a, b):
    return (a.sort(dim=1).values - b.sort(dim=1).values).abs().mean(dim=0)
''', {"w1_tests": 0, "w1_hidden": 0}),
            # squared gaps: not a distance in the units of y
            ('''
def w1_per_input(a, b):
    return ((a.sort(dim=0).values - b.sort(dim=0).values) ** 2).mean(dim=0)
''', {"w1_tests": 1, "w1_hidden": 0}),
            # the 2-Wasserstein distance
            ('''
def w1_per_input(a, b):
    return ((a.sort(dim=0).values - b.sort(dim=0).values) ** 2).mean(dim=0).sqrt()
''', {"w1_tests": 1, "w1_hidden": 0}),
            # averaged over the inputs as well: one number
            ('''
def w1_per_input(a, b):
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean()
''', {"w1_tests": 0, "w1_hidden": 0}),
            # the mean over the draws' axis confused with the inputs' axis
            ('''
def w1_per_input(a, b):
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=1)
''', {"w1_tests": 0, "w1_hidden": 0}),
        ],
    },
    "closest_answer": {
        "tests": ["closest_tests", "closest_hidden"],
        "correct": [
            '''
def closest_gap_variance(scores):
    candidates = {name: row["gap var / HMC"] for name, row in scores.items() if name != "HMC"}
    return min(candidates, key=lambda name: abs(math.log(candidates[name])) if candidates[name] > 0 else math.inf)
''',
            # the ratio of the smaller to the larger, as large as possible
            '''
def closest_gap_variance(scores):
    best, best_name = -1.0, None
    for name, row in scores.items():
        r = row["gap var / HMC"]
        if name == "HMC":
            continue
        closeness = min(r, 1 / r) if r > 0 else 0.0
        if closeness > best:
            best, best_name = closeness, name
    return best_name
''',
            # squared log, with a sorted list
            '''
def closest_gap_variance(scores):
    ranked = sorted((math.log(v["gap var / HMC"]) ** 2 if v["gap var / HMC"] > 0 else float("inf"), k)
                    for k, v in scores.items() if k != "HMC")
    return ranked[0][1]
''',
        ],
        "wrong": [
            # an asymmetric distance |r - 1| / r: prefers ratios above 1
            ('''
def closest_gap_variance(scores):
    c = {k: v["gap var / HMC"] for k, v in scores.items() if k != "HMC"}
    return min(c, key=lambda k: abs(c[k] - 1) / c[k] if c[k] > 0 else math.inf)
''', {"closest_tests": 1, "closest_hidden": 0}),
            # a difference, not a factor
            ('''
def closest_gap_variance(scores):
    candidates = {name: row["gap var / HMC"] for name, row in scores.items() if name != "HMC"}
    return min(candidates, key=lambda name: abs(candidates[name] - 1))
''', {"closest_tests": 1, "closest_hidden": 0}),
            # HMC not excluded: it is always "closest" to itself
            ('''
def closest_gap_variance(scores):
    return min(scores, key=lambda name: abs(math.log(scores[name]["gap var / HMC"])) if scores[name]["gap var / HMC"] > 0 else math.inf)
''', {"closest_tests": 0, "closest_hidden": 0}),
            # the ratio returned, not the name
            ('''
def closest_gap_variance(scores):
    candidates = [row["gap var / HMC"] for name, row in scores.items() if name != "HMC"]
    return min(candidates, key=lambda r: abs(math.log(r)) if r > 0 else math.inf)
''', {"closest_tests": 0, "closest_hidden": 0}),
            # the most doubt, not the right doubt
            ('''
def closest_gap_variance(scores):
    candidates = {name: row["gap var / HMC"] for name, row in scores.items() if name != "HMC"}
    return max(candidates, key=candidates.get)
''', {"closest_tests": 1, "closest_hidden": 0}),
            # log without the absolute value: the smallest ratio wins
            ('''
def closest_gap_variance(scores):
    candidates = {name: row["gap var / HMC"] for name, row in scores.items() if name != "HMC"}
    return min(candidates, key=lambda name: math.log(candidates[name]) if candidates[name] > 0 else -math.inf)
''', {"closest_tests": 0, "closest_hidden": 0}),
            # a ratio of 0 taken as exact
            ('''
def closest_gap_variance(scores):
    candidates = {name: row["gap var / HMC"] for name, row in scores.items() if name != "HMC"}
    return min(candidates, key=lambda name: abs(math.log(candidates[name])) if candidates[name] > 0 else 0.0)
''', {"closest_tests": 0, "closest_hidden": 0}),
        ],
    },
    "rhat_answer": {
        "tests": ["rhat_tests", "rhat_hidden"],
        "correct": [
            # float32 arithmetic on float32 chains, no .double(): right to float32 precision
            '''
def split_rhat(chains):
    C, T = chains.shape
    n = T // 2
    h = torch.cat([chains[:, :n], chains[:, n:]])
    W = h.var(1).mean()
    Bn = h.mean(1).var()
    return float(torch.sqrt(((n - 1) / n * W + Bn) / W))
''',
            '''
def split_rhat(chains):
    n = chains.shape[1] // 2
    halves = torch.cat([chains[:, :n], chains[:, n:]]).double()
    within = halves.var(dim=1).mean()
    return math.sqrt(((n - 1) / n * within + halves.mean(dim=1).var()) / within)
''',
            # a reshape keeps each half contiguous: the same half-chains in another order
            '''
def split_rhat(chains):
    c, t = chains.shape
    n = t // 2
    halves = chains.double().reshape(2 * c, n)
    w = halves.var(dim=1, unbiased=True).mean()
    b_over_n = halves.mean(dim=1).var(unbiased=True)
    return float(torch.sqrt(((n - 1) / n * w + b_over_n) / w))
''',
            # NumPy, with the divisors spelled out
            '''
def split_rhat(chains):
    x = chains.double().numpy()
    n = x.shape[1] // 2
    h = np.concatenate([x[:, :n], x[:, n:]])
    m = h.shape[0]
    means = h.mean(axis=1)
    w = (((h - means[:, None]) ** 2).sum(axis=1) / (n - 1)).mean()
    b_over_n = ((means - means.mean()) ** 2).sum() / (m - 1)
    return float(np.sqrt(((n - 1) / n * w + b_over_n) / w))
''',
        ],
        "wrong": [
            # no split: blind to chains that drift alike
            ('''
def split_rhat(chains):
    chains = chains.double()
    n = chains.shape[1]
    within = chains.var(dim=1).mean()
    return math.sqrt(((n - 1) / n * within + chains.mean(dim=1).var()) / within)
''', {"rhat_tests": 1, "rhat_hidden": 0}),
            # the square root forgotten
            ('''
def split_rhat(chains):
    n = chains.shape[1] // 2
    halves = torch.cat([chains[:, :n], chains[:, n:]]).double()
    within = halves.var(dim=1).mean()
    return float(((n - 1) / n * within + halves.mean(dim=1).var()) / within)
''', {"rhat_tests": 1, "rhat_hidden": 0}),
            # biased variances (divisor n and m)
            ('''
def split_rhat(chains):
    n = chains.shape[1] // 2
    halves = torch.cat([chains[:, :n], chains[:, n:]]).double()
    within = halves.var(dim=1, unbiased=False).mean()
    return math.sqrt(((n - 1) / n * within + halves.mean(dim=1).var(unbiased=False)) / within)
''', {"rhat_tests": 1, "rhat_hidden": 0}),
            # a tensor, not a float
            ('''
def split_rhat(chains):
    n = chains.shape[1] // 2
    halves = torch.cat([chains[:, :n], chains[:, n:]]).double()
    within = halves.var(dim=1).mean()
    return torch.sqrt(((n - 1) / n * within + halves.mean(dim=1).var()) / within)
''', {"rhat_tests": 0, "rhat_hidden": 0}),
            # B where B / n belongs
            ('''
def split_rhat(chains):
    n = chains.shape[1] // 2
    halves = torch.cat([chains[:, :n], chains[:, n:]]).double()
    within = halves.var(dim=1).mean()
    return math.sqrt(((n - 1) / n * within + n * halves.mean(dim=1).var()) / within)
''', {"rhat_tests": 0, "rhat_hidden": 0}),
            # even and odd draws instead of halves: both "halves" drift alike
            ('''
def split_rhat(chains):
    halves = torch.cat([chains[:, ::2], chains[:, 1::2]]).double()
    n = halves.shape[1]
    within = halves.var(dim=1).mean()
    return math.sqrt(((n - 1) / n * within + halves.mean(dim=1).var()) / within)
''', {"rhat_tests": 1, "rhat_hidden": 0}),
        ],
    },
}
