"""Choose the red-wine settings of Lesson 05 (deep ensemble, single network, MC dropout) on validation rows.

    python tools/tune_uci.py [--quick] [--out tools/tune_uci.csv]

The lesson follows the UCI protocol: 20 random 90/10 splits of red wine,
``bdl.ensembles.uci_splits(x, y, n_splits=20, test_fraction=0.1, seed=0)``. The settings the
paper leaves open are chosen here without ever looking at a test row:

* inside each split's training part, a seeded 10% is held out as validation rows; the rest
  (the tuning-train part) trains the networks. This is a second, nested ``uci_splits`` call
  (seed ``100 + k`` for split k) on the outer split's training rows, so inputs and target are
  re-standardised with the tuning-train part's own statistics; the outer test rows are dropped.
* every grid point trains, as one ``GaussianEnsemble``, ``SEEDS`` x 20 splits x 5 networks
  (``seed_everything(0)`` once per grid point; the seeds are independent repetitions of the
  whole training: own initialisations, own minibatch orders), 40 epochs each.
  Each grid point is scored three ways on the validation rows, averaged over splits and seeds:
  the 5-member mixture ("ensemble"), each network on its own ("single": one network's
  predictive, the average of its 5 x 20 x SEEDS scores), and the number of failed networks.
* MC dropout (one network per split and seed, 100 masks) has its own grid: the dropout rate p
  and the prior length-scale l, tied to the weight decay as in Gal & Ghahramani (2016):
  ``weight_decay = l^2 (1 - p) / N`` for N training rows (Adam's weight decay adds
  ``weight_decay * w`` to the gradient of the mean NLL, i.e. the term ``l^2 (1-p) / (2N) ||w||^2``
  of their objective), with the learning rate and batch size of its own small grid.

A network **fails** when its final training NLL (standardised units) is worse than that of the
constant predictor N(0, 1) of the standardised target, 0.5 log(2 pi) + 0.5 = 1.419 nats: it has
learned less than the training mean and std. A mixture NLL hides such a member (logsumexp lets
the good members cover for it) while the mixture *mean* does not, so a grid point with any failed
network, under any seed, is never selected.

Rule, for each method separately: among grid points without failures, the lowest mean validation
NLL wins; grid points within ``TIE`` = 0.01 nats of it (about the seed-to-seed standard deviation
of a grid point's mean score, printed as ``sd``) are tied, and the tie goes to the most
conservative setting: the lowest learning rate, then the largest batch, then the largest weight
decay (or prior length-scale), then the largest sigma floor, then the lowest dropout rate.

The table of every grid point goes to ``--out`` (default ``tools/tune_uci.csv``, committed; the
``selected`` column marks each method's choice) and the lesson's settings are checked against it
by ``tests/test_tune_uci.py``. ``--quick`` shrinks the grid, the splits and the epochs (a smoke
test; it writes nothing unless ``--out`` is given).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import bdl_course as bdl

E = bdl.ensembles
ROOT = Path(__file__).resolve().parent.parent
M, SEEDS, TIE = 5, 3, 0.01  # members per split; repetitions of each grid point; NLL tie margin (nats)
FAILED_NLL = 0.5 * math.log(2 * math.pi) + 0.5  # the constant predictor N(0, 1) of a standardised target
DROPOUT_SAMPLES = 100

GRID = dict(lr=[0.003, 0.01, 0.02], batch=[32, 64], wd=[0.0, 1e-4, 1e-3, 1e-2], floor=[0.001, 0.1])
DROPOUT_GRID = dict(lr=[0.003, 0.01], batch=[32, 64], p=[0.05, 0.1, 0.2], length=[0.3, 1.0, 3.0], floor=[0.001])
QUICK = (dict(lr=[0.01], batch=[64], wd=[0.0, 1e-3], floor=[0.001]),
         dict(lr=[0.01], batch=[64], p=[0.1], length=[1.0], floor=[0.001]))
COLUMNS = ["method", "lr", "batch", "wd", "floor", "p", "length", "val_nll", "sd", "val_rmse", "failed",
           "networks", "selected"]


def tuning_splits(n_splits: int) -> dict[str, torch.Tensor]:
    """Tuning-train / validation parts of the lesson's training parts; y_val, y_mean, y_std in quality points."""
    x, y = bdl.data.load_wine("red")
    outer = bdl.data.uci_splits(x, y, n_splits=n_splits, test_fraction=0.1, seed=0)  # test rows: never used
    inner = [bdl.data.uci_splits(outer["x_train"][k], outer["y_train"][k], n_splits=1, test_fraction=0.1, seed=100 + k)
             for k in range(n_splits)]
    cat = {key: torch.cat([part[key] for part in inner]) for key in inner[0]}  # [K, ...]
    ym, ys = outer["y_mean"], outer["y_std"]  # [K]: outer standardised units -> quality points
    return {"x_train": cat["x_train"], "y_train": cat["y_train"], "x_val": cat["x_test"],
            "y_val": ym[:, None] + ys[:, None] * cat["y_test"], "y_mean": ym + ys * cat["y_mean"],
            "y_std": ys * cat["y_std"]}


