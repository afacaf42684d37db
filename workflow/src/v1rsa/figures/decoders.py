"""Figures of the orientation decoders: predictions, errors, training, weights and scaling.

- decoded vs true orientation on the held-out stimuli, with the identity line;
- the signed circular error against the true orientation: the regression decoder's errors pile
  up near 0°/360° (it cannot know they are the same angle), the circular one's do not;
- train and held-out loss per iteration;
- the first-layer weights (hidden units × neurons), neurons sorted by preferred orientation, as
  the course shows them;
- the ridge decoder's error against the number of neurons and of training trials, with the fit
  error = α + β/√n.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib import ticker

from v1rsa.figures import style

#: How each decoder is named in panel titles (keys: the config's decoder names).
DECODER_TITLES = {
    "mlp": "MLP regression",
    "classifier": "classifier",
    "circular": "circular (cos, sin)",
    "ridge": "ridge (Stringer et al.)",
}
#: The y label of the training loss for each decoder kind (metrics.json ``kind``).
LOSS_LABELS = {
    "regressor": "MSE (deg²)",
    "classifier": "NLL (nats)",
    "circular": "MSE of (cos, sin)",
}
SCALING_LABELS = {"neurons": "number of neurons", "trials": "number of training trials"}


def decoder_title(name: str) -> str:
    return DECODER_TITLES.get(name, name)


def signed_error_deg(predicted_deg, true_deg, period: float = 360.0) -> np.ndarray:
    """Decoded − true orientation wrapped into [−period/2, period/2) degrees."""
    difference = np.asarray(predicted_deg, dtype=np.float64) - np.asarray(true_deg, np.float64)
    return (difference + period / 2) % period - period / 2


def plot_decoded_vs_true(ax, true_deg, predicted_deg, *, period: float = 360.0,
                         title: str | None = None) -> None:
    """Held-out stimuli as dots (decoded vs true orientation, degrees) and the identity
    line."""
    predicted_deg = np.asarray(predicted_deg, dtype=np.float64)
    ax.plot([0, period], [0, period], color=style.TRUTH_COLOUR, linewidth=0.8, linestyle="--",
            label="identity")
    ax.scatter(np.mod(true_deg, period), predicted_deg, s=6, alpha=0.6, linewidths=0,
               color=style.PALETTE[0], rasterized=True, label=f"{style.HELD_OUT} stimuli")
    step = 90.0 if period > 180 else 45.0
    style.orientation_axis(ax, "x", high=period, step=step, label="true orientation (°)")
    # a regression decoder's raw output may leave [0, period): show it as it is
    low = min(0.0, np.floor(predicted_deg.min() / step) * step)
    high = max(period, np.ceil(predicted_deg.max() / step) * step)
    style.orientation_axis(ax, "y", low=low, high=high, step=step,
                           label="decoded orientation (°)")
    if title:
        ax.set_title(title)


def plot_error_vs_true(ax, true_deg, predicted_deg, *, period: float = 360.0,
                       bin_width_deg: float = 30.0) -> None:
    """Signed circular error of each held-out stimulus against its true orientation, zero
    (dashed), and per ``bin_width_deg`` bin a band of ± the median absolute error: half the
    stimuli of the bin lie inside it (the band's half-width is the median |error|)."""
    true_deg = np.mod(np.asarray(true_deg, dtype=np.float64), period)
    error = signed_error_deg(predicted_deg, true_deg, period)
    ax.axhline(0.0, color=style.TRUTH_COLOUR, linewidth=0.8, linestyle="--")
    ax.scatter(true_deg, error, s=6, alpha=0.6, linewidths=0, color=style.PALETTE[0],
               rasterized=True, label=f"{style.HELD_OUT} stimuli")
    edges = np.arange(0.0, period + bin_width_deg / 2, bin_width_deg)
    index = np.clip(np.digitize(true_deg, edges) - 1, 0, edges.size - 2)
    centres, medians = [], []
    for b in range(edges.size - 1):
        if np.any(index == b):
            centres.append((edges[b] + edges[b + 1]) / 2)
            medians.append(np.median(np.abs(error[index == b])))
    centres, medians = np.asarray(centres), np.asarray(medians)
    ax.fill_between(centres, -medians, medians, color=style.PALETTE[1], alpha=0.25,
                    linewidth=0, label=f"± median |error| ({bin_width_deg:g}° bins)")
    for sign in (-1.0, 1.0):
        ax.plot(centres, sign * medians, color=style.PALETTE[1], linewidth=1.0)
    step = 90.0 if period > 180 else 45.0
    style.orientation_axis(ax, "x", high=period, step=step, label="true orientation (°)")
    ax.set_ylim(-period / 2, period / 2)
    ax.set_yticks(np.linspace(-period / 2, period / 2, 5))
    ax.set_ylabel("decoded − true (°)")


def plot_loss_curves(ax, history: pd.DataFrame, *, ylabel: str = "loss",
                     title: str | None = None) -> None:
    """Loss per iteration for each split of ``history`` (columns ``epoch``, ``split``,
    ``loss``), on a log scale when the loss is positive."""
    for split, rows in history.groupby("split", sort=False):
        ax.plot(rows["epoch"], rows["loss"], label=style.SPLIT_LABELS.get(str(split), split),
                color=style.SPLIT_COLOURS.get(str(split)))
    if (history["loss"] > 0).all():
        style.log_axis(ax, "y")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)


