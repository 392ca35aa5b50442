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
    """S predictive samples at N inputs from a Bayesian 11-50-1 network (the lesson 02 model):
    one vectorised pass vs a per-example, per-sample loop, and vs a deterministic network's
    forward pass over all S x N rows (the least a pass over that many rows can cost)."""
    bdl.seed_everything(0)
    model = bdl.models.GaussianRegressor(bdl.models.bayes_mlp(11, 50, 1, init_sigma=0.1))
    twin = bdl.models.GaussianRegressor(bdl.models.mlp(11, 50, 1))  # same shapes, deterministic
    rows = []
    with torch.no_grad():
        x = torch.randn(n_points, 11)
        loop = best_of(lambda: bdl.predict.sample_predictions_loop(model, x, n_samples), 3)
        one_pass = best_of(lambda: bdl.predict.sample_predictions(model, x, n_samples), 50)
        what = f"{n_samples} samples x {n_points} points"
        rows += [(f"sampling, per-example per-sample loop ({what})", loop, ""),
                 (f"sampling, one vectorised pass ({what})", one_pass,
                  f"{loop / one_pass:.0f}x faster than the loop (target >= 100x)")]
        # small batches are dominated by per-operation overhead (a BBB layer runs ~4x more ops)
        for n, s in [(n_points, n_samples), (1000, 100)]:
            x, x_flat = torch.randn(n, 11), torch.randn(n * s, 11)
            one_pass = best_of(lambda: bdl.predict.sample_predictions(model, x, s), 50)
            deterministic = best_of(lambda: twin(x_flat), 50)
            rows += [(f"sampling, one vectorised pass ({s} samples x {n} points)", one_pass,
                      f"{one_pass / deterministic:.2f}x the deterministic pass below (target <= 2x)"),
                     (f"deterministic forward pass over {s * n} rows", deterministic, "")]
    return rows


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
