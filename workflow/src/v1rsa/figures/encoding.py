"""Figures of the encoding model (grating → every neuron): predicted against measured tuning
curves on the held-out half of the trials, and the distribution of per-neuron R²."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from v1rsa.figures import style

#: Example neurons: those at these quantiles of R², among neurons with a reliable response.
EXAMPLE_QUANTILES = (0.95, 0.8, 0.65, 0.5, 0.35, 0.2)
#: Normalised R² is drawn within these limits; neurons outside are counted in the legend.
NORMALISED_R2_RANGE = (-1.0, 1.5)


def select_example_neurons(r2, noise_ceiling, n_examples: int = 6) -> np.ndarray:
    """Example neurons spanning good to poor fits, among reliably tuned neurons.

    Among neurons whose noise ceiling is at least its median (their held-out tuning can be
    predicted at all), the neurons at the quantiles ``EXAMPLE_QUANTILES`` (the first
    ``n_examples``, or evenly spaced ones when more are asked) of R².
    r2, noise_ceiling: (n_neurons,). Returns positions, best fit first.
    """
    r2, noise_ceiling = np.asarray(r2, np.float64), np.asarray(noise_ceiling, np.float64)
    reliable = np.flatnonzero(np.isfinite(r2) & (noise_ceiling >= np.nanmedian(noise_ceiling)))
    if reliable.size < n_examples:
        reliable = np.flatnonzero(np.isfinite(r2))
    if n_examples <= len(EXAMPLE_QUANTILES):
        quantiles = np.asarray(EXAMPLE_QUANTILES[:n_examples])
    else:
        quantiles = np.linspace(0.95, 0.05, n_examples)
    ranked = reliable[np.argsort(-r2[reliable], kind="stable")]
    positions = np.round((1.0 - quantiles) * (ranked.size - 1)).astype(int)
    return ranked[np.unique(positions)]


def plot_predicted_vs_measured(ax, orientation_deg, predicted, measured, *,
                               title: str | None = None) -> None:
    """One neuron's held-out tuning: measured bin means (dots and line) and the prediction."""
    order = np.argsort(orientation_deg)
    orientation_deg = np.asarray(orientation_deg)[order]
    ax.plot(orientation_deg, np.asarray(measured)[order], color="0.45", marker="o",
            markersize=2.5, linewidth=0.8, label="measured (held-out trials)")
    ax.plot(orientation_deg, np.asarray(predicted)[order], color=style.PALETTE[1],
            label="predicted (encoding model)")
    style.orientation_axis(ax, "x")
    ax.set_ylabel("response (z-score)")
    if title:
        ax.set_title(title)


def plot_normalised_r2(ax, normalised_r2, *, value_range=NORMALISED_R2_RANGE,
                       n_bins: int = 40) -> None:
    """Histogram of per-neuron R² / noise ceiling, its median and the ceiling (1)."""
    values = np.asarray(normalised_r2, dtype=np.float64)
    values = values[np.isfinite(values)]
    low, high = value_range
    inside = values[(values >= low) & (values <= high)]
    n_off = values.size - inside.size
    ax.hist(inside, bins=np.linspace(low, high, n_bins + 1), color=style.PALETTE[0], alpha=0.8,
            label=f"{values.size} neurons ({n_off} off the axis)")
    median = float(np.median(values))
    ax.axvline(median, color=style.PALETTE[1], linestyle="--",
               label=f"median {style.number(median, '.2f')}")
    ax.axvline(1.0, color=style.TRUTH_COLOUR, linestyle=":", linewidth=1, label="noise ceiling")
    ax.axvline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlim(low, high)
    ax.set_xlabel("normalised R² (R² / noise ceiling)")
    ax.set_ylabel("neurons")
    style.legend_below(ax)


