"""Figures of the recording: the population response raster and example tuning curves.

The raster shows every neuron's trial-averaged response per orientation bin, neurons sorted by
their preferred orientation (the peak of a smooth tuning curve fitted to single trials,
:func:`v1rsa.tuning.preferred_orientation`). Example tuning curves show single trials, the mean
and the trial-to-trial spread per bin, and on simulated data the simulator's true curve, mapped
onto the z-scored data by a least-squares affine map (the truth is in raw units).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from v1rsa import simulate
from v1rsa.figures import style

#: Example neurons are drawn from this top fraction of held-out tuning SNR.
TOP_SNR_FRACTION = 0.1


def plot_response_raster(ax, response, orientation_deg, preferred_deg, *, limit=None):
    """Trial-averaged responses, neurons (rows, sorted by preferred orientation) × orientation.

    response: (n_conditions, n_neurons) float, z-scored; orientation_deg: (n_conditions,) bin
    centres; preferred_deg: (n_neurons,) degrees. Colour limits ±``limit`` (default: the 99th
    percentile of |response|). Many neurons are shown as the means of groups of neighbours
    (:func:`v1rsa.figures.style.group_means`). Returns the image (for a colour bar).
    """
    response = np.asarray(response, dtype=np.float64)
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    preferred_deg = np.asarray(preferred_deg, dtype=np.float64)
    if response.shape != (orientation_deg.size, preferred_deg.size):
        raise ValueError(f"response: expected shape ({orientation_deg.size}, {preferred_deg.size})"
                         f" (n_conditions, n_neurons), got {response.shape}")
    by_orientation = np.argsort(orientation_deg)
    by_preference = np.argsort(preferred_deg, kind="stable")
    image = response[by_orientation][:, by_preference].T
    limit = style.symmetric_limit(image) if limit is None else float(limit)
    n_neurons = preferred_deg.size
    mappable = ax.imshow(style.group_means(image, axis=0), aspect="auto", cmap=style.SIGNED_CMAP,
                         vmin=-limit, vmax=limit, extent=(0.0, 360.0, n_neurons - 0.5, -0.5),
                         interpolation="antialiased")
    style.orientation_axis(ax, "x")
    style.sorted_neuron_ticks(ax, preferred_deg[by_preference], "y")
    ax.set_ylabel(f"{n_neurons} neurons, sorted by\npreferred orientation")
    return mappable


def select_example_neurons(snr, preferred_deg, n_examples: int) -> np.ndarray:
    """Well-tuned example neurons whose preferred orientations spread over the circle.

    Among the ``TOP_SNR_FRACTION`` of neurons (at least ``n_examples``) with the highest
    held-out tuning SNR, the neuron whose preferred orientation is nearest each of
    ``n_examples`` evenly spaced angles (0°, 360°/n, …). snr, preferred_deg: (n_neurons,), as
    in ``tuning.nc`` (:func:`v1rsa.tuning.neuron_tuning`). Returns (n_examples,) positions
    along the neuron axis.
    """
    snr = np.asarray(snr, dtype=np.float64)
    preferred_deg = np.asarray(preferred_deg, dtype=np.float64)
    n_neurons = snr.size
    if preferred_deg.shape != snr.shape or snr.ndim != 1:
        raise ValueError(f"snr and preferred_deg must be (n_neurons,) each, got shapes "
                         f"{snr.shape} and {preferred_deg.shape}")
    if not 1 <= n_examples <= n_neurons:
        raise ValueError(f"n_examples must be in 1…{n_neurons} (the number of neurons), "
                         f"got {n_examples}")
    n_candidates = max(n_examples, int(np.ceil(TOP_SNR_FRACTION * n_neurons)))
    candidates = np.argsort(-snr, kind="stable")[:n_candidates]
    preferred = preferred_deg[candidates]
    chosen: list[int] = []
    for target in np.arange(n_examples) * 360.0 / n_examples:
        distance = np.abs((preferred - target + 180.0) % 360.0 - 180.0)
        distance[chosen] = np.inf
        chosen.append(int(np.argmin(distance)))
    return candidates[np.asarray(chosen)]


def matched_true_curves(truth: xr.Dataset, neuron_ids, response, orientation_deg,
                        grid_deg) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's true tuning curves of some neurons, mapped onto their z-scored data.

    The truth (:func:`v1rsa.simulate.expected_response`) is in raw units; z-scoring is affine,
    so each neuron's curve is mapped by the least-squares ``a · truth(θ) + b`` to its single
    trials. neuron_ids: (k,) values of the ``neuron`` coordinate; response: (n_trials, k) those
    neurons' z-scored trials; orientation_deg: (n_trials,). Returns the mapped curves at
    ``grid_deg`` (n_grid, k) and the maps (k, 2) as columns (a, b).
    """
    response = np.asarray(response, dtype=np.float64)
    subset = truth.sel(neuron=np.asarray(neuron_ids))
    at_trials = simulate.expected_response(subset, np.asarray(orientation_deg, dtype=np.float64))
    at_grid = simulate.expected_response(subset, np.asarray(grid_deg, dtype=np.float64))
    maps = np.empty((response.shape[1], 2))
    for k in range(response.shape[1]):
        design = np.column_stack([at_trials[:, k], np.ones(at_trials.shape[0])])
        maps[k] = np.linalg.lstsq(design, response[:, k], rcond=None)[0]
    return at_grid * maps[:, 0] + maps[:, 1], maps


