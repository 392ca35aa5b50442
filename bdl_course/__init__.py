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
import os as _os
import sys as _sys

import torch as _torch

from . import conjugate, data, ensembles, grading, layers, metrics, models, plots, predict, train, utils
from .utils import get_device, seed_everything

__version__ = "0.1.0"  # the one place it is written (pyproject.toml reads it)

# The lessons' networks are small: one intra-op thread runs them as fast as two on an idle
# CPU, and many times faster when another process (a browser) keeps a core busy, where torch's
# spinning threads wait on each other. One thread also keeps the printed digits independent of
# the machine. OMP_NUM_THREADS, or BDL_COURSE_THREADS, set by hand wins.
if "OMP_NUM_THREADS" not in _os.environ:
    _torch.set_num_threads(int(_os.environ.get("BDL_COURSE_THREADS", "1")))

# Colab: progress bars (tqdm.auto) and ipywidgets need Colab's custom widget manager.
if "google.colab" in _sys.modules:
    from google.colab import output as _colab_output

    _colab_output.enable_custom_widget_manager()

__all__ = [
    "conjugate", "data", "ensembles", "grading", "layers", "metrics", "models", "plots", "predict",
    "train", "utils", "get_device", "seed_everything",
]
