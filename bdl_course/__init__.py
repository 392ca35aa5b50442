"""Helpers for the Bayesian deep learning course.

One module per concept; lessons import them by name, e.g. ``bdl.layers.BayesLinear``:

- ``utils``        seeding, device choice, input checks
- ``data``         seeded toy data, the Wine Quality loader, splits and standardisation, images, the UCI protocol
- ``conjugate``    exact Bayesian linear regression (posterior and predictive)
- ``predictive``   the Predictive type every method returns (S components); the uncertainty decompositions
- ``likelihoods``  Gaussian / heteroskedastic / categorical observation models: per-example ELBO, predictive
- ``functional``   the math of the Bayesian layers (Gaussian KL, local reparameterisation)
- ``layers``       Bayes-by-Backprop modules (BayesLinear, BayesConv2d)
- ``bnn``          model-level utilities: total_kl, frozen, local_reparam, sample_network, pruning
- ``models``       small networks built from those layers
- ``ensembles``    deep ensembles of any network as one vectorised model, and their training
- ``train``        the ELBO with explicit KL scaling, the one fit loop
- ``predict``      one call for every method's predictive, MC dropout for any network
- ``metrics``      every metric, (input, target) order: regression, calibration, OOD, conformal, UCI scores
- ``hmc``          lesson 07's toy, network and pinned HMC samples (the gold standard)
- ``laplace``      a full-network GGN Laplace approximation
- ``plots``        the figures the lessons draw
- ``grading``      helpers the exercise tests use
"""
import os as _os
import sys as _sys

import torch as _torch

from . import (bnn, conjugate, data, ensembles, functional, grading, hmc, laplace, layers, likelihoods, metrics,
               models, plots, predict, predictive, train, utils)
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
    "bnn", "conjugate", "data", "ensembles", "functional", "grading", "hmc", "laplace", "layers", "likelihoods",
    "metrics", "models", "plots", "predict", "predictive", "train", "utils", "get_device", "seed_everything",
]
