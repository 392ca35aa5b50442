"""Specification of bdl_course.plots: every function draws on a given Axes (headless Agg backend)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bdl_course import metrics, plots  # noqa: E402
from bdl_course.predictive import Predictive  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_predictive_band_draws_a_mean_line_and_a_band_from_tensors(ax):
    x = torch.linspace(0, 1, 10)
    mean = torch.sin(x).requires_grad_()  # grad-tracking tensors are detached, not rejected
    plots.predictive_band(ax, x, mean, 0.1 * torch.ones(10), label="posterior", k=2.0)
    assert len(ax.lines) == 1 and len(ax.collections) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), torch.sin(x).numpy())
    assert ax.lines[0].get_label() == "posterior"
    # the band spans mean +- k*std
    y_lo, y_hi = ax.collections[0].get_paths()[0].vertices[:, 1].min(), ax.collections[0].get_paths()[0].vertices[:, 1].max()
    assert y_lo == pytest.approx(np.sin(0) - 0.2, abs=1e-6) and y_hi == pytest.approx(np.sin(1) + 0.2, abs=1e-6)


def test_training_data_draws_one_point_per_example(ax):
    plots.training_data(ax, np.arange(7.0), np.arange(7.0) ** 2)
    assert len(ax.collections) == 1 and ax.collections[0].get_offsets().shape == (7, 2)


def test_mc_error_draws_errors_and_a_one_over_sqrt_guide_on_log_axes(ax):
    j = np.array([10, 100, 1000])
    plots.mc_error(ax, j, np.array([0.3, 0.1, 0.03]))
    assert len(ax.lines) == 2
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 0.3 * np.sqrt(10 / j))
    assert ax.get_legend() is not None


def _y_values_at(ax, position):
    """Every y value drawn by a line that lies within half a box of ``position``."""
    ys = []
    for line in ax.lines:
        xs = np.asarray(line.get_xdata(), dtype=float)
        if len(xs) and np.all(np.abs(xs - position) < 0.5):
            ys.extend(np.asarray(line.get_ydata(), dtype=float))
    return np.array(ys)


@pytest.mark.parametrize("with_targets", [False, True])
def test_sample_boxplots_draws_one_box_per_test_point_at_its_quartiles(ax, with_targets):
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(50, 4, generator=g) * torch.tensor([1.0, 2.0, 0.5, 3.0]) + torch.tensor([0.0, 5.0, -2.0, 1.0])
    plots.sample_boxplots(ax, samples, targets=torch.zeros(4) if with_targets else None)
    assert len(ax.get_xticks()) == 4
    for k in range(4):  # box k sits at x = k + 1 and spans the quartiles of column k, its median inside
        drawn = _y_values_at(ax, k + 1)
        for q in (0.25, 0.5, 0.75):
            expected = np.quantile(samples[:, k].numpy(), q)
            assert np.min(np.abs(drawn - expected)) < 1e-5, (k, q)
    assert len(ax.collections) == int(with_targets)
    assert (ax.get_legend() is not None) == with_targets


def test_predictive_band_of_a_predictive_draws_its_mean_and_exact_interval(ax):
    from bdl_course.predictive import Predictive

    x = torch.linspace(0, 1, 5)
    p = Predictive.gaussian(torch.stack([x, x + 1.0]), 0.3)
    plots.predictive_band(ax, x, p, label="mixture", level=0.9)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), (x + 0.5).numpy())
    lo, hi = p.interval(0.9)
    ys = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(lo.min().item(), abs=1e-6) and ys.max() == pytest.approx(hi.max().item(), abs=1e-6)
    with pytest.raises(ValueError, match="std must be left out"):
        plots.predictive_band(ax, x, p, torch.ones(5))


# ---------------------------------------------------------------- sample_curves

def test_sample_curves_draws_one_line_per_sample_with_one_legend_entry():
    fig, ax = plt.subplots()
    try:
        x = torch.linspace(0, 1, 7)
        plots.sample_curves(ax, x, torch.randn(5, 7), label="samples")
        assert len(ax.lines) == 5
        assert [line.get_label() for line in ax.lines].count("samples") == 1
        with pytest.raises(ValueError, match="samples"):
            plots.sample_curves(ax, x, torch.randn(5, 6))
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- plots

def test_reliability_diagram_and_image_grid_draw():
    p = torch.softmax(3 * torch.randn(100, 10), -1)
    y = torch.randint(10, (100,))
    fig, axes = plt.subplots(1, 4)
    plots.reliability_diagram(axes[0], p, y, n_bins=10, label="model")
    bins = metrics.calibration_bins(p, y, 10)
    used = bins["count"] > 0
    assert len(axes[0].patches) == int(used.sum())
    heights = [patch.get_height() for patch in axes[0].patches]  # each bar is its bin's accuracy
    np.testing.assert_allclose(heights, bins["accuracy"][used].numpy(), rtol=1e-6)
    plots.reliability_diagram(axes[0], Predictive.categorical(p.log()[None]), y, n_bins=10)
    assert len(axes[0].patches) == 2 * int(used.sum())
    plots.image_grid(axes[1:], torch.rand(2, 1, 8, 8), ["a", "b"])
    assert axes[1].get_title() == "a" and len(axes[1].images) == 1 and not axes[3].axison
    with pytest.raises(ValueError, match="images"):
        plots.image_grid(axes[1:], torch.rand(2, 8, 8))
    plt.close(fig)


def test_shade_regions_draws_one_band_per_interval_with_one_legend_entry(ax):
    plots.shade_regions(ax, [(-1, 0.5), (2, 3)])
    assert len(ax.patches) == 2
    spans = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]  # x in data units
    assert spans == [(-1.0, 0.5), (2.0, 3.0)]
    assert ax.get_legend_handles_labels()[1] == ["no data"]
    with pytest.raises(ValueError, match="a < b"):
        plots.shade_regions(ax, [(1, 0)])
