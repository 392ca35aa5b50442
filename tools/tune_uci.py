"""Choose the red-wine settings of Lesson 05 (deep ensembles, MC dropout) on validation rows.

    python tools/tune_uci.py [--quick]

The lesson follows the UCI protocol: 20 random 90/10 splits of red wine,
``bdl.ensembles.uci_splits(x, y, n_splits=20, test_fraction=0.1, seed=0)``. The settings the
paper leaves open are chosen here without ever looking at a test row:

* inside each split's training part, a seeded 10% is held out as validation rows; the rest
  (the tuning-train part) trains the networks. This is a second, nested ``uci_splits`` call
  (seed ``100 + k`` for split k) on the outer split's training rows, so inputs and target are
  re-standardised with the tuning-train part's own statistics (standardising is affine, so this
  equals standardising the raw rows with those statistics); the outer test rows are dropped.
* every grid point (learning rate x batch size x weight decay x sigma floor) trains 20 x 5
  networks as one ``GaussianEnsemble`` (``seed_everything(0)`` per config, 40 epochs), and the
  5-member mixture of each split is scored on its validation rows: mixture NLL and RMSE of the
  mixture mean in quality points, averaged over the 20 splits.
* with the chosen lr / batch / weight decay / floor, MC dropout (20 single networks, one per
  split, 100 masks) is tried at each dropout rate.

Rule: the lowest validation NLL; configs within 0.005 of it are tied and the lowest validation
RMSE among them wins. ``--quick`` shrinks the grid, the splits and the epochs (a smoke test).
"""
from __future__ import annotations

import argparse
import itertools
import time

import torch
from tqdm.auto import tqdm

import bdl_course as bdl

E = bdl.ensembles
M, TIE = 5, 0.005  # members per split; NLL tie tolerance


def tuning_splits(n_splits: int) -> dict[str, torch.Tensor]:
    """Tuning-train / validation parts of the lesson's training parts; y_val, y_mean, y_std in quality points."""
    x, y = bdl.data.load_wine("red")
    outer = E.uci_splits(x, y, n_splits=n_splits, test_fraction=0.1, seed=0)  # test rows: never used
    inner = [E.uci_splits(outer["x_train"][k], outer["y_train"][k], n_splits=1, test_fraction=0.1, seed=100 + k)
             for k in range(n_splits)]
    cat = {key: torch.cat([part[key] for part in inner]) for key in inner[0]}  # [K, ...]
    ym, ys = outer["y_mean"], outer["y_std"]  # [K]: outer standardised units -> quality points
    return {"x_train": cat["x_train"], "y_train": cat["y_train"], "x_val": cat["x_test"],
            "y_val": ym[:, None] + ys[:, None] * cat["y_test"], "y_mean": ym + ys * cat["y_mean"],
            "y_std": ys * cat["y_std"]}


def scores(data, mu, sigma) -> tuple[float, float]:
    """Mixture components [C, K, N_val] (standardised) -> (val NLL, val RMSE) in quality points, mean over splits."""
    rmse, nll = E.uci_scores(mu, sigma, data["y_val"], data["y_mean"], data["y_std"])
    return nll.mean().item(), rmse.mean().item()


def train_and_score(data, lr, batch, wd, floor, dropout, epochs) -> tuple[float, float]:
    k = data["x_train"].shape[0]
    n_members = k if dropout else k * M  # MC dropout: one network per split
    reps = 1 if dropout else M  # member M*k + m trains on split k
    bdl.seed_everything(0)
    model = E.GaussianEnsemble(n_members, 11, 50, min_std=floor, dropout=dropout, devices=None)
    try:
        E.fit_ensemble(model, data["x_train"].repeat_interleave(reps, dim=0), data["y_train"].repeat_interleave(reps, dim=0),
                       epochs=epochs, batch_size=batch, lr=lr, weight_decay=wd, progress=False)
    except FloatingPointError:
        return float("inf"), float("inf")
    with torch.no_grad():
        if dropout:
            mu, sigma = E.sample_dropout(model, data["x_val"], n_samples=100)  # [100, K, N_val]
        else:
            mu, sigma = (t.view(k, M, -1).transpose(0, 1) for t in model(data["x_val"].repeat_interleave(M, dim=0)))
    return scores(data, mu, sigma)


def select(rows: list[dict]) -> dict:
    best = min(r["nll"] for r in rows)
    return min((r for r in rows if r["nll"] <= best + TIE), key=lambda r: r["rmse"])


def show(rows: list[dict], keys: list[str]) -> None:
    print("  ".join(f"{key:>7}" for key in keys) + f"  {'val NLL':>8}  {'val RMSE':>8}  {'s':>5}")
    for r in sorted(rows, key=lambda r: r["nll"]):
        print("  ".join(f"{r[key]:>7g}" for key in keys) + f"  {r['nll']:>8.4f}  {r['rmse']:>8.4f}  {r['s']:>5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, 3 splits, 5 epochs (smoke test)")
    args = parser.parse_args()
    if args.quick:
        grid = dict(lr=[0.01], batch=[32], wd=[0.0, 0.01], floor=[0.001])
        dropouts, n_splits, epochs = [0.1, 0.2], 3, 5
    else:
        grid = dict(lr=[0.003, 0.01, 0.02, 0.03], batch=[32, 64], wd=[0.0, 0.001, 0.01, 0.03], floor=[0.001, 0.1])
        dropouts, n_splits, epochs = [0.05, 0.1, 0.2], 20, 40
    start = time.perf_counter()
    data = tuning_splits(n_splits)
    k, n_tr, n_val = data["x_train"].shape[0], data["x_train"].shape[1], data["x_val"].shape[1]
    print(f"red wine: {k} splits, {n_tr} tuning-train + {n_val} validation rows each (test rows unused), "
          f"{epochs} epochs")

    rows = []
    for lr, batch, wd, floor in tqdm(list(itertools.product(*grid.values())), desc="ensemble configs"):
        t0 = time.perf_counter()
        nll, rmse = train_and_score(data, lr, batch, wd, floor, 0.0, epochs)
        rows.append(dict(lr=lr, batch=batch, wd=wd, floor=floor, nll=nll, rmse=rmse, s=time.perf_counter() - t0))
    print(f"\ndeep ensemble ({k} splits x {M} members), validation scores in quality points:")
    show(rows, ["lr", "batch", "wd", "floor"])
    chosen = select(rows)
    print(f"selected: lr={chosen['lr']}, batch={chosen['batch']}, wd={chosen['wd']}, floor={chosen['floor']} "
          f"(val NLL {chosen['nll']:.4f}, val RMSE {chosen['rmse']:.4f})")

    drop_rows = []
    for p in tqdm(dropouts, desc="dropout rates"):
        t0 = time.perf_counter()
        nll, rmse = train_and_score(data, chosen["lr"], chosen["batch"], chosen["wd"], chosen["floor"], p, epochs)
        drop_rows.append(dict(dropout=p, nll=nll, rmse=rmse, s=time.perf_counter() - t0))
    print(f"\nMC dropout ({k} networks, 100 masks) with the selected settings:")
    show(drop_rows, ["dropout"])
    print(f"selected dropout rate: {select(drop_rows)['dropout']}")
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
