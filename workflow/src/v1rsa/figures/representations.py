"""Figures of representations: tuning curves of network units, and 2-d t-SNE maps of V1 and of
every layer coloured by orientation (as in the course's Tutorial 3, docs/science.md#rdms).

t-SNE: each representation (conditions × units) is reduced to at most 20 principal components
(scikit-learn PCA), then embedded in 2-d by scikit-learn's t-SNE with PCA initialisation and a
fixed seed (exact gradients up to 100 conditions, Barnes–Hut beyond). Perplexity (the effective
number of neighbours) must stay below the number of conditions; by default it is
min(30, (n_conditions − 1) / 3): 30, scikit-learn's default, for the 180 conditions of the
default run, and 9.7 for the 30 conditions of the smoke run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from v1rsa.figures import style

DEFAULT_PERPLEXITY = 30.0
#: Up to this many conditions t-SNE uses exact gradients, beyond it the Barnes–Hut approximation.
EXACT_TSNE_MAX_CONDITIONS = 100


def default_perplexity(n_conditions: int) -> float:
    """min(30, (n_conditions − 1) / 3): below n_conditions as t-SNE needs, 30 for large sets."""
    if n_conditions < 4:
        raise ValueError(f"t-SNE needs at least 4 conditions, got {n_conditions}")
    return float(min(DEFAULT_PERPLEXITY, (n_conditions - 1) / 3))


def embed_tsne(responses, *, n_components: int = 20, perplexity: float | None = None,
               seed: int = 0, n_threads: int = 1) -> np.ndarray:
    """PCA to ``n_components`` (fewer when the data have fewer), then t-SNE to 2-d.

    responses: (n_conditions, n_units) float. Returns (n_conditions, 2) float64. At most
    ``n_threads`` threads (BLAS and OpenMP): t-SNE's OpenMP loops slow down by tens of times
    when they compete with other jobs for the cores.
    """
    responses = np.asarray(responses, dtype=np.float64)
    if responses.ndim != 2:
        raise ValueError(f"responses: expected (n_conditions, n_units), got {responses.shape}")
    n_conditions = responses.shape[0]
    perplexity = default_perplexity(n_conditions) if perplexity is None else float(perplexity)
    if not 0 < perplexity < n_conditions:
        raise ValueError(f"perplexity must be in (0, {n_conditions}) (the number of "
                         f"conditions), got {perplexity}")
    n_pcs = min(n_components, n_conditions, responses.shape[1])
    with threadpool_limits(limits=n_threads):
        reduced = PCA(n_components=n_pcs, random_state=seed).fit_transform(responses)
    # PCA initialisation keeps global structure, but needs at least 2 dimensions to start from
    init = "pca" if n_pcs >= 2 else "random"
    # exact gradients are faster than Barnes–Hut (and exact) for the few conditions of an RDM
    method = "exact" if n_conditions <= EXACT_TSNE_MAX_CONDITIONS else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init=init, learning_rate="auto",
                method=method, random_state=seed)
    with threadpool_limits(limits=n_threads):
        return tsne.fit_transform(reduced)


def plot_embedding(ax, embedding, orientation_deg, *, norm=None,
                   title: str | None = None):
    """Conditions as dots in a 2-d embedding, coloured by orientation (cyclic colour map).

    Returns the scatter (for a colour bar). Axes of a t-SNE map have no units: no ticks.
    """
    embedding = np.asarray(embedding)
    norm = norm or style.grating_norm(orientation_deg)
    points = ax.scatter(embedding[:, 0], embedding[:, 1], c=orientation_deg,
                        cmap=style.ORIENTATION_CMAP, norm=norm, s=14, linewidths=0.3,
                        edgecolors="0.3")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return points


def responsive_units(activations, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """``n_units`` random units (sorted) among those whose activation varies with orientation.

    activations: (n_conditions, n_units_total). Units constant across conditions (e.g. silent
    after a ReLU) are left out; fewer are returned when fewer vary.
    """
    activations = np.asarray(activations)
    varying = np.flatnonzero(activations.std(axis=0) > 1e-8 * (np.abs(activations).max() or 1))
    if varying.size == 0:
        return varying
    return np.sort(rng.choice(varying, size=min(n_units, varying.size), replace=False))


def plot_unit_tuning(ax, orientation_deg, activations, units, *, title: str | None = None):
    """Activation of each unit in ``units`` against grating orientation, one line each, with a
    legend below the panel naming each line's unit (its index along the layer's units)."""
    order = np.argsort(orientation_deg)
    orientation_deg = np.asarray(orientation_deg)[order]
    activations = np.asarray(activations)[order]
    for colour, unit in zip(style.colour_cycle(len(units)), units, strict=True):
        ax.plot(orientation_deg, activations[:, unit], color=colour, linewidth=1.1,
                label=f"unit {unit}")
    low = np.floor(orientation_deg.min() / 45.0) * 45.0
    high = np.ceil(orientation_deg.max() / 45.0) * 45.0
    style.orientation_axis(ax, "x", low=low, high=high, step=45.0,
                           label="grating orientation (°)")
    ax.set_ylabel("activation (a.u.)")
    if len(units):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncols=2, fontsize=6.5,
                  handlelength=1.2, columnspacing=0.8, borderaxespad=0.0)
    if title:
        ax.set_title(title)


@style.styled
def unit_tuning_figure(layers: Mapping[str, np.ndarray], orientation_deg, *, n_units: int = 6,
                       seed: int = 0, n_columns: int = 4, title: str | None = None):
    """Tuning curves of ``n_units`` random responsive units per layer, one panel each.

    layers: ``{layer: (n_conditions, n_units_total)}``; units drawn with
    ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    n_columns = min(n_columns, len(layers))
    n_rows = int(np.ceil(len(layers) / n_columns))
    fig, axes = style.figure(3.0 * n_rows + 0.3, n_rows, n_columns)
    for i, ax, name, values in style.panels(axes, layers):
        units = responsive_units(values, n_units, rng)
        plot_unit_tuning(ax, orientation_deg, values, units,
                         title=f"{name}\n{len(units)} of "
                               f"{np.asarray(values).shape[1]} units")
        if i % n_columns:
            ax.set_ylabel("")
    if title:
        fig.suptitle(title)
    return fig


