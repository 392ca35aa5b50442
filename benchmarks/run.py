"""Benchmarks, printed as a table. Every ratio compares timings taken in the same run.

    python benchmarks/run.py

Timings are the best of several repeats (the machine is shared; the minimum is the least
disturbed measurement). These are measurements, never pass/fail tests.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bdl_course as bdl  # noqa: E402


def best_of(fn, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def predictive_sampling(n_points: int = 240, n_samples: int = 20) -> list[tuple[str, float, str]]:
    """S predictive samples at N inputs from a Bayesian 11-50-1 network (the lesson 02 model)."""
    bdl.seed_everything(0)
    model = bdl.models.GaussianRegressor(bdl.models.bayes_mlp(11, 50, 1, init_sigma=0.1))
    twin = bdl.models.GaussianRegressor(bdl.models.mlp(11, 50, 1))  # same shapes, deterministic
    x = torch.randn(n_points, 11)
    x_flat = torch.randn(n_samples * n_points, 11)
    with torch.no_grad():
        loop = best_of(lambda: bdl.predict.sample_predictions_loop(model, x, n_samples), 3)
        one_pass = best_of(lambda: bdl.predict.sample_predictions(model, x, n_samples), 50)
        deterministic = best_of(lambda: twin(x_flat), 50)
    what = f"{n_samples} samples x {n_points} points"
    return [
        (f"sampling, per-example per-sample loop ({what})", loop, ""),
        (f"sampling, one vectorised pass ({what})", one_pass, f"{loop / one_pass:.0f}x faster than the loop (target >= 100x)"),
        (f"deterministic forward pass over {n_samples * n_points} rows", deterministic,
         f"one pass costs {one_pass / deterministic:.1f}x this (target <= 2x)"),
    ]


def main() -> None:
    rows = predictive_sampling()
    width = max(len(r[0]) for r in rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    print(f"{'benchmark':<{width}}  {'ms':>9}  ratio")
    print("-" * (width + 60))
    for name, seconds, ratio in rows:
        print(f"{name:<{width}}  {seconds * 1e3:9.3f}  {ratio}")


if __name__ == "__main__":
    main()
