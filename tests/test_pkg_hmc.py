"""bdl_course.hmc: the Pyro model, the diagnostics, and the pinned HMC samples of lesson 07."""
import math
import os

import pytest
import torch

from bdl_course import hmc
from bdl_course.data import DataError


@pytest.fixture(scope="module")
def toy():
    return hmc.make_toy()


@pytest.fixture(scope="module")
def gold():
    return hmc.load_gold()


def test_pyro_model_is_the_log_joint(toy):
    pyro = pytest.importorskip("pyro")
    g = torch.Generator().manual_seed(0)
    x, y = toy.x.double(), toy.y.double()
    for _ in range(3):
        w = torch.randn(hmc.num_params(), generator=g, dtype=torch.float64)
        trace = pyro.poutine.trace(pyro.condition(hmc.pyro_model, data={"w": w})).get_trace(x, y)
        assert abs(float(trace.log_prob_sum()) - float(hmc.log_joint(w[None], x, y)[0])) < 1e-8
    # the fast potential NUTS uses is -log_joint up to a constant
    w1, w2 = torch.randn(2, hmc.num_params(), generator=g, dtype=torch.float64)
    lj = hmc.log_joint(torch.stack([w1, w2]), x, y)
    assert abs(float(hmc.potential(w1, x, y) - hmc.potential(w2, x, y)) + float(lj[0] - lj[1])) < 1e-8


def test_flat_weights_are_the_network_parameters(toy):
    torch.manual_seed(0)
    net = hmc.network()
    w = hmc.flatten(net)
    assert w.shape == (hmc.num_params(),) == (3 * hmc.HIDDEN + 1,)
    torch.testing.assert_close(hmc.forward_samples(w[None], toy.grid)[0], net(toy.grid[:, None])[:, 0].detach())
    with pytest.raises(ValueError, match="last dimension"):
        hmc.unflatten(torch.zeros(5))


def test_toy_has_gaps_and_held_out_points_in_the_clusters(toy):
    in_cluster, in_gap = hmc.region_masks(toy.x)
    assert in_cluster.all() and not in_gap.any() and len(toy.x) == hmc.TOY["n"]
    assert hmc.region_masks(toy.x_test)[0].all()
    grid_cluster, grid_gap = hmc.region_masks(toy.grid)
    assert grid_gap.sum() > 20 and grid_cluster.sum() > 20 and not (grid_cluster & grid_gap).any()


def test_rhat_and_ess_against_known_chains():
    g = torch.Generator().manual_seed(1)
    iid = torch.randn(4, 2000, generator=g, dtype=torch.float64)
    assert abs(float(hmc.rhat(iid)) - 1) < 0.01
    assert abs(float(hmc.ess(iid)) / 8000 - 1) < 0.15
    # AR(1) with phi = 0.8: ESS = C T (1 - phi) / (1 + phi)
    phi, ar = 0.8, torch.zeros(4, 4000, dtype=torch.float64)
    noise = torch.randn(4, 4000, generator=g, dtype=torch.float64)
    for t in range(1, 4000):
        ar[:, t] = phi * ar[:, t - 1] + noise[:, t]
    expected = 16000 * (1 - phi) / (1 + phi)
    assert abs(float(hmc.ess(ar)) / expected - 1) < 0.2
    # chains stuck in different places, and chains that drift: both flagged
    assert float(hmc.rhat(iid + torch.tensor([[0.0], [0.0], [0.0], [2.0]], dtype=torch.float64))) > 1.1
    drift = iid[:, :200] + torch.linspace(0, 3, 200, dtype=torch.float64)
    assert float(hmc.rhat(drift)) > 1.1  # only the split into halves sees this
    assert hmc.rhat(torch.randn(3, 10, 7)).shape == (7,)