@style.styled
def tsne_figure(sources: Mapping[str, np.ndarray], orientation_deg, *, seed: int = 0,
                perplexity: float | None = None, n_components: int = 20,
                max_columns: int = 5, title: str | None = None, n_threads: int = 1):
    """t-SNE maps of each representation (e.g. V1 and every layer) side by side, with one
    orientation colour bar. sources: ``{name: (n_conditions, n_units)}``."""
    n_rows = int(np.ceil(len(sources) / max_columns))
    n_columns = int(np.ceil(len(sources) / n_rows))
    panel_in = style.WIDTH_IN / n_columns
    fig, axes = style.figure(panel_in * n_rows + 1.0, n_rows, n_columns)
    norm = style.grating_norm(orientation_deg)
    perplexity = (default_perplexity(len(orientation_deg)) if perplexity is None
                  else perplexity)
    for _, ax, name, values in style.panels(axes, sources):
        embedding = embed_tsne(values, n_components=n_components, perplexity=perplexity,
                               seed=seed, n_threads=n_threads)
        points = plot_embedding(ax, embedding, orientation_deg, norm=norm, title=name)
    colourbar = fig.colorbar(points, ax=axes, label="grating orientation (°)", shrink=0.8,
                             aspect=25, location="bottom")
    colourbar.set_ticks(np.arange(norm.vmin, norm.vmax + 1, 45.0))
    method = (f"PCA (≤ {n_components} components) → t-SNE (perplexity "
              f"{style.number(perplexity, '.3g')}, seed {seed})")
    fig.suptitle(f"{title}\n{method}" if title else method)
    return fig


def representation_figures(v1_response, activations, *, network: str, n_units: int = 6,
                           seed: int = 0, perplexity: float | None = None,
                           n_components: int = 20, n_threads: int = 1) -> dict:
    """The representations family for one network: ``{"tuning": Figure, "tsne": Figure}``.

    network: how titles name the network (e.g. "normative network (seed 12)").
    v1_response: (n_conditions, n_neurons) V1 responses of the selected conditions;
    activations: the network's activations Dataset (``{layer}(condition, {layer}_unit)``,
    coord ``orientation``) over the same conditions.
    """
    orientation = activations["orientation"].values
    v1_response = np.asarray(v1_response)
    if v1_response.shape[0] != orientation.size:
        raise ValueError(f"V1 responses have {v1_response.shape[0]} conditions but the "
                         f"{network} activations have {orientation.size}")
    layers = {str(name): activations[name].values for name in activations.data_vars}
    sources = {"V1": v1_response, **layers}
    return {
        "tuning": unit_tuning_figure(layers, orientation, n_units=n_units, seed=seed,
                                     title=f"Units of the {network}"),
        "tsne": tsne_figure(sources, orientation, seed=seed, perplexity=perplexity,
                            n_components=n_components, title=f"V1 and the {network}",
                            n_threads=n_threads),
    }
