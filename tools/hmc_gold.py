"""Regenerate lesson 07's HMC gold standard: NUTS on the Bayesian network of ``bdl_course.hmc``.

    .venv/bin/python tools/hmc_gold.py            # writes data/hmc_gold.npz, prints its sha256

Runs ``--chains`` NUTS chains (Pyro, diagonal mass matrix adapted in warm-up), each from its own
seed ``--seed + chain`` and its own small random start, ``--workers`` of them at a time in separate
processes. Keeps every ``--thin``-th draw after warm-up. Prints split R-hat and effective sample
size of the predictive mean f(x) at every grid input and of every weight, then writes the thinned
weights, f at the grid and at the held-out inputs, and the diagnostics to the output file
atomically. Pin the printed sha256 in ``bdl_course/hmc.py`` (``GOLD_SHA256``) and ``data/README.md``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bdl_course import hmc  # noqa: E402


def run_chain(args: tuple[int, int, int, int, int]) -> tuple[torch.Tensor, float, int, float]:
    """One NUTS chain: returns thinned weights ``[T, P]``, its step size, divergences, seconds."""
    import pyro
    from pyro.infer import MCMC, NUTS

    seed, warmup, samples, thin, max_tree_depth = args
    torch.set_num_threads(1)
    toy = hmc.make_toy()
    x, y = toy.x.double(), toy.y.double()
    pyro.set_rng_seed(seed)
    init = {"w": 0.1 * torch.randn(hmc.num_params(), dtype=torch.float64)}
    kernel = NUTS(potential_fn=lambda p: hmc.potential(p["w"], x, y), max_tree_depth=max_tree_depth,
                  target_accept_prob=0.8)
    mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, initial_params=init, num_chains=1,
                disable_progbar=True)
    start = time.perf_counter()
    mcmc.run()
    seconds = time.perf_counter() - start
    divergences = len(mcmc.diagnostics()["divergences"]["chain 0"])
    w = mcmc.get_samples()["w"][thin - 1::thin]
    return w, float(kernel.step_size), divergences, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--samples", type=int, default=600, help="draws per chain after warm-up, before thinning")
    parser.add_argument("--thin", type=int, default=3)
    parser.add_argument("--max-tree-depth", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=hmc.gold_path())
    a = parser.parse_args(argv)

    jobs = [(a.seed + c, a.warmup, a.samples, a.thin, a.max_tree_depth) for c in range(a.chains)]
    start = time.perf_counter()
    if a.workers > 1:
        with mp.get_context("spawn").Pool(a.workers) as pool:
            results = pool.map(run_chain, jobs)
    else:
        results = [run_chain(j) for j in jobs]
    wall = time.perf_counter() - start

    toy = hmc.make_toy()
    weights = torch.stack([r[0] for r in results])  # [C, T, P]
    c, t, p = weights.shape
    flat = weights.reshape(c * t, p)
    f_grid = hmc.forward_samples(flat, toy.grid.double()).reshape(c, t, -1)
    f_test = hmc.forward_samples(flat, toy.x_test.double()).reshape(c, t, -1)
    log_joint = hmc.log_joint(flat, toy.x.double(), toy.y.double()).reshape(c, t)

    rhat_f, ess_f = hmc.rhat(f_grid), hmc.ess(f_grid)
    rhat_w, ess_w = hmc.rhat(weights), hmc.ess(weights)
    in_cluster, in_gap = hmc.region_masks(toy.grid)
    info = {
        "chains": c, "draws_per_chain": t, "warmup": a.warmup, "samples": a.samples, "thin": a.thin,
        "max_tree_depth": a.max_tree_depth, "seed": a.seed, "hidden": hmc.HIDDEN, "noise_std": hmc.NOISE_STD,
        "step_sizes": [r[1] for r in results], "divergences": [r[2] for r in results],
        "chain_seconds": [round(r[3], 1) for r in results], "wall_seconds": round(wall, 1), "workers": a.workers,
        "rhat_f_max": float(rhat_f.max()), "rhat_f_max_in_cluster": float(rhat_f[in_cluster].max()),
        "rhat_f_max_in_gap": float(rhat_f[in_gap].max()), "ess_f_min": float(ess_f.min()),
        "ess_f_median": float(ess_f.median()), "rhat_w_median": float(rhat_w.median()),
        "rhat_w_max": float(rhat_w.max()), "ess_w_median": float(ess_w.median()), "ess_w_min": float(ess_w.min()),
    }
    gold = hmc.Gold(weights=weights.float(), f_grid=f_grid.float(), f_test=f_test.float(), grid=toy.grid,
                    x_test=toy.x_test, log_joint=log_joint, info=info)
    digest = hmc.save_gold(gold, a.out)
    for key, value in info.items():
        print(f"{key}: {value}")
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB), sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