def fit(data, reps: int, lr, batch, wd, floor, dropout, epochs):
    """Train SEEDS x K x reps networks (member (r*K + k)*reps + m: seed r, split k); -> (model, failed [SEEDS, K, reps])."""
    k = data["x_train"].shape[0]
    n = SEEDS * k * reps
    bdl.seed_everything(0)
    model = E.GaussianEnsemble(n, 11, 50, min_std=floor, dropout=dropout, devices=None)
    x = data["x_train"].repeat_interleave(reps, dim=0).repeat(SEEDS, 1, 1)
    y = data["y_train"].repeat_interleave(reps, dim=0).repeat(SEEDS, 1)
    try:
        history = E.fit_ensemble(model, x, y, epochs=epochs, batch_size=batch, lr=lr, weight_decay=wd, progress=False)
    except FloatingPointError:
        return None, None
    return model, (history[-1] > FAILED_NLL).view(SEEDS, k, reps)


def score(data, p):
    """A Gaussian predictive of per-input shape [..., SEEDS * K, N_val] (standardised; seed-major)
    -> (NLL, RMSE), each [..., SEEDS], in quality points, mean over splits."""
    k = data["y_val"].shape[0]
    s = p.shape[-2] // k
    rmse, nll = bdl.metrics.uci_scores(p, data["y_val"].repeat(s, 1), data["y_mean"].repeat(s), data["y_std"].repeat(s))
    return nll.view(*nll.shape[:-1], s, k).mean(-1), rmse.view(*rmse.shape[:-1], s, k).mean(-1)


def summary(nll: torch.Tensor, rmse: torch.Tensor) -> dict:
    """Per-seed scores [SEEDS] -> mean, seed-to-seed std."""
    return dict(val_nll=nll.mean().item(), sd=nll.std().item() if nll.numel() > 1 else 0.0, val_rmse=rmse.mean().item())


def ensemble_rows(data, lr, batch, wd, floor, epochs) -> list[dict]:
    """One grid point, scored as a 5-member ensemble and as single networks."""
    k = data["x_train"].shape[0]
    base = dict(lr=lr, batch=batch, wd=wd, floor=floor, p=0.0, length="")
    model, failed = fit(data, M, lr, batch, wd, floor, 0.0, epochs)
    if model is None:
        return [dict(base, method=m, val_nll=math.inf, sd=0.0, val_rmse=math.inf, failed=SEEDS * k * M,
                     networks=SEEDS * k * M) for m in ("ensemble", "single")]
    with torch.no_grad():  # network group r*K + k (its M members) predicts split k: M components, [SEEDS*K, N_val]
        p = model.predictive(data["x_val"].repeat(SEEDS, 1, 1))
    n_failed = int(failed.sum())
    ens = summary(*score(data, p))
    alone = bdl.predictive.Predictive.gaussian(p.loc[None], p.scale[None])  # 1 component, [M, SEEDS*K, N_val]
    nll_1, rmse_1 = score(data, alone)  # each network alone: [M, SEEDS]
    single = summary(nll_1.mean(0), rmse_1.mean(0))
    return [dict(base, method="ensemble", failed=n_failed, networks=SEEDS * k * M, **ens),
            dict(base, method="single", failed=n_failed, networks=SEEDS * k * M, **single)]