def plot_r2_vs_ceiling(ax, r2, noise_ceiling, baseline_r2=None) -> None:
    """Each neuron's held-out R² against its split-half noise ceiling, the identity (the
    ceiling) and, when given, the median R² of the mean-tuning baseline."""
    r2, noise_ceiling = np.asarray(r2), np.asarray(noise_ceiling)
    ax.scatter(noise_ceiling, r2, s=4, alpha=0.5, linewidths=0, color=style.PALETTE[0],
               rasterized=True, label="neurons")
    top = float(np.nanmax(np.concatenate([noise_ceiling, r2, [0.1]])))
    low = float(max(np.nanmin(r2), -0.5))
    ax.plot([0, top], [0, top], color=style.TRUTH_COLOUR, linestyle="--", linewidth=0.8,
            label="R² = ceiling")
    if baseline_r2 is not None:
        median = float(np.nanmedian(baseline_r2))
        ax.axhline(median, color=style.PALETTE[2], linestyle=":",
                   label=f"mean-tuning baseline (median R² {style.number(median, '.2f')})")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlim(min(0.0, float(np.nanmin(noise_ceiling))), top * 1.02)
    ax.set_ylim(low, top * 1.02)
    ax.set_xlabel("noise ceiling (split-half R²)")
    ax.set_ylabel("R² on held-out trials")
    style.legend_below(ax)


def plot_training_loss(ax, history: pd.DataFrame) -> None:
    """Loss per iteration for each split (columns ``iteration``, ``split``, ``loss``)."""
    step = "iteration" if "iteration" in history else "epoch"
    for split, rows in history.groupby("split", sort=False):
        ax.plot(rows[step], rows["loss"], label=style.SPLIT_LABELS.get(str(split), split),
                color=style.SPLIT_COLOURS.get(str(split)))
    if (history["loss"] > 0).all():
        style.log_axis(ax, "y")
    ax.set_xlabel(step)
    ax.set_ylabel("loss (MSE + L1, L2 penalties)")
    style.legend_below(ax)


@style.styled
def tuning_figure(scores: xr.Dataset, neurons, *, n_columns: int = 3):
    """Predicted against measured held-out tuning curves of some neurons (positions).

    scores: the encoder's ``scores.nc`` (``predicted``/``measured(condition, neuron)``,
    ``orientation(condition)``, ``r2``, ``noise_ceiling``).
    """
    neurons = np.asarray(neurons)
    n_rows = int(np.ceil(neurons.size / n_columns))
    fig, axes = style.figure(2.1 * n_rows + 0.5, n_rows, n_columns, sharex=True)
    orientation = scores["orientation"].values
    for i, ax in enumerate(axes.flat):
        if i >= neurons.size:
            ax.set_visible(False)
            continue
        k = neurons[i]
        r2 = float(scores["r2"].values[k])
        ceiling = float(scores["noise_ceiling"].values[k])
        title = (f"neuron {scores['neuron'].values[k]}\nR² {style.number(r2, '.2f')}, "
                 f"noise ceiling {style.number(ceiling, '.2f')}")
        plot_predicted_vs_measured(ax, orientation, scores["predicted"].values[:, k],
                                   scores["measured"].values[:, k], title=title)
        if i % n_columns:
            ax.set_ylabel("")
        if i < neurons.size - n_columns:
            ax.set_xlabel("")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig


@style.styled
def scores_figure(scores: xr.Dataset, history: pd.DataFrame | None = None):
    """Normalised R² histogram, R² against the noise ceiling, and (given ``history``) the
    training loss."""
    n_panels = 2 if history is None else 3
    fig, axes = style.figure(2.9, 1, n_panels)
    plot_normalised_r2(axes[0, 0], scores["normalised_r2"].values)
    plot_r2_vs_ceiling(axes[0, 1], scores["r2"].values, scores["noise_ceiling"].values,
                       scores["baseline_r2"].values if "baseline_r2" in scores else None)
    if history is not None:
        plot_training_loss(axes[0, 2], history)
    return fig


def encoding_figures(scores: xr.Dataset, history: pd.DataFrame | None = None,
                     *, n_examples: int = 6) -> dict:
    """The encoding family: ``{"tuning": Figure, "scores": Figure}``."""
    neurons = select_example_neurons(scores["r2"].values, scores["noise_ceiling"].values,
                                     n_examples)
    return {"tuning": tuning_figure(scores, neurons), "scores": scores_figure(scores, history)}