def test_w1_per_input():
    a = torch.tensor([[2.0, 5.0], [0.0, 4.0], [1.0, 6.0]])
    torch.testing.assert_close(hmc.wasserstein_per_input(a, a + 1), torch.ones(2))
    torch.testing.assert_close(hmc.wasserstein_per_input(a, a.flip(0)), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        hmc.wasserstein_per_input(a, a[:2])


def test_pinned_samples_belong_to_this_model_and_data(gold, toy):
    c, t, p = gold.weights.shape
    assert c >= 4 and t >= 100 and p == hmc.num_params()
    torch.testing.assert_close(gold.grid, toy.grid)
    torch.testing.assert_close(gold.x_test, toy.x_test)
    flat = gold.samples()
    torch.testing.assert_close(gold.f_grid.reshape(c * t, -1), hmc.forward_samples(flat, toy.grid), atol=1e-4, rtol=0)
    torch.testing.assert_close(gold.f_test.reshape(c * t, -1), hmc.forward_samples(flat, toy.x_test), atol=1e-4, rtol=0)
    # a silent change to the prior, the noise, the network or the data changes the log joint of every draw
    recomputed = hmc.log_joint(flat.double(), toy.x.double(), toy.y.double()).reshape(c, t)
    torch.testing.assert_close(recomputed, gold.log_joint, atol=0.05, rtol=0)  # float32 weights
    assert gold.info["hidden"] == hmc.HIDDEN and gold.info["noise_std"] == hmc.NOISE_STD
    assert os.path.getsize(hmc.gold_path()) < 5e6


def test_a_short_chain_agrees_with_the_pinned_samples(gold, toy):
    """Rerun NUTS briefly from one pinned draw; its predictive summary must match within Monte Carlo error."""
    pyro = pytest.importorskip("pyro")
    from pyro.infer import MCMC, NUTS

    x, y = toy.x.double(), toy.y.double()
    pyro.set_rng_seed(123)
    kernel = NUTS(potential_fn=lambda p: hmc.potential(p["w"], x, y), max_tree_depth=6)
    mcmc = MCMC(kernel, num_samples=150, warmup_steps=60, initial_params={"w": gold.weights[0, -1].double()},
                disable_progbar=True)
    mcmc.run()
    short = hmc.forward_samples(mcmc.get_samples()["w"], toy.grid.double())  # [150, G]
    pinned = gold.f_grid.reshape(-1, toy.grid.shape[0]).double()
    in_cluster, in_gap = hmc.region_masks(toy.grid)
    for mask, what in [(in_cluster, "in the clusters"), (in_gap, "in the gaps")]:
        s_short, s_pinned = short[:, mask].mean(1), pinned[:, mask].mean(1)  # [S]: mean of f over the region
        ess_short = float(hmc.ess(s_short[None]).clamp(min=10, max=75))  # at most half the draws: NUTS's ESS can exceed T
        ess_pinned = float(hmc.ess(s_pinned.reshape(gold.f_grid.shape[0], -1)))
        se = math.sqrt(float(s_pinned.var()) * (1 / ess_short + 1 / ess_pinned))
        diff = abs(float(s_short.mean() - s_pinned.mean()))
        assert diff < 4 * se + 1e-3, f"{what}: short chain {float(s_short.mean()):.4f}, pinned {float(s_pinned.mean()):.4f}, 4 se {4 * se:.4f}"
    # and the spread: the posterior std of f in the clusters agrees within its Monte Carlo error (~7% at
    # ESS 100; a noise std of 0.3 instead of 0.2 gives a ratio of 1.42, a shift of y by 0.05 moves the means by 6 se)
    ratio = float(short[:, in_cluster].std(0).mean() / pinned[:, in_cluster].std(0).mean())
    assert 0.75 < ratio < 1.33, ratio


def test_a_corrupt_truncated_or_missing_file_is_refused(tmp_path):
    data = hmc.gold_path().read_bytes()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    for name, content in [("corrupt.npz", bytes(flipped)), ("truncated.npz", data[: len(data) // 2])]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match="failed its checksum"):
            hmc.load_gold(path)
    with pytest.raises(DataError, match="missing"):
        hmc.load_gold(tmp_path / "absent.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable"):
        hmc.load_gold(tmp_path / "garbage.npz", sha256=None)


def test_save_is_atomic_and_round_trips(gold, tmp_path, monkeypatch):
    path = tmp_path / "out" / "gold.npz"
    digest = hmc.save_gold(gold, path)
    again = hmc.load_gold(path, sha256=digest)
    torch.testing.assert_close(again.weights, gold.weights)
    assert again.info == gold.info
    assert sorted(p.name for p in path.parent.iterdir()) == ["gold.npz"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644, "readable by every user, the grader's sandbox included"

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(hmc.os, "replace", broken_replace)
    with pytest.raises(OSError):
        hmc.save_gold(gold, tmp_path / "out" / "other.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["gold.npz"]


def test_against_reference_draws_the_reference_interval_dashed(gold, toy):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bdl_course.plots import against_reference
    from bdl_course.predictive import Predictive

    reference = Predictive.gaussian(gold.f_grid.reshape(-1, toy.grid.shape[0]), hmc.NOISE_STD)
    method = Predictive.gaussian(gold.f_grid[0, :1], hmc.NOISE_STD)  # one draw: a point estimate
    fig, ax = plt.subplots()
    against_reference(ax, toy.grid, method, reference, label="one draw")
    lines = {line.get_label(): line for line in ax.get_lines()}
    lo, hi = reference.interval(0.95)
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2 and "HMC 95% band" in lines
    assert torch.allclose(torch.as_tensor(dashed[0].get_ydata()), lo, atol=1e-5)
    assert torch.allclose(torch.as_tensor(dashed[1].get_ydata()), hi, atol=1e-5)
    assert torch.allclose(torch.as_tensor(lines["one draw"].get_ydata()), method.mean(), atol=1e-6)
    plt.close(fig)


def test_a_missing_file_is_downloaded_and_verified(tmp_path, monkeypatch):
    """A pip-installed course (Colab) has no data/ folder: the loader downloads the pinned file."""
    source = tmp_path / "remote" / hmc.GOLD_FILE
    source.parent.mkdir()
    source.write_bytes(hmc.gold_path().read_bytes())
    local = tmp_path / "cache"
    monkeypatch.delenv("BDL_COURSE_DATA", raising=False)
    monkeypatch.setattr(hmc, "gold_path", lambda data_dir=None: local / hmc.GOLD_FILE)
    gold = hmc.load_gold(url=source.as_uri())
    assert (local / hmc.GOLD_FILE).is_file() and gold.weights.shape[-1] == hmc.num_params()
    (local / hmc.GOLD_FILE).unlink()
    source.write_bytes(source.read_bytes()[:1000])  # a truncated download is refused and not kept
    with pytest.raises(DataError, match="checksum"):
        hmc.load_gold(url=source.as_uri())
    assert not (local / hmc.GOLD_FILE).exists()
    with pytest.raises(DataError, match="missing"):
        monkeypatch.setattr(hmc, "gold_url", lambda: None)
        hmc.load_gold()


def test_gold_url_names_the_installed_commit(monkeypatch):
    from importlib import metadata

    class Dist:
        def read_text(self, name):
            return ('{"url": "https://github.com/owner/course.git", '
                    '"vcs_info": {"vcs": "git", "requested_revision": "v0.1.0", "commit_id": "abc123"}}')
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    assert hmc.gold_url() == "https://raw.githubusercontent.com/owner/course/abc123/data/hmc_gold.npz"
    Dist.read_text = lambda self, name: None  # an editable or local install: no URL
    assert hmc.gold_url() is None
