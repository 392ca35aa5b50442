"""Helpers for the Bayesian deep learning course.

One module per concept; lessons import them by name, e.g. ``bdl.layers.BayesLinear``:

- ``utils``      seeding, device choice, input checks
- ``data``       seeded toy data, the Wine Quality loader, splits and standardisation
- ``conjugate``  exact Bayesian linear regression (posterior and predictive)
- ``layers``     Bayes-by-Backprop layers and the closed-form Gaussian KL
- ``models``     small networks built from those layers
- ``ensembles``  deep ensembles as one vectorised model; the uniform Gaussian mixture
- ``train``      the ELBO with explicit KL scaling, the fit loop
- ``predict``    batched predictive sampling, logmeanexp, summaries
- ``metrics``    RMSE, Gaussian NLL
- ``plots``      the figures the lessons draw
- ``grading``    helpers the exercise tests use
"""
from . import conjugate, data, ensembles, grading, layers, metrics, models, plots, predict, train, utils
from .utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "conjugate", "data", "ensembles", "grading", "layers", "metrics", "models", "plots", "predict",
    "train", "utils", "get_device", "seed_everything",
]