def plot_input_weights(ax, weights, preferred_deg, *, limit=None):
    """First-layer weights (hidden units × neurons), neurons sorted by preferred orientation.

    weights: (n_hidden, n_neurons) float; preferred_deg: (n_neurons,) degrees. Diverging colours
    at ±``limit`` (default: the 99th percentile of |weights|); many neurons are shown as the
    means of groups of neighbours (:func:`v1rsa.figures.style.group_means`). Returns the image.
    """
    weights = np.asarray(weights, dtype=np.float64)
    preferred_deg = np.asarray(preferred_deg, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != preferred_deg.size:
        raise ValueError(f"weights: expected (n_hidden, {preferred_deg.size}) to match the "
                         f"preferred orientations, got shape {weights.shape}")
    order = np.argsort(preferred_deg, kind="stable")
    limit = style.symmetric_limit(weights) if limit is None else float(limit)
    image = ax.imshow(style.group_means(weights[:, order], axis=1), aspect="auto",
                      cmap=style.SIGNED_CMAP, vmin=-limit, vmax=limit, interpolation="antialiased",
                      extent=(-0.5, weights.shape[1] - 0.5, weights.shape[0] - 0.5, -0.5))
    style.sorted_neuron_ticks(ax, preferred_deg[order], "x")
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("neurons, sorted by preferred orientation")
    ax.set_ylabel("hidden unit")
    return image


def plot_scaling(ax, table: pd.DataFrame, *, xlabel: str = "n") -> None:
    """Median absolute error against n (log axis): each repeat (dots), the mean over repeats
    (markers) and the fit α + β/√n from the table's ``fit_alpha_deg``, ``fit_beta_deg``."""
    ax.scatter(table["n"], table["median_abs_error_deg"], s=10, color="0.6", linewidths=0,
               label="repeats", zorder=2)
    means = table.groupby("n")["median_abs_error_deg"].mean()
    ax.plot(means.index, means.values, "o", color=style.PALETTE[0], label="mean of repeats",
            zorder=3)
    alpha, beta = float(table["fit_alpha_deg"].iloc[0]), float(table["fit_beta_deg"].iloc[0])
    n = np.geomspace(table["n"].min(), table["n"].max(), 200)
    ax.plot(n, alpha + beta / np.sqrt(n), color=style.PALETTE[1], zorder=1,
            label=f"α + β/√n: α = {style.number(alpha, '.2g')}°, "
                  f"β = {style.number(beta, '.3g')}°")
    ax.set_xscale("log")
    sampled = np.unique(table["n"])
    ax.set_xticks(sampled, [style.number(v) for v in sampled])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median |error| (°)")
    ax.legend()


@style.styled
def predictions_figure(predictions: Mapping[str, pd.DataFrame],
                       periods: Mapping[str, float] | None = None):
    """One column per decoder: decoded vs true (top), signed error vs true (bottom).

    predictions: ``{decoder name: predictions.tsv}`` (``true_deg``, ``predicted_deg``);
    periods: the period of each decoder's angle (360°, or 180° for a symmetric decoder).
    """
    names = list(predictions)
    periods = dict(periods or {})
    fig, axes = style.figure(4.6, 2, len(names))
    for column, name in enumerate(names):
        table, period = predictions[name], periods.get(name, 360.0)
        error = signed_error_deg(table["predicted_deg"], table["true_deg"], period)
        title = f"{decoder_title(name)}\nmedian |error| {np.median(np.abs(error)):.1f}°"
        plot_decoded_vs_true(axes[0, column], table["true_deg"], table["predicted_deg"],
                             period=period, title=title)
        plot_error_vs_true(axes[1, column], table["true_deg"], table["predicted_deg"],
                           period=period)
        if column:
            axes[0, column].set_ylabel("")
            axes[1, column].set_ylabel("")
            axes[1, column].set_yticklabels([])
    legend = {}
    for ax in axes[:, 0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=len(legend),
               markerscale=2)
    return fig


@style.styled
def training_figure(histories: Mapping[str, pd.DataFrame], kinds: Mapping[str, str]):
    """Train and test loss per iteration, one panel per decoder (:func:`plot_loss_curves`).

    histories: ``{decoder name: history.tsv}``; kinds: ``{decoder name: metrics kind}``.
    """
    fig, axes = style.figure(2.6, 1, len(histories))
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        plot_loss_curves(ax, history, ylabel=LOSS_LABELS.get(kinds.get(name, ""), "loss"),
                         title=decoder_title(name))
    return fig


@style.styled
def weights_figure(weights: Mapping[str, np.ndarray], preferred_deg):
    """First-layer weights of each decoder, stacked (:func:`plot_input_weights`).

    weights: ``{decoder name: (n_hidden, n_neurons)}``; preferred_deg: (n_neurons,) degrees.
    """
    heights = [max(np.asarray(w).shape[0], 6) for w in weights.values()]
    fig, axes = style.figure(1.0 + 0.09 * sum(heights) + 0.5 * len(heights), len(weights), 1,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, w) in zip(axes[:, 0], weights.items(), strict=True):
        image = plot_input_weights(ax, w, preferred_deg)
        ax.set_title(decoder_title(name))
        fig.colorbar(image, ax=ax, label="weight", aspect=8, pad=0.01)
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")
    return fig


@style.styled
def scaling_figure(table: pd.DataFrame):
    """Ridge decoding error against the number of neurons and of training trials
    (``scaling.tsv``: one panel per ``axis``, :func:`plot_scaling`)."""
    axes_names = list(dict.fromkeys(table["axis"]))
    fig, axes = style.figure(3.0, 1, len(axes_names))
    for ax, axis in zip(axes[0], axes_names, strict=True):
        plot_scaling(ax, table[table["axis"] == axis], xlabel=SCALING_LABELS.get(axis, axis))
    return fig


def decoder_figures(predictions, histories, kinds, weights, preferred_deg, periods=None) -> dict:
    """The per-data-kind decoder figures: ``{"predictions", "training", "weights"}``."""
    return {
        "predictions": predictions_figure(predictions, periods),
        "training": training_figure(histories, kinds),
        "weights": weights_figure(weights, preferred_deg),
    }