def dropout_row(data, lr, batch, p, length, floor, epochs) -> dict:
    k, n = data["x_train"].shape[0], data["x_train"].shape[1]
    wd = length ** 2 * (1 - p) / n
    row = dict(method="mc_dropout", lr=lr, batch=batch, wd=wd, floor=floor, p=p, length=length, networks=SEEDS * k)
    model, failed = fit(data, 1, lr, batch, wd, floor, p, epochs)
    if model is None:
        return dict(row, val_nll=math.inf, sd=0.0, val_rmse=math.inf, failed=SEEDS * k)
    with torch.no_grad():  # DROPOUT_SAMPLES masks per network: the components, [SEEDS*K, N_val]
        p = model.predictive(data["x_val"].repeat(SEEDS, 1, 1), n_samples=DROPOUT_SAMPLES)
    return dict(row, failed=int(failed.sum()), **summary(*score(data, p)))


def conservative(row: dict) -> tuple:
    """Sort key of the tie rule: lowest lr, largest batch, largest weight decay / length-scale, largest floor, lowest p."""
    spread = row["length"] if row["method"] == "mc_dropout" else row["wd"]
    return (row["lr"], -row["batch"], -spread, -row["floor"], row["p"])


def select(rows: list[dict]) -> dict:
    """The stated rule: no failed network; lowest validation NLL; ties within TIE to the most conservative."""
    ok = [r for r in rows if r["failed"] == 0 and math.isfinite(r["val_nll"])]
    if not ok:
        raise RuntimeError("every grid point has a failed network; widen the grid")
    best = min(r["val_nll"] for r in ok)
    return min((r for r in ok if r["val_nll"] <= best + TIE), key=conservative)


def show(rows: list[dict]) -> None:
    keys = ["lr", "batch", "wd", "floor", "p", "length"]
    print("  ".join(f"{key:>7}" for key in keys) + f"  {'val NLL':>8}  {'sd':>6}  {'val RMSE':>8}  {'failed':>6}")
    for r in sorted(rows, key=lambda r: r["val_nll"]):
        mark = "  <- selected" if r.get("selected") else ""
        print("  ".join(f"{r[key]:>7.4g}" if isinstance(r[key], float) else f"{r[key]:>7}" for key in keys)
              + f"  {r['val_nll']:>8.4f}  {r['sd']:>6.4f}  {r['val_rmse']:>8.4f}  {r['failed']:>6}{mark}")


def read_table(path: str | Path = ROOT / "tools" / "tune_uci.csv") -> dict[str, dict]:
    """The committed table's choice per method: {"ensemble": {...}, "single": {...}, "mc_dropout": {...}}."""
    chosen = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["selected"] == "1":
                chosen[row["method"]] = row
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, 3 splits, 5 epochs (smoke test)")
    parser.add_argument("--out", default=None, help="CSV of every grid point (default tools/tune_uci.csv; none with --quick)")
    args = parser.parse_args()
    grid, drop_grid = QUICK if args.quick else (GRID, DROPOUT_GRID)
    n_splits, epochs = (3, 5) if args.quick else (20, 40)
    out = args.out or (None if args.quick else ROOT / "tools" / "tune_uci.csv")
    start = time.perf_counter()
    data = tuning_splits(n_splits)
    k, n_tr, n_val = data["x_train"].shape[0], data["x_train"].shape[1], data["x_val"].shape[1]
    print(f"red wine: {k} splits, {n_tr} tuning-train + {n_val} validation rows each (test rows unused), "
          f"{epochs} epochs, {SEEDS} seeds per grid point")

    rows = []
    for lr, batch, wd, floor in tqdm(list(itertools.product(*grid.values())), desc="ensemble grid"):
        rows += ensemble_rows(data, lr, batch, wd, floor, epochs)
    for lr, batch, p, length, floor in tqdm(list(itertools.product(*drop_grid.values())), desc="MC dropout grid"):
        rows.append(dropout_row(data, lr, batch, p, length, floor, epochs))
    for method in ("ensemble", "single", "mc_dropout"):
        part = [r for r in rows if r["method"] == method]
        chosen = select(part)
        for r in part:
            r["selected"] = int(r is chosen)
        print(f"\n{method}: validation scores in quality points (mean over {k} splits and {SEEDS} seeds; "
              f"sd: seed-to-seed std of the mean NLL)")
        show(part)
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")
    if out:
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({c: (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in COLUMNS})
        print(f"table written to {out}")


if __name__ == "__main__":
    main()