def binned_mean_sd(orientation_deg, values, bin_width_deg: float):
    """Mean and standard deviation (ddof 0) of ``values`` in orientation bins over 0–360°.

    Returns ``(centres_deg, mean, sd)``, each (n_bins,); empty bins give NaN.
    """
    orientation_deg = np.mod(np.asarray(orientation_deg, dtype=np.float64), 360.0)
    values = np.asarray(values, dtype=np.float64)
    n_bins = int(round(360.0 / bin_width_deg))
    index = np.minimum((orientation_deg // (360.0 / n_bins)).astype(int), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    sums = np.bincount(index, values, minlength=n_bins)
    squares = np.bincount(index, values**2, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        sd = np.sqrt(np.maximum(squares / counts - mean**2, 0.0))
    centres = (np.arange(n_bins) + 0.5) * 360.0 / n_bins
    return centres, mean, sd


def plot_tuning_example(ax, orientation_deg, response, *, bin_width_deg: float = 10.0,
                        grid_deg=None, true_curve=None, title: str | None = None):
    """One neuron's single trials (dots), bin mean ± 1 SD across trials, and its true curve.

    orientation_deg, response: (n_trials,) degrees and z-scored responses; true_curve:
    optional (n_grid,) at ``grid_deg``, already in the units of ``response``. The y axis spans
    the 1st–99th percentiles of the trials (and the band). Returns legend handles and labels.
    """
    response = np.asarray(response, dtype=np.float64)
    trials = ax.scatter(orientation_deg, response, s=3, color="0.6", alpha=0.5, linewidths=0,
                        rasterized=True)
    centres, mean, sd = binned_mean_sd(orientation_deg, response, bin_width_deg)
    band = ax.fill_between(centres, mean - sd, mean + sd, color=style.PALETTE[0], alpha=0.25,
                           linewidth=0)
    (line,) = ax.plot(centres, mean, color=style.PALETTE[0])
    handles = [trials, (band, line)]
    labels = ["single trials", f"mean ± 1 SD across trials ({bin_width_deg:g}° bins)"]
    if true_curve is not None:
        (truth,) = ax.plot(grid_deg, true_curve, color=style.TRUTH_COLOUR, linestyle="--",
                           linewidth=1.2)
        handles.append(truth)
        labels.append("true curve (affine-matched)")
    # heavy-tailed single trials would squash the curves: clip to their 1st–99th percentiles
    low, high = np.percentile(response, [1.0, 99.0])
    low, high = min(low, np.nanmin(mean - sd)), max(high, np.nanmax(mean + sd))
    pad = 0.05 * (high - low)
    ax.set_ylim(low - pad, high + pad)
    style.orientation_axis(ax, "x")
    ax.set_ylabel("response (z-score)")
    if title:
        ax.set_title(title)
    return handles, labels


@style.styled
def raster_figure(response, orientation_deg, preferred_deg):
    """The population raster (:func:`plot_response_raster`) with its colour bar."""
    fig, axes = style.figure(4.2)
    mappable = plot_response_raster(axes[0, 0], response, orientation_deg, preferred_deg)
    fig.colorbar(mappable, ax=axes[0, 0], label="trial-averaged response (z-score)",
                 shrink=0.8)
    return fig


@style.styled
def tuning_figure(response, orientation_deg, titles, *, bin_width_deg: float = 10.0,
                  grid_deg=None, true_curves=None, n_columns: int = 3):
    """Example tuning curves, one panel each (:func:`plot_tuning_example`).

    response: (n_trials, k) the example neurons' z-scored trials; titles: k panel titles;
    true_curves: optional (n_grid, k) at ``grid_deg``.
    """
    response = np.asarray(response)
    k = response.shape[1]
    n_rows = int(np.ceil(k / n_columns))
    fig, axes = style.figure(2.0 * n_rows + 0.5, n_rows, n_columns, sharex=True)
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.set_visible(False)
            continue
        handles, labels = plot_tuning_example(
            ax, orientation_deg, response[:, i], bin_width_deg=bin_width_deg, grid_deg=grid_deg,
            true_curve=None if true_curves is None else true_curves[:, i], title=titles[i],
        )
        if i % n_columns:
            ax.set_ylabel("")
        if i < k - n_columns:
            ax.set_xlabel("")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), markerscale=3)
    return fig


@style.styled
def data_figures(trials: xr.Dataset, conditions: xr.Dataset, neuron_tuning: xr.Dataset,
                 truth: xr.Dataset | None = None, *, n_examples: int = 6,
                 bin_width_deg: float = 10.0) -> dict:
    """The data family: ``{"raster": Figure, "tuning": Figure}``.

    trials, conditions, neuron_tuning: the ``trials.nc`` / ``conditions.nc`` / ``tuning.nc``
    contracts; truth: the simulator's ``ground_truth.nc`` (adds the true curves) or None.
    """
    response = trials["response"].values
    orientation = trials["orientation"].values
    neuron_tuning = neuron_tuning.sel(neuron=trials["neuron"].values)
    preferred = neuron_tuning["preferred_orientation"].values
    raster = raster_figure(conditions["response"].values, conditions["orientation"].values,
                           preferred)
    examples = select_example_neurons(neuron_tuning["snr"].values, preferred, n_examples)
    examples = examples[np.argsort(preferred[examples])]
    neuron_ids = trials["neuron"].values[examples]
    titles = [f"neuron {nid} (preferred {preferred[i]:.0f}°)"
              for nid, i in zip(neuron_ids, examples, strict=True)]
    grid = true_curves = None
    if truth is not None:
        grid = np.arange(0.0, 360.5, 1.0)
        true_curves, _ = matched_true_curves(truth, neuron_ids, response[:, examples],
                                             orientation, grid)
    curves = tuning_figure(response[:, examples], orientation, titles,
                           bin_width_deg=bin_width_deg, grid_deg=grid, true_curves=true_curves)
    return {"raster": raster, "tuning": curves}
