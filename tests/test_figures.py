"""Figures (v1rsa.figures): each plotting function draws what it should on small synthetic data,
and the figure rules draw every figure of the smoke run and an HTML report."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import AxesImage
from PIL import Image
from scipy.stats import binned_statistic

from conftest import snakemake
from v1rsa import decoding, simulate, tuning
from v1rsa.figures import data, decoders, encoding, normative, rdms, representations, rsa, style

# ------------------------------------------------------------------------------------------------
# Synthetic data
# ------------------------------------------------------------------------------------------------


def tuned_trials(n_trials=600, n_tuned=30, n_noise=30, seed=0):
    """Single trials of von Mises-tuned neurons (preferred 0°, 12°, …) and of untuned ones."""
    rng = np.random.default_rng(seed)
    orientation = rng.uniform(0, 360, n_trials)
    preferred = np.arange(n_tuned) * 360.0 / n_tuned
    tuned = np.exp(4.0 * (np.cos(np.deg2rad(orientation[:, None] - preferred)) - 1))
    response = np.concatenate([tuned, np.zeros((n_trials, n_noise))], axis=1)
    response += 0.2 * rng.normal(size=response.shape)
    train = np.arange(n_trials) % 4 != 0
    return response, orientation, train, preferred


def ring_responses(n_conditions=30, n_units=50, seed=0):
    """Responses tracing a ring as orientation goes round: neighbours stay neighbours."""
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 2 * np.pi, n_conditions, endpoint=False)
    basis = rng.normal(size=(2, n_units))
    return np.column_stack([np.cos(angle), np.sin(angle)]) @ basis * 5 + 0.01 * rng.normal(
        size=(n_conditions, n_units))


def rsa_rows(seeds=(2,)):
    """An rsa.tsv look-alike: two networks, one comparator."""
    rows = []
    for seed in seeds:
        for network, layer, value in [("normative", "pool", 0.7), ("normative", "fc", 0.5),
                                      ("encoder", "fc", 0.9)]:
            value += 0.01 * seed
            rows.append({"network": network, "seed": seed, "layer": layer,
                         "comparator": "pearson", "value": value,
                         "ci_low": value - 0.1, "ci_high": value + 0.05, "q": 0.004,
                         "noise_ceiling_lower": 0.8, "noise_ceiling_upper": 0.95})
    return pd.DataFrame(rows)


def axes_of(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def images_of(fig):
    return [artist for ax in axes_of(fig) for artist in ax.get_images()]


# ------------------------------------------------------------------------------------------------
# style
# ------------------------------------------------------------------------------------------------


def test_matplotlib_draws_with_the_agg_backend():
    assert matplotlib.get_backend().lower() == "agg"


@pytest.mark.parametrize("vector", ["svg", "pdf"])
def test_save_writes_a_png_of_the_figure_size_and_a_vector_copy(tmp_path, vector):
    fig, axes = style.figure(2.0)
    axes[0, 0].plot([0, 1], [0, 1])
    style.save(fig, tmp_path / "f.png", tmp_path / f"f.{vector}", dpi=100)
    with Image.open(tmp_path / "f.png") as image:
        assert image.format == "PNG"
        assert image.size == (round(style.WIDTH_IN * 100), 200)
    head = (tmp_path / f"f.{vector}").read_bytes()[:200]
    assert head.startswith(b"%PDF") if vector == "pdf" else b"<svg" in head
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.png", f"f.{vector}"])


def test_save_refuses_a_vector_copy_of_unknown_format(tmp_path):
    fig, _ = style.figure(2.0)
    with pytest.raises(ValueError, match="vector copy"):
        style.save(fig, tmp_path / "f.png", tmp_path / "f.eps")


def test_save_figures_names_a_figure_without_a_path(tmp_path):
    fig, _ = style.figure(2.0)
    with pytest.raises(KeyError, match="'raster'"):
        style.save_figures({"raster": fig}, {"tuning": str(tmp_path / "t.png")})


def test_reruns_write_identical_files(tmp_path):
    for name in ("a", "b"):
        fig, axes = style.figure(2.0)
        axes[0, 0].plot([0, 1], [1, 0], label="line")
        axes[0, 0].legend()
        style.save(fig, tmp_path / f"{name}.png", tmp_path / f"{name}.svg")
    for suffix in ("png", "svg"):
        assert (tmp_path / f"a.{suffix}").read_bytes() == (tmp_path / f"b.{suffix}").read_bytes()


def test_an_svg_does_not_depend_on_invisible_float_noise_in_the_layout(tmp_path):
    # matplotlib names clip paths after a hash of their float coordinates: two layouts 1e-13
    # apart drew the same picture under other names (seen in a group figure of two reruns)
    for name, width in (("a", 0.8), ("b", 0.8 + 1e-13)):
        fig = style.Figure(figsize=(3.0, 2.0))
        ax = fig.add_axes((0.1, 0.1, width, 0.8))
        ax.plot([0, 1], [1, 0])
        ax.bar([0, 1], [0.5, 0.2])
        style.save(fig, tmp_path / f"{name}.png", tmp_path / f"{name}.svg")
    svg = (tmp_path / "a.svg").read_text()
    assert '<clipPath id="clip0">' in svg and 'clip-path="url(#clip0)"' in svg
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_log_axis_labels_are_plain_numbers():
    fig, axes = style.figure(2.0)
    ax = axes[0, 0]
    ax.plot([1, 2], [0.3, 3.0])
    style.log_axis(ax, "y")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    labels = [label for label in labels if label]
    assert "1" in labels and all("e" not in label and "×" not in label for label in labels)


def test_grating_colours_are_cyclic_over_one_period():
    norm = style.grating_norm([-87.0, 0.0, 87.0])
    assert (norm.vmin, norm.vmax) == (-90.0, 90.0)
    cmap = matplotlib.colormaps[style.ORIENTATION_CMAP]
    np.testing.assert_allclose(cmap(norm(-90.0)), cmap(norm(90.0)), atol=0.02)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def test_raster_sorts_neurons_by_preferred_orientation():
    rng = np.random.default_rng(1)
    response = rng.normal(size=(12, 5))
    orientation = np.arange(12) * 30.0 + 15.0
    preferred = np.array([200.0, 10.0, 350.0, 90.0, 180.0])
    fig, axes = style.figure(3.0)
    image = data.plot_response_raster(axes[0, 0], response, orientation[::-1], preferred)
    shown = image.get_array()
    # rows: neurons by preferred orientation; columns: orientation ascending
    np.testing.assert_allclose(shown, response[::-1][:, np.argsort(preferred)].T)
    low, high = image.get_clim()
    assert low == -high > -np.inf
    assert "(°)" in axes[0, 0].get_xlabel()


def test_example_neurons_are_tuned_and_spread_over_the_circle():
    # 120 tuned neurons 3° apart are the top 10 % of SNR among 1200
    response, orientation, train, preferred = tuned_trials(n_tuned=120, n_noise=1080)
    snr = tuning.tuning_snr(response, orientation, train)
    chosen = data.select_example_neurons(snr, tuning.preferred_orientation(response, orientation),
                                         6)
    assert len(set(chosen)) == 6
    assert np.all(chosen < 120)  # never an untuned neuron
    targets = np.arange(6) * 60.0
    distance = np.abs((preferred[chosen] - targets + 180) % 360 - 180)
    assert distance.max() <= 6.0


def test_binned_mean_and_sd_equal_scipy():
    rng = np.random.default_rng(2)
    orientation, values = rng.uniform(0, 360, 500), rng.normal(size=500)
    centres, mean, sd = data.binned_mean_sd(orientation, values, 30.0)
    edges = np.arange(0, 361, 30.0)
    np.testing.assert_allclose(mean, binned_statistic(orientation, values, "mean", edges)[0])
    np.testing.assert_allclose(sd, binned_statistic(orientation, values, "std", edges)[0])
    np.testing.assert_allclose(centres, edges[:-1] + 15.0)


@pytest.fixture(scope="module")
def small_truth():
    _, truth = simulate.simulate_recording(128, 300, seed=0)
    return truth


def test_true_curves_are_mapped_onto_the_data_by_least_squares(small_truth):
    neuron_ids = small_truth["neuron"].values[[3, 40, 77]]
    orientation = small_truth["orientation"].values
    expected = simulate.expected_response(small_truth.sel(neuron=neuron_ids), orientation)
    scale, offset = np.array([2.0, 0.5, 3.0]), np.array([-1.0, 0.2, 0.0])
    noise = 0.01 * np.random.default_rng(3).normal(size=expected.shape)
    zscored = expected * scale + offset + noise
    grid = np.arange(0.0, 360.0, 5.0)
    curves, maps = data.matched_true_curves(small_truth, neuron_ids, zscored, orientation, grid)
    np.testing.assert_allclose(maps, np.column_stack([scale, offset]), rtol=0.05, atol=0.02)
    at_grid = simulate.expected_response(small_truth.sel(neuron=neuron_ids), grid)
    np.testing.assert_allclose(curves, at_grid * maps[:, 0] + maps[:, 1])


def test_tuning_example_draws_trials_band_mean_and_truth():
    response, orientation, _, _ = tuned_trials(n_trials=200)
    fig, axes = style.figure(3.0)
    ax = axes[0, 0]
    grid = np.arange(360.0)
    handles, labels = data.plot_tuning_example(ax, orientation, response[:, 0], grid_deg=grid,
                                               true_curve=np.cos(np.deg2rad(grid)))
    assert len(ax.lines) == 2  # bin means and the true curve
    assert ax.lines[1].get_linestyle() == "--"
    assert len(labels) == 3 and "affine" in labels[2]
    assert ax.get_ylabel() == "response (z-score)" and "(°)" in ax.get_xlabel()


def test_data_figures_without_truth_draw_no_true_curve():
    response, orientation, train, _ = tuned_trials(n_trials=400, n_tuned=20, n_noise=10)
    trials = xr.Dataset(
        {"response": (("trial", "neuron"), response.astype(np.float32))},
        coords={"orientation": ("trial", orientation),
                "split": ("trial", np.where(train, "train", "test")),
                "neuron": np.arange(response.shape[1])})
    conditions = xr.Dataset(
        {"response": (("condition", "neuron"), response[:36])},
        coords={"orientation": ("condition", np.arange(36) * 10.0 + 5)})
    figures = data.data_figures(trials, conditions, tuning.neuron_tuning(trials), None,
                                n_examples=4)
    assert set(figures) == {"raster", "tuning"}
    panels = [ax for ax in axes_of(figures["tuning"]) if ax.get_visible()]
    assert len(panels) == 4
    assert all(len(ax.lines) == 1 for ax in panels)  # the bin means only


# ------------------------------------------------------------------------------------------------
# decoders
# ------------------------------------------------------------------------------------------------


def test_signed_error_is_the_circular_error_with_a_sign():
    rng = np.random.default_rng(4)
    true, predicted = rng.uniform(0, 360, 100), rng.uniform(-30, 400, 100)
    signed = decoders.signed_error_deg(predicted, true)
    np.testing.assert_allclose(np.abs(signed), decoding.circular_error_deg(predicted, true))
    assert np.all((signed >= -180) & (signed < 180))
    assert decoders.signed_error_deg(350.0, 10.0) == -20.0


def test_decoded_vs_true_has_the_identity_line_and_every_stimulus():
    true = np.linspace(0, 350, 36)
    fig, axes = style.figure(3.0, 1, 2)
    decoders.plot_decoded_vs_true(axes[0, 0], true, true + 5)
    decoders.plot_error_vs_true(axes[0, 1], true, true + 5)
    identity = axes[0, 0].lines[0]
    np.testing.assert_array_equal(identity.get_xdata(), identity.get_ydata())
    points = axes[0, 0].collections[0].get_offsets()
    assert len(points) == 36
    assert axes[0, 0].get_xlabel() == "true orientation (°)"
    assert axes[0, 0].get_ylabel() == "decoded orientation (°)"
    assert axes[0, 1].get_ylim() == (-180.0, 180.0)
    np.testing.assert_allclose(axes[0, 1].collections[0].get_offsets()[:, 1], 5.0)


def test_error_axis_shows_the_median_absolute_error_as_a_band_about_zero():
    """A magnitude is no signed error: ± median |error| per bin, so half the stimuli lie inside
    the band, and no line of |error| values on the signed axis."""
    rng = np.random.default_rng(5)
    true = rng.uniform(0, 360, 2000)
    error = rng.normal(0, 10, 2000) + np.where(true < 180, 20.0, 0.0)  # a bias in one half
    fig, axes = style.figure(3.0)
    decoders.plot_error_vs_true(axes[0, 0], true, true + error)
    band = next(c for c in axes[0, 0].collections if "median |error|" in c.get_label())
    assert band.get_label().startswith("± ")
    lines = [line for line in axes[0, 0].lines if len(line.get_xdata()) == 12]
    assert len(lines) == 2
    lower, upper = (line.get_ydata() for line in lines)
    np.testing.assert_allclose(lower, -upper)
    inside = np.abs(error[(true >= 0) & (true < 30)]) <= upper[0]
    assert inside.mean() == pytest.approx(0.5, abs=0.02)
    labels = [h.get_label() for h in axes[0, 0].get_legend_handles_labels()[0]]
    assert "held-out stimuli" in labels and not any(label.startswith("median") for label in labels)


def test_held_out_data_has_one_name_in_every_figure():
    history = pd.DataFrame({"iteration": [1, 1], "split": ["train", "validation"],
                            "loss": [1.0, 2.0]})
    fig, axes = style.figure(3.0, 1, 2)
    encoding.plot_training_loss(axes[0, 0], history)
    decoders.plot_decoded_vs_true(axes[0, 1], [10.0, 20.0], [12.0, 18.0])
    labels = [line.get_label() for line in axes[0, 0].lines]
    labels += [c.get_label() for c in axes[0, 1].collections]
    assert "held-out" in labels and "held-out stimuli" in labels
    assert not {"test", "validation", "test stimuli"} & set(labels)


def test_a_note_heads_every_figure_of_a_smoke_size_run(tmp_path):
    fig, _ = style.figure(2.0)
    titled, _ = style.figure(2.0)
    titled.suptitle("RDMs")
    style.save_figures({"a": fig, "b": titled}, {"a": tmp_path / "a.png", "b": tmp_path / "b.png"},
                       note="smoke-size run")
    assert fig.get_suptitle() == "smoke-size run"
    assert titled.get_suptitle() == "smoke-size run\nRDMs"


def test_loss_curves_draw_train_and_test_on_a_log_axis():
    history = pd.DataFrame({"epoch": [1, 1, 2, 2, 3, 3], "split": ["train", "test"] * 3,
                            "loss": [3.0, 3.1, 2.0, 2.5, 1.0, 2.2]})
    fig, axes = style.figure(3.0)
    decoders.plot_loss_curves(axes[0, 0], history, ylabel="NLL (nats)")
    ax = axes[0, 0]
    assert [line.get_label() for line in ax.lines] == ["train", "held-out"]
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3.1, 2.5, 2.2])


def test_input_weights_are_shown_with_neurons_sorted_by_preferred_orientation():
    weights = np.arange(12.0).reshape(3, 4) - 6
    preferred = np.array([270.0, 0.0, 90.0, 180.0])
    fig, axes = style.figure(3.0)
    image = decoders.plot_input_weights(axes[0, 0], weights, preferred)
    np.testing.assert_array_equal(image.get_array(), weights[:, [1, 2, 3, 0]])
    low, high = image.get_clim()
    assert low == -high
    with pytest.raises(ValueError, match="preferred orientations"):
        decoders.plot_input_weights(axes[0, 0], weights, preferred[:3])


def test_scaling_draws_the_alpha_beta_fit():
    n = np.repeat([50, 100, 200, 400], 2)
    table = pd.DataFrame({"axis": "neurons", "n": n, "repeat": np.tile([0, 1], 4),
                          "median_abs_error_deg": 1.0 + 40 / np.sqrt(n),
                          "fit_alpha_deg": 1.0, "fit_beta_deg": 40.0})
    fig, axes = style.figure(3.0)
    decoders.plot_scaling(axes[0, 0], table, xlabel="number of neurons")
    fit = axes[0, 0].lines[-1]
    x, y = fit.get_xdata(), fit.get_ydata()
    np.testing.assert_allclose(y, 1.0 + 40.0 / np.sqrt(x))
    assert axes[0, 0].get_xscale() == "log"
    assert "(°)" in axes[0, 0].get_ylabel()


def test_predictions_figure_has_two_rows_per_decoder():
    table = pd.DataFrame({"true_deg": [10.0, 100.0, 300.0], "predicted_deg": [12.0, 90, 310]})
    fig = decoders.predictions_figure({"mlp": table, "circular": table, "ridge": table})
    assert len(axes_of(fig)) == 6
    assert "median |error| 10.0°" in axes_of(fig)[0].get_title()


# ------------------------------------------------------------------------------------------------
# normative
# ------------------------------------------------------------------------------------------------


def test_filters_figure_shows_before_after_and_change_on_symmetric_scales():
    rng = np.random.default_rng(5)
    before = rng.normal(size=(6, 7, 7))
    after = before + 0.01 * rng.normal(size=before.shape)
    fig = normative.filters_figure(before, after)
    images = images_of(fig)
    assert len(images) == 18
    change = images[12].get_array()
    np.testing.assert_allclose(change, after[0] - before[0])
    for image in images:
        low, high = image.get_clim()
        assert low == -high
    # fewer channels after training than the hand-made six: no change row
    assert len(images_of(normative.filters_figure(before, after[:4]))) == 10


def test_normative_training_curves_mark_test_accuracy_and_chance():
    history = pd.DataFrame({"epoch": [1, 1, 2, 2], "split": ["train", "validation"] * 2,
                            "loss": [0.7, 0.69, 0.3, 0.35], "accuracy": [0.5, 0.52, 0.9, 0.88]})
    fig = normative.training_figure(history, test_accuracy=0.91)
    loss, accuracy = axes_of(fig)
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "train", "held-out", "chance", "after training, new held-out gratings: 0.910"]
    assert len(loss.lines) == 2
    levels = [line.get_ydata()[0] for line in accuracy.lines if len(set(line.get_ydata())) == 1]
    assert 0.5 in levels and 0.91 in levels
    assert loss.get_xlabel() == "epoch" and "accuracy" in accuracy.get_ylabel()


# ------------------------------------------------------------------------------------------------
# encoding
# ------------------------------------------------------------------------------------------------


def encoder_scores(n_neurons=40, n_conditions=60, seed=6):
    rng = np.random.default_rng(seed)
    measured = rng.normal(size=(n_conditions, n_neurons))
    predicted = measured + rng.normal(size=measured.shape)
    r2 = np.linspace(-0.5, 0.9, n_neurons)
    ceiling = np.linspace(0.1, 0.95, n_neurons)[::-1]
    return xr.Dataset(
        {"r2": ("neuron", r2), "noise_ceiling": ("neuron", ceiling),
         "normalised_r2": ("neuron", r2 / ceiling), "baseline_r2": ("neuron", r2 - 0.3),
         "predicted": (("condition", "neuron"), predicted),
         "measured": (("condition", "neuron"), measured)},
        coords={"neuron": np.arange(n_neurons),
                "orientation": ("condition", np.arange(n_conditions) * 6.0 + 3)})


def test_encoder_examples_are_reliable_neurons_from_best_to_worst_fit():
    scores = encoder_scores()
    chosen = encoding.select_example_neurons(scores["r2"].values,
                                             scores["noise_ceiling"].values, 4)
    ceiling = scores["noise_ceiling"].values
    assert np.all(ceiling[chosen] >= np.median(ceiling))
    assert np.all(np.diff(scores["r2"].values[chosen]) < 0)


def test_normalised_r2_histogram_counts_neurons_off_the_axis():
    values = np.array([-5.0, 0.1, 0.2, 0.3, 0.5, 3.0, np.nan])
    fig, axes = style.figure(3.0)
    encoding.plot_normalised_r2(axes[0, 0], values)
    ax = axes[0, 0]
    assert sum(patch.get_height() for patch in ax.patches) == 4
    labels = ax.get_legend().get_texts()
    assert labels[0].get_text() == "6 neurons (2 off the axis)"
    assert labels[1].get_text() == "median 0.25"


def test_encoding_figures_draw_examples_and_scores():
    history = pd.DataFrame({"iteration": [1, 1, 2, 2], "split": ["train", "validation"] * 2,
                            "loss": [0.4, 0.41, 0.3, 0.35]})
    figures = encoding.encoding_figures(encoder_scores(), history, n_examples=3)
    tuning_panels = [ax for ax in axes_of(figures["tuning"]) if ax.get_visible()]
    assert len(tuning_panels) == 3 and all(len(ax.lines) == 2 for ax in tuning_panels)
    assert len(axes_of(figures["scores"])) == 3


# ------------------------------------------------------------------------------------------------
# representations
# ------------------------------------------------------------------------------------------------


def test_default_perplexity_stays_below_the_number_of_conditions():
    assert representations.default_perplexity(181) == 30.0
    assert representations.default_perplexity(30) == pytest.approx(29 / 3)
    for n in (4, 10, 30, 90, 91, 1000):
        assert representations.default_perplexity(n) < n


def test_tsne_keeps_neighbouring_orientations_together():
    responses = ring_responses()
    embedding = representations.embed_tsne(responses, seed=0)
    assert embedding.shape == (30, 2)
    np.testing.assert_array_equal(embedding, representations.embed_tsne(responses, seed=0))
    distance = np.linalg.norm(embedding[:, None] - embedding[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    steps = np.abs(np.argmin(distance, axis=1) - np.arange(30))
    assert np.all(np.minimum(steps, 30 - steps) == 1)  # each point's nearest is a neighbour
    with pytest.raises(ValueError, match="perplexity"):
        representations.embed_tsne(responses, perplexity=30)


def test_tsne_of_a_one_unit_layer_works():
    embedding = representations.embed_tsne(np.linspace(0, 1, 20)[:, None], seed=0)
    assert embedding.shape == (20, 2) and np.isfinite(embedding).all()


def test_embedding_is_coloured_by_orientation_with_a_cyclic_map():
    orientation = np.linspace(-87, 87, 30)
    fig, axes = style.figure(3.0)
    points = representations.plot_embedding(axes[0, 0], ring_responses()[:, :2], orientation)
    assert points.get_cmap().name == style.ORIENTATION_CMAP
    np.testing.assert_array_equal(points.get_array(), orientation)
    assert points.norm.vmax - points.norm.vmin == 180.0


def test_unit_tuning_skips_silent_units():
    activations = np.zeros((30, 10))
    activations[:, [2, 5, 7]] = np.random.default_rng(7).normal(size=(30, 3))
    units = representations.responsive_units(activations, 6, np.random.default_rng(0))
    np.testing.assert_array_equal(units, [2, 5, 7])
    fig, axes = style.figure(3.0)
    representations.plot_unit_tuning(axes[0, 0], np.linspace(-87, 87, 30), activations, units)
    assert len(axes[0, 0].lines) == 3
    assert axes[0, 0].get_xlabel() == "grating orientation (°)"
    # each line is named in a legend by the unit it shows
    legend = axes[0, 0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["unit 2", "unit 5", "unit 7"]


def test_representation_figures_put_v1_beside_every_layer():
    orientation = np.linspace(-87, 87, 30)
    activations = xr.Dataset(
        {"pool": (("condition", "pool_unit"), ring_responses(n_units=20)),
         "out": (("condition", "out_unit"), ring_responses(n_units=1, seed=1))},
        coords={"orientation": ("condition", orientation)})
    figures = representations.representation_figures(ring_responses(n_units=40, seed=2),
                                                     activations, network="net")
    titles = [ax.get_title() for ax in axes_of(figures["tsne"])]
    assert titles == ["V1", "pool", "out"]
    with pytest.raises(ValueError, match="conditions"):
        representations.representation_figures(ring_responses()[:10], activations,
                                                network="net")


# ------------------------------------------------------------------------------------------------
# RDMs
# ------------------------------------------------------------------------------------------------


def rdm_datasets(n=30):
    rng = np.random.default_rng(8)
    orientation = np.linspace(-87, 87, n)
    difference = np.abs(orientation[:, None] - orientation[None])
    v1 = xr.Dataset({"rdm": (("condition", "condition_"), difference / 90)},
                    coords={"orientation": ("condition", orientation)},
                    attrs={"method": "correlation"})
    layers = np.stack([difference / 100, 300 * rng.uniform(size=(n, n))])
    network = xr.Dataset(
        {"rdm": (("layer", "condition", "condition_"), layers),
         "method": ("layer", ["correlation", "squared_euclidean"])},
        coords={"layer": ["pool", "out"], "orientation": ("condition", orientation)})
    return v1, network


def test_correlation_rdms_share_the_colour_scale_0_to_2_and_others_get_their_own():
    v1, network = rdm_datasets()
    figures = rdms.rdm_figures(v1, network, network_name="net")
    images = images_of(figures["matrices"])
    assert [image.get_clim() for image in images[:2]] == [(0.0, 2.0), (0.0, 2.0)]
    out = images[2].get_array()
    assert images[2].get_clim() == (out.min(), out.max())
    colourbars = [ax for ax in figures["matrices"].axes if ax.get_label() == "<colorbar>"]
    assert len(colourbars) == 2
    labels = {ax.get_ylabel() or ax.get_xlabel() for ax in colourbars}
    assert labels == {"1 − Pearson r", "squared euclidean\ndistance"}


def test_rdm_image_has_orientation_ticks():
    v1, _ = rdm_datasets()
    fig, axes = style.figure(3.0)
    image = rdms.plot_rdm(axes[0, 0], v1["rdm"].values, v1["orientation"].values, vmin=0, vmax=2)
    assert isinstance(image, AxesImage)
    assert [t.get_text() for t in axes[0, 0].get_xticklabels()] == ["−90", "−45", "0", "45",
                                                                    "90"]
    assert axes[0, 0].get_xlabel() == "orientation (°)"


def test_rdm_rows_are_the_rows_of_the_nearest_conditions():
    v1, _ = rdm_datasets()
    orientation = v1["orientation"].values
    indices = rdms.nearest_conditions(orientation, [-75, -25, 25, 75])
    np.testing.assert_array_equal(
        indices, [np.argmin(np.abs(orientation - a)) for a in (-75, -25, 25, 75)])
    fig, axes = style.figure(3.0)
    rdms.plot_rdm_rows(axes[0, 0], v1["rdm"].values, orientation)
    rows = [line for line in axes[0, 0].lines if len(line.get_xdata()) == orientation.size]
    assert len(rows) == 4
    for line, index in zip(rows, indices, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), v1["rdm"].values[index])


def test_rdm_figures_need_the_same_conditions():
    v1, network = rdm_datasets()
    network = network.assign_coords(orientation=network["orientation"] + 1)
    with pytest.raises(ValueError, match="different conditions"):
        rdms.rdm_figures(v1, network, network_name="net")


# ------------------------------------------------------------------------------------------------
# RSA
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "mark"), [(0.0005, "***"), (0.005, "**"), (0.04, "*"),
                                         (0.05, "n.s."), (0.5, "n.s.")])
def test_significance_marks(q, mark):
    assert rsa.significance_mark(q) == mark


def test_rsa_bars_have_intervals_marks_and_the_noise_ceiling():
    table = rsa_rows()
    fig, axes = style.figure(3.0)
    ax = axes[0, 0]
    rsa.plot_similarity_bars(ax, table, ylabel="Pearson r with V1")
    bars = [patch for patch in ax.patches if patch.get_width() == 0.75]
    np.testing.assert_allclose([bar.get_height() for bar in bars], table["value"])
    caps = [line for line in ax.lines if line.get_marker() == "_"]
    assert sorted(np.round([line.get_ydata()[0] for line in caps], 6)) == sorted(
        np.round(np.concatenate([table["ci_low"], table["ci_high"]]), 6))
    band = [patch for patch in ax.patches if patch.get_label().startswith("noise ceiling")][0]
    assert (band.get_y(), band.get_y() + band.get_height()) == pytest.approx((0.8, 0.95))
    assert [t.get_text() for t in ax.texts] == ["**"] * 3
    assert ax.get_ylabel() == "Pearson r with V1"


def test_rsa_interval_is_drawn_even_when_it_excludes_the_value():
    """A percentile bootstrap interval need not contain the observed value."""
    table = rsa_rows().assign(ci_low=0.1, ci_high=0.2)
    fig, axes = style.figure(3.0)
    rsa.plot_similarity_bars(axes[0, 0], table)
    caps = [line.get_ydata()[0] for line in axes[0, 0].lines if line.get_marker() == "_"]
    np.testing.assert_allclose(sorted(caps), [0.1] * 3 + [0.2] * 3)


def test_rsa_with_several_seeds_draws_the_mean_bar_and_a_dot_per_seed():
    table = rsa_rows(seeds=(1, 2, 3))
    fig, axes = style.figure(3.0)
    rsa.plot_similarity_bars(axes[0, 0], table)
    bars = [patch for patch in axes[0, 0].patches if patch.get_width() == 0.75]
    np.testing.assert_allclose(bars[0].get_height(), np.mean([0.71, 0.72, 0.73]))
    np.testing.assert_allclose(bars[2].get_height(), np.mean([0.91, 0.92, 0.93]))
    dots = [line for line in axes[0, 0].lines if line.get_marker() == "o"]
    assert len(dots) == 9


def test_rsa_figure_has_a_panel_per_comparator_and_one_for_cka():
    table = pd.concat([rsa_rows(), rsa_rows().assign(comparator="spearman")])
    cka = rsa_rows()[["network", "seed", "layer", "value"]].assign(comparator="cka")
    fig = rsa.rsa_figure(table, cka)
    titles = [ax.get_title() for ax in axes_of(fig) if ax.get_visible()]
    assert titles == ["RDMs: Pearson r", "RDMs: Spearman ρ", "representations: linear CKA"]
    with pytest.raises(ValueError, match="missing columns"):
        rsa.rsa_figure(table.drop(columns="layer"))


# ------------------------------------------------------------------------------------------------
# The figure rules on the smoke run, and the report
# ------------------------------------------------------------------------------------------------

SMOKE_FIGURES = [
    "results/smoke/figures/data/raster",
    "results/smoke/figures/data/tuning",
    "results/smoke/figures/decoders/conditions/predictions",
    "results/smoke/figures/decoders/conditions/training",
    "results/smoke/figures/decoders/conditions/weights",
    "results/smoke/figures/decoders/trials/predictions",
    "results/smoke/figures/decoders/trials/training",
    "results/smoke/figures/decoders/trials/weights",
    "results/smoke/figures/decoders/scaling",
    "results/smoke/figures/encoder/seed0/tuning",
    "results/smoke/figures/encoder/seed0/scores",
    "results/figures/normative/seed12/filters",
    "results/figures/normative/seed12/training",
    "results/smoke/figures/representations/normative/seed12/tuning",
    "results/smoke/figures/representations/normative/seed12/tsne",
    "results/smoke/figures/representations/encoder/seed0/tuning",
    "results/smoke/figures/representations/encoder/seed0/tsne",
    "results/smoke/figures/rdms/normative/seed12/matrices",
    "results/smoke/figures/rdms/normative/seed12/rows",
    "results/smoke/figures/rdms/encoder/seed0/matrices",
    "results/smoke/figures/rdms/encoder/seed0/rows",
    "results/smoke/figures/rsa/rsa",
    "results/smoke/figures/rsa/comparison",
    "results/smoke/figures/families/accuracy",
    "results/smoke/figures/families/depth",
    "results/smoke/figures/families/layers",
    "results/groups/mice/figures/rsa",
]


@pytest.mark.workflow
def test_smoke_run_draws_every_figure_as_png_and_svg(smoke_run):
    for name in SMOKE_FIGURES:
        with Image.open(smoke_run / f"{name}.png") as image:
            assert image.format == "PNG"
            width, height = image.size
            assert width == round(style.WIDTH_IN * 150)  # config: figures.dpi
            # the lowest: the families' heatmap of 3 variants; the tallest: the model
            # comparison, a bar and a matrix panel per comparator for 20 layers of 5 networks
            assert 250 <= height <= 2500
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not blank
        svg = (smoke_run / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and len(svg) > 5000


@pytest.mark.workflow
def test_report_holds_every_figure_with_its_caption_and_the_rsa_table(smoke_copy):
    snakemake(smoke_copy, "--report", "report.html", "--configfile", "config/smoke.yaml")
    html = (smoke_copy / "report.html").read_text()
    for name in SMOKE_FIGURES:
        assert f"{name.rsplit('/', 1)[1]}.png" in html
    assert "rsa.tsv" in html
    assert "affine" in html  # the simulated dataset's tuning caption names the true curves
    assert not re.search(r"\{\{|\{%", html.split("<body", 1)[-1][:2000])


@pytest.mark.workflow
def test_editing_a_figure_module_redraws_only_its_figures(smoke_copy):
    module = smoke_copy / "workflow" / "src" / "v1rsa" / "figures" / "rsa.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    result = snakemake(smoke_copy, "-n", "--configfile", "config/smoke.yaml")
    jobs = re.findall(r"^(\w+)\s+\d+$", result.stdout + result.stderr, flags=re.MULTILINE)
    # only the figures drawn with that module (the dataset's, the group of recordings', the
    # families'), and the run's record, remade whenever an output is
    assert sorted(set(jobs) - {"total"}) == ["all", "plot_families", "plot_rsa", "plot_rsa_group",
                                             "run_record"]


def test_a_large_raster_shows_means_of_neighbouring_neurons():
    rng = np.random.default_rng(2)
    n_neurons = 2 * style.MAX_IMAGE_PIXELS + 1
    response = rng.normal(size=(6, n_neurons))
    preferred = rng.uniform(0, 360, n_neurons)
    fig, axes = style.figure(3.0)
    shown = data.plot_response_raster(axes[0, 0], response, np.arange(6.0), preferred).get_array()
    assert shown.shape == (style.MAX_IMAGE_PIXELS, 6)
    ordered = response[:, np.argsort(preferred, kind="stable")].T
    np.testing.assert_allclose(shown[0], ordered[:2].mean(axis=0))
    np.testing.assert_allclose(shown[-1], ordered[-3:].mean(axis=0))  # the odd one out

    weights = rng.normal(size=(3, n_neurons))
    shown = decoders.plot_input_weights(axes[0, 0], weights, preferred).get_array()
    assert shown.shape == (3, style.MAX_IMAGE_PIXELS)
    np.testing.assert_allclose(shown[:, 1], weights[:, np.argsort(preferred, kind="stable")]
                               [:, 2:4].mean(axis=1))


# ------------------------------------------------------------------------------------------------
# generic RDM and MDS plots, for one's own stimuli
# ------------------------------------------------------------------------------------------------


def test_generic_rdm_plot_labels_every_condition_and_has_a_colour_bar():
    rdm = np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0)))
    fig, axes = style.figure(3.0)
    image = rdms.plot_rdm_matrix(axes[0, 0], rdm, ["cat", "dog", "car", "bus", "cup"])
    np.testing.assert_array_equal(image.get_array(), rdm)
    assert image.get_clim() == (1.0, 4.0)  # the off-diagonal range
    assert [t.get_text() for t in axes[0, 0].get_yticklabels()] == ["cat", "dog", "car", "bus",
                                                                      "cup"]
    assert len(fig.axes) == 2  # the image and its colour bar
    with pytest.raises(ValueError, match="labels: expected 5 labels"):
        rdms.plot_rdm_matrix(axes[0, 0], rdm, ["cat"])


def test_mds_recovers_points_whose_distances_the_rdm_holds():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(12, 2))
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    embedded = rdms.mds_embedding(distances, seed=0)
    recovered = np.linalg.norm(embedded[:, None] - embedded[None], axis=-1)
    np.testing.assert_allclose(recovered, distances, atol=1e-3)
    np.testing.assert_array_equal(rdms.mds_embedding(distances, seed=0), embedded)


def test_mds_plot_writes_each_stimulus_label_beside_its_point():
    rdm = np.abs(np.subtract.outer(np.arange(6.0), np.arange(6.0)))
    labels = [f"{angle}°" for angle in range(0, 180, 30)]
    fig, axes = style.figure(3.0)
    coordinates = rdms.plot_mds(axes[0, 0], rdm, labels, colours=np.arange(6))
    texts = [t for t in axes[0, 0].texts]
    assert [t.get_text() for t in texts] == labels
    np.testing.assert_allclose([t.xy for t in texts], coordinates)
    assert axes[0, 0].get_xlabel() == "MDS dimension 1"
    with pytest.raises(ValueError, match="non-negative, symmetric"):
        rdms.plot_mds(axes[0, 0], -rdm)
