"""Figures of representational dissimilarity matrices (docs/science.md#rdms): V1's RDM beside every
layer's on one colour scale, and RDM rows at a few orientations, as in the course.

Correlation and cosine distances lie in [0, 2] and share one colour scale, 0–2. A layer whose
RDM uses another distance (the squared euclidean distance of a one-unit layer, the
cross-validated distance of V1) has values on its own scale and gets its own colour bar, with
limits from its own minimum and maximum.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np

from v1rsa.figures import style

#: Distances bounded in [0, 2], drawn on the shared 0–2 colour scale.
BOUNDED_METHODS = ("correlation", "cosine")
BOUNDED_RANGE = (0.0, 2.0)
#: The course's RDM rows (docs/science.md#rdms).
ROW_ORIENTATIONS_DEG = (-75.0, -25.0, 25.0, 75.0)

METHOD_LABELS = {
    "correlation": "1 − Pearson r",
    "cosine": "1 − cosine similarity",
    "squared_euclidean": "squared euclidean distance",
    "crossvalidated": "cross-validated squared distance",
}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def orientation_ticks(ax, low_deg: float, high_deg: float, step: float = 45.0) -> None:
    """Tick both axes of an RDM image spanning ``low_deg``…``high_deg`` every ``step``°."""
    low = np.ceil(low_deg / step - 1e-9) * step
    high = np.floor(high_deg / step + 1e-9) * step
    ticks = np.arange(low, high + step / 2, step)
    labels = [style.number(t) for t in ticks]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)


def plot_rdm(ax, rdm, orientation_deg, *, vmin: float | None = None, vmax: float | None = None,
             title: str | None = None, label_axes: bool = True, tick_step: float = 45.0):
    """An RDM as an image over stimulus orientation (degrees) on both axes.

    rdm: (n, n); orientation_deg: (n,) ascending. Sequential colours from ``vmin`` to ``vmax``
    (default the RDM's own range). Returns the image (for a colour bar).
    """
    rdm = np.asarray(rdm, dtype=np.float64)
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    if rdm.shape != (orientation_deg.size, orientation_deg.size):
        raise ValueError(f"rdm: expected shape ({orientation_deg.size}, {orientation_deg.size})"
                         f" to match the orientations, got {rdm.shape}")
    half_step = (np.median(np.diff(orientation_deg)) / 2) if orientation_deg.size > 1 else 0.5
    extent = (orientation_deg[0] - half_step, orientation_deg[-1] + half_step,
              orientation_deg[-1] + half_step, orientation_deg[0] - half_step)
    image = ax.imshow(rdm, cmap=style.DISSIMILARITY_CMAP, vmin=vmin, vmax=vmax, extent=extent)
    orientation_ticks(ax, extent[0], extent[1], tick_step)
    if label_axes:
        ax.set_xlabel("orientation (°)")
        ax.set_ylabel("orientation (°)")
    if title:
        ax.set_title(title)
    return image


def nearest_conditions(orientation_deg, at_deg: Sequence[float]) -> np.ndarray:
    """Index of the condition whose orientation is nearest each angle of ``at_deg``."""
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    return np.array([int(np.argmin(np.abs(orientation_deg - a))) for a in at_deg])


def plot_rdm_rows(ax, rdm, orientation_deg, at_deg: Sequence[float] = ROW_ORIENTATIONS_DEG, *,
                  ylabel: str = "dissimilarity", title: str | None = None) -> None:
    """Rows of an RDM at the conditions nearest ``at_deg``: dissimilarity to that condition
    against orientation, one line each, the reference condition marked by a dotted line."""
    rdm = np.asarray(rdm, dtype=np.float64)
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    indices = nearest_conditions(orientation_deg, at_deg)
    for colour, index in zip(style.colour_cycle(len(indices)), indices, strict=True):
        ax.axvline(orientation_deg[index], color=colour, linestyle=":", linewidth=0.9)
        ax.plot(orientation_deg, rdm[index], color=colour, linewidth=1.5,
                label=f"{style.number(orientation_deg[index])}°")
    low = np.floor(orientation_deg.min() / 90.0) * 90.0
    high = np.ceil(orientation_deg.max() / 90.0) * 90.0
    style.orientation_axis(ax, "x", low=low, high=high, step=90.0, label="orientation (°)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _layout(n_panels: int, max_columns: int = 5) -> tuple[int, int]:
    n_rows = int(np.ceil(n_panels / max_columns))
    return n_rows, int(np.ceil(n_panels / n_rows))


@style.styled
def rdms_figure(rdms: Mapping[str, np.ndarray], methods: Mapping[str, str], orientation_deg,
                *, title: str | None = None):
    """Every RDM side by side (e.g. V1 and each layer): bounded distances on one 0–2 colour
    scale with one colour bar, any other distance with its own colour bar.

    rdms: ``{name: (n, n)}``; methods: ``{name: distance method}``; orientation_deg: (n,).
    """
    n_rows, n_columns = _layout(len(rdms))
    panel_in = style.WIDTH_IN / n_columns
    tick_step = 90.0 if n_columns >= 4 else 45.0
    fig, axes = style.figure(panel_in * n_rows + 0.9, n_rows, n_columns)
    shared, shared_image = [], None
    for i, ax, name, rdm in style.panels(axes, rdms):
        method = methods[name]
        if method in BOUNDED_METHODS:
            shared_image = plot_rdm(ax, rdm, orientation_deg, vmin=BOUNDED_RANGE[0],
                                    vmax=BOUNDED_RANGE[1], title=name, tick_step=tick_step)
            shared.append(ax)
        else:
            image = plot_rdm(ax, rdm, orientation_deg, title=f"{name} (own scale)",
                             tick_step=tick_step)
            fig.colorbar(image, ax=ax, location="right", shrink=0.8, aspect=12, pad=0.02,
                         label=textwrap.fill(method_label(method), 18))
        if i % n_columns:
            ax.set_ylabel("")
    if shared_image is not None:
        bounded = sorted({methods[name] for name in rdms if methods[name] in BOUNDED_METHODS})
        fig.colorbar(shared_image, ax=shared, location="bottom", shrink=0.6, aspect=30,
                     label=" / ".join(method_label(m) for m in bounded))
    if title:
        fig.suptitle(title)
    return fig


@style.styled
def rows_figure(rdms: Mapping[str, np.ndarray], methods: Mapping[str, str], orientation_deg,
                at_deg: Sequence[float] = ROW_ORIENTATIONS_DEG, *, title: str | None = None):
    """RDM rows at ``at_deg`` for every RDM, one panel each (:func:`plot_rdm_rows`); bounded
    distances share the y range 0–2."""
    n_rows, n_columns = _layout(len(rdms))
    fig, axes = style.figure(2.1 * n_rows + 0.5, n_rows, n_columns)
    for i, ax, name, rdm in style.panels(axes, rdms):
        method = methods[name]
        plot_rdm_rows(ax, rdm, orientation_deg, at_deg, ylabel=method_label(method),
                      title=name)
        if method in BOUNDED_METHODS:
            ax.set_ylim(*BOUNDED_RANGE)
            if i % n_columns:
                ax.set_ylabel("")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
               title="RDM row of the condition at")
    if title:
        fig.suptitle(title)
    return fig


def rdm_figures(v1, network, *, network_name: str,
                at_deg: Sequence[float] = ROW_ORIENTATIONS_DEG) -> dict:
    """The RDM family for one network: ``{"matrices": Figure, "rows": Figure}``.

    network_name: how titles name the network (e.g. "normative network (seed 12)").
    v1: ``rdms/v1.nc`` (``rdm(condition, condition_)``, attr ``method``); network:
    ``rdms/{network}/seed{seed}.nc`` (``rdm(layer, condition, condition_)``, ``method(layer)``)
    over the same conditions.
    """
    orientation = v1["orientation"].values
    if not np.allclose(orientation, network["orientation"].values):
        raise ValueError(f"the V1 and {network_name} RDMs are over different conditions")
    order = np.argsort(orientation)
    rdms = {"V1": v1["rdm"].values}
    methods = {"V1": str(v1.attrs.get("method", "correlation"))}
    for layer in network["layer"].values:
        name = str(layer)
        rdms[name] = network["rdm"].sel(layer=layer).values
        methods[name] = str(network["method"].sel(layer=layer).values)
    rdms = {name: rdm[np.ix_(order, order)] for name, rdm in rdms.items()}
    orientation = orientation[order]
    return {
        "matrices": rdms_figure(rdms, methods, orientation,
                                title=f"RDMs: V1 and the {network_name}"),
        "rows": rows_figure(rdms, methods, orientation, at_deg,
                            title=f"RDM rows: V1 and the {network_name}"),
    }


def plot_rdm_matrix(ax, rdm, labels: Sequence | None = None, *, vmin: float | None = None,
                    vmax: float | None = None, colorbar_label: str | None = "dissimilarity",
                    title: str | None = None, max_labels: int = 30):
    """Any RDM as an image over its conditions, for stimuli of any kind (not only orientation).

    rdm: (n, n); labels: (n,) names of the conditions, shown as tick labels when there are at
    most ``max_labels`` (else every ⌈n / max_labels⌉-th). Sequential colours from ``vmin`` to
    ``vmax`` (default the RDM's off-diagonal range) and a colour bar labelled
    ``colorbar_label`` (None for none). Returns the image.
    """
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"rdm: expected a square (n, n) matrix, got shape {rdm.shape}")
    n = rdm.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} labels, one per condition, got {len(labels)}")
    off_diagonal = rdm[~np.eye(n, dtype=bool)] if n > 1 else rdm.ravel()
    vmin = float(off_diagonal.min()) if vmin is None else vmin
    vmax = float(off_diagonal.max()) if vmax is None else vmax
    image = ax.imshow(rdm, cmap=style.DISSIMILARITY_CMAP, vmin=vmin, vmax=vmax)
    if labels is not None:
        step = int(np.ceil(n / max_labels))
        ticks = np.arange(0, n, step)
        names = [str(labels[i]) for i in ticks]
        ax.set_xticks(ticks, names, rotation=90)
        ax.set_yticks(ticks, names)
    else:
        ax.set_xlabel("condition")
        ax.set_ylabel("condition")
    if colorbar_label is not None:
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label=colorbar_label)
    if title:
        ax.set_title(title)
    return image


def mds_embedding(rdm, n_components: int = 2, *, seed: int = 0) -> np.ndarray:
    """Metric multidimensional scaling of an RDM taken as distances (scikit-learn's MDS on the
    precomputed matrix, classical-MDS start). Returns (n, n_components) float64 coordinates
    whose distances approximate ``rdm``. Needs scikit-learn (``pip install scikit-learn``)."""
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1] or rdm.shape[0] < 2:
        raise ValueError(f"rdm: expected a square (n, n) matrix with n >= 2, got {rdm.shape}")
    if not np.isfinite(rdm).all() or np.any(rdm < 0) or not np.allclose(rdm, rdm.T):
        raise ValueError("rdm: MDS needs finite, non-negative, symmetric dissimilarities (a "
                         "cross-validated RDM can be negative: clip it at 0 first)")
    try:
        import inspect

        from sklearn.manifold import MDS
    except ImportError as err:
        raise ImportError("mds_embedding needs scikit-learn: pip install scikit-learn "
                          "(or v1rsa[workflow])") from err
    parameters = inspect.signature(MDS).parameters
    if "metric_mds" in parameters:  # scikit-learn ≥ 1.8
        mds = MDS(n_components, metric_mds=True, metric="precomputed", init="classical_mds",
                  random_state=seed)
    else:
        mds = MDS(n_components, metric=True, dissimilarity="precomputed", n_init=4,
                  random_state=seed, normalized_stress="auto")
    return np.asarray(mds.fit_transform(rdm), dtype=np.float64)


def plot_mds(ax, rdm, labels: Sequence | None = None, *, colours=None, seed: int = 0,
             title: str | None = None, max_labels: int = 40) -> np.ndarray:
    """The conditions of an RDM as points in 2-d (:func:`mds_embedding`), each labelled.

    labels: (n,) names written beside the points (at most ``max_labels``, evenly spaced, when
    there are more); colours: (n,) matplotlib colours, or (n,) numbers for the sequential
    colour map. The axes are the embedding's own units (the RDM's dissimilarity), equal in
    scale. Returns the (n, 2) coordinates.
    """
    coordinates = mds_embedding(rdm, 2, seed=seed)
    n = coordinates.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} labels, one per condition, got {len(labels)}")
    ax.scatter(coordinates[:, 0], coordinates[:, 1], c=style.PALETTE[0] if colours is None
               else colours, s=22, zorder=2)
    if labels is not None:
        for i in np.arange(0, n, int(np.ceil(n / max_labels))):
            ax.annotate(str(labels[i]), coordinates[i], xytext=(3, 3),
                        textcoords="offset points", fontsize=7)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("MDS dimension 1")
    ax.set_ylabel("MDS dimension 2")
    if title:
        ax.set_title(title)
    return coordinates
