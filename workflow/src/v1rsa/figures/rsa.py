"""Figures of representational similarity analysis: how close each layer's RDM is to V1's.

One panel per comparator (Pearson, Spearman, …): a bar per layer, grouped and coloured by
network, with its bootstrap confidence interval, the significance of the FDR-corrected
permutation test (q) above it, and V1's noise ceiling as a grey band (lower–upper). With several
seeds of a network, the bar is the mean over seeds with its interval from seeds and conditions
resampled together, and each seed is a dot; the mark is that of the seed mean's q. CKA (no
interval) gets an extra panel.

The model-comparison figures (:func:`comparison_figure`, :func:`group_figure`) draw what
rsatoolbox's ``plot_model_comparison`` draws: the units of comparison sorted by their
similarity, with intervals and the noise ceiling, and below them a matrix of the pairwise tests
(row better or worse than column at q < 0.05, not different, not tested).
"""

from __future__ import annotations

import matplotlib.colors
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from v1rsa.figures import style

COMPARATOR_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall_tau_a": "Kendall τ_a",
    "cosine": "cosine similarity",
    "cka": "linear CKA",
}
#: Significance marks of a q-value: the first threshold it is below.
SIGNIFICANCE = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
NOT_SIGNIFICANT = "n.s."
REQUIRED_COLUMNS = ("network", "layer", "comparator", "value")


def comparator_label(name: str) -> str:
    return COMPARATOR_LABELS.get(name, name)


def significance_mark(q: float) -> str:
    """``***`` (q < 0.001), ``**`` (< 0.01), ``*`` (< 0.05) or ``n.s.``."""
    for threshold, mark in SIGNIFICANCE:
        if q < threshold:
            return mark
    return NOT_SIGNIFICANT


def _check_table(table: pd.DataFrame, what: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; expected at least "
                         f"{list(REQUIRED_COLUMNS)} (rsa.tsv / cka.tsv)")


def candidate_order(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(network, layer) pairs in order of first appearance (the networks' layer order)."""
    return list(dict.fromkeys(zip(table["network"].astype(str), table["layer"].astype(str),
                                  strict=True)))


def _interval(ax, x: float, low: float, high: float, *, capsize: float) -> None:
    """A vertical interval from ``low`` to ``high`` with caps (it need not contain the value:
    a percentile bootstrap interval may exclude the observed statistic)."""
    low, high = float(low), float(high)
    ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="0.15",
                capsize=capsize, linewidth=1, zorder=3)


def plot_similarity_bars(ax, table: pd.DataFrame, *, ylabel: str = "similarity to V1",
                         title: str | None = None, order=None) -> None:
    """Bars of ``value`` per (network, layer) of one comparator's rows.

    table: rows of ``rsa.tsv`` (or ``cka.tsv``) for one comparator, columns ``network``,
    ``layer``, ``value`` and optionally ``network_seed``, ``n_seeds``, ``ci_low``, ``ci_high``,
    ``q``, ``noise_ceiling_lower``, ``noise_ceiling_upper``. One bar per (network, layer): the
    seed mean's row (``n_seeds`` > 1) where there is one, else the mean of the rows; several
    seeds add a dot per seed.
    """
    _check_table(table, "similarity table")
    order = order or candidate_order(table)
    networks = list(dict.fromkeys(network for network, _ in order))
    colours = dict(zip(networks, style.colour_cycle(len(networks)), strict=True))
    has_ci = {"ci_low", "ci_high"} <= set(table.columns)
    seed_mean = (table["n_seeds"] > 1 if "n_seeds" in table.columns
                 else pd.Series(False, index=table.index))
    x_positions, x = [], 0.0
    for i, (network, _) in enumerate(order):
        if i and network != order[i - 1][0]:
            x += 0.6  # a gap between networks
        x_positions.append(x)
        x += 1.0
    if {"noise_ceiling_lower", "noise_ceiling_upper"} <= set(table.columns):
        low = float(table["noise_ceiling_lower"].iloc[0])
        high = float(table["noise_ceiling_upper"].iloc[0])
        ax.axhspan(low, high, color="0.85", zorder=0, label="noise ceiling (lower–upper)")
    tops = []
    for position, (network, layer) in zip(x_positions, order, strict=True):
        chosen = (table["network"].astype(str) == network) & (table["layer"].astype(str) == layer)
        rows, mean_row = table[chosen & ~seed_mean], table[chosen & seed_mean]
        colour = colours[network]
        mean = float(mean_row["value"].iloc[0]) if len(mean_row) else float(rows["value"].mean())
        ax.bar(position, mean, width=0.75, color=colour, alpha=0.85, zorder=2,
               label=network)
        top = max(mean, float(rows["value"].max()))
        several = len(rows) > 1
        offsets = np.linspace(-0.22, 0.22, len(rows)) if several else [0.0]
        for offset, (_, row) in zip(offsets, rows.iterrows(), strict=True):
            if several:
                ax.plot(position + offset, row["value"], "o", color="0.15", markersize=3,
                        zorder=3)
            if has_ci and not len(mean_row):
                _interval(ax, position + offset, row["ci_low"], row["ci_high"],
                          capsize=1.5 if several else 2.5)
                top = max(top, float(row["ci_high"]))
        if has_ci and len(mean_row):
            _interval(ax, position, mean_row["ci_low"].iloc[0], mean_row["ci_high"].iloc[0],
                      capsize=2.5)
            top = max(top, float(mean_row["ci_high"].iloc[0]))
        if "q" in rows:
            q = float(mean_row["q"].iloc[0]) if len(mean_row) else float(rows["q"].max())
            ax.annotate(significance_mark(q), (position, top),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, zorder=4)
        tops.append(top)
    ax.set_xticks(x_positions, [layer for _, layer in order], rotation=0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    values = table["value"].to_numpy(dtype=float)
    low = min(0.0, float(np.nanmin(table["ci_low"])) if has_ci else float(np.nanmin(values)))
    ax.set_ylim(low - 0.05, max(1.0, max(tops) + 0.12))
    if title:
        ax.set_title(title)


def _legend(fig, axes) -> None:
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center",
               ncols=len(entries))


@style.styled
def rsa_figure(table: pd.DataFrame, cka: pd.DataFrame | None = None, *,
               networks=None, max_columns: int = 2):
    """One panel per comparator of ``rsa.tsv`` (:func:`plot_similarity_bars`), and CKA
    (``cka.tsv``) as an extra panel when given; only the rows of ``networks`` when given (the
    members of families have figures of their own, v1rsa.figures.families)."""
    _check_table(table, "rsa table")
    if networks is not None:
        table = table[table["network"].astype(str).isin(networks)]
        if cka is not None:
            cka = cka[cka["network"].astype(str).isin(networks)]
    comparators = list(dict.fromkeys(table["comparator"].astype(str)))
    n_panels = len(comparators) + (cka is not None)
    n_columns = min(max_columns, n_panels)
    n_rows = int(np.ceil(n_panels / n_columns))
    fig, axes = style.figure(2.6 * n_rows + 0.5, n_rows, n_columns)
    order = candidate_order(table)
    panels = list(axes.flat)
    for ax, comparator in zip(panels, comparators, strict=False):
        plot_similarity_bars(ax, table[table["comparator"].astype(str) == comparator],
                             ylabel=f"{comparator_label(comparator)} with V1",
                             title=f"RDMs: {comparator_label(comparator)}", order=order)
    if cka is not None:
        _check_table(cka, "cka table")
        plot_similarity_bars(panels[len(comparators)], cka,
                             ylabel=f"{comparator_label('cka')} with V1",
                             title="representations: linear CKA",
                             order=candidate_order(cka))
    for ax in panels[n_panels:]:
        ax.set_visible(False)
    _legend(fig, panels[:n_panels])
    return fig


#: Colours of the pairwise matrix: row worse than column, not different, row better.
PAIRWISE_COLOURS = {-1: style.PALETTE[0], 0: "0.85", 1: style.PALETTE[1]}


def pairwise_matrix(names, pairwise: pd.DataFrame, *, alpha: float = 0.05) -> np.ndarray:
    """(U, U) outcome of the pairwise tests among ``names``: +1 where the row unit is more
    similar to the reference than the column unit at q < alpha, −1 where less, 0 where the test
    found no difference, NaN where the pair was not tested (or is the diagonal)."""
    index = {str(name): i for i, name in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    for row in pairwise.itertuples(index=False):
        a, b = index.get(str(row.candidate_a)), index.get(str(row.candidate_b))
        if a is None or b is None:
            continue
        outcome = float(np.sign(row.difference)) if row.q < alpha else 0.0
        matrix[a, b], matrix[b, a] = outcome, -outcome
    return matrix


def plot_comparison(ax, matrix_ax, units: pd.DataFrame, pairwise: pd.DataFrame, *,
                    dots: pd.DataFrame | None = None, ceiling=None, inner_ceiling=None,
                    ylabel: str = "similarity to V1", title: str | None = None,
                    dot_label: str = "seed") -> None:
    """rsatoolbox-style model comparison of one comparator's units, best first.

    units: one row per unit, columns ``candidate``, ``value``, ``ci_low``, ``ci_high``;
    pairwise: ``pairwise.tsv`` rows of this comparator; dots: optional rows ``candidate``,
    ``value`` and ``label`` (one dot each: a seed, or a recording, coloured by label);
    ceiling: (lower, upper) drawn as a grey band; inner_ceiling: (lower, upper) drawn as dashed
    lines (a group's mean within-recording ceiling). The bars go into ``ax``, the matrix of
    :func:`pairwise_matrix` into ``matrix_ax`` (None: no matrix).
    """
    units = units.sort_values("value", ascending=False, kind="stable")
    names = units["candidate"].astype(str).tolist()
    x = np.arange(len(names))
    if ceiling is not None and np.all(np.isfinite(ceiling)):
        ax.axhspan(*ceiling, color="0.85", zorder=0, label="noise ceiling")
    if inner_ceiling is not None and np.all(np.isfinite(inner_ceiling)):
        for bound in inner_ceiling:
            ax.axhline(bound, color="0.35", linestyle="--", linewidth=0.9, zorder=1)
        ax.plot([], [], color="0.35", linestyle="--", linewidth=0.9,
                label="within-recording ceiling")
    ax.bar(x, units["value"], width=0.7, color=style.PALETTE[0], alpha=0.8, zorder=2)
    for position, (_, row) in zip(x, units.iterrows(), strict=True):
        _interval(ax, position, row["ci_low"], row["ci_high"], capsize=2.5)
    if dots is not None and len(dots):
        labels = list(dict.fromkeys(dots["label"].astype(str)))
        colours = dict(zip(labels, style.colour_cycle(len(labels) + 1)[1:], strict=True))
        for label in labels:
            mine = dots[dots["label"].astype(str) == label]
            where = [names.index(c) for c in mine["candidate"].astype(str) if c in names]
            values = [v for c, v in zip(mine["candidate"].astype(str), mine["value"],
                                        strict=True) if c in names]
            jitter = 0.25 * (labels.index(label) / max(1, len(labels) - 1) - 0.5)
            ax.plot(np.asarray(where) + jitter, values, "o", markersize=3.5, zorder=3,
                    color=colours[label], markeredgecolor="white", markeredgewidth=0.4,
                    label=f"{dot_label} {label}" if len(labels) <= 8 else None)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_xticks(x, [] if matrix_ax is not None else names, rotation=90)
    if title:
        ax.set_title(title)
    if matrix_ax is None:
        return
    matrix = pairwise_matrix(names, pairwise)
    rgb = np.ones((*matrix.shape, 3))
    for outcome, colour in PAIRWISE_COLOURS.items():
        rgb[matrix == outcome] = matplotlib.colors.to_rgb(colour)
    matrix_ax.imshow(rgb, aspect="auto", interpolation="nearest")
    matrix_ax.set_xticks(x, names, rotation=90, fontsize=7)
    matrix_ax.set_yticks(x, names, fontsize=7)
    matrix_ax.set_xlim(-0.6, len(names) - 0.4)
    matrix_ax.tick_params(length=0)
    for spine in matrix_ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.6")
    handles = [matplotlib.patches.Patch(facecolor=colour, edgecolor="0.6", linewidth=0.5,
                                        label=label) for colour, label in (
        (PAIRWISE_COLOURS[1], "row more similar (q < 0.05)"),
        (PAIRWISE_COLOURS[-1], "row less similar (q < 0.05)"),
        (PAIRWISE_COLOURS[0], "no difference"),
        ("white", "not tested"))]
    matrix_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                     fontsize=7, handlelength=1.0, borderaxespad=0.0)


def comparison_units(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``rsa.tsv`` that are units of the pairwise comparison: seed means
    (``n_seeds`` > 1), and candidates of networks with one seed."""
    table = table.copy()
    n_seeds = table["n_seeds"] if "n_seeds" in table.columns else pd.Series(1, table.index)
    averaged = set(table.loc[n_seeds > 1, "network"].astype(str))
    keep = (n_seeds > 1) | ~table["network"].astype(str).isin(averaged)
    return table[keep]


def _comparison_layout(n_panels: int, n_units: int):
    matrix_height = min(2.6, 0.5 + 0.11 * n_units)
    fig = Figure(figsize=(style.WIDTH_IN, n_panels * (1.9 + matrix_height) + 0.3),
                 layout="constrained")
    grid = fig.add_gridspec(2 * n_panels, 1,
                            height_ratios=[1.9, matrix_height] * n_panels)
    return fig, [(fig.add_subplot(grid[2 * i]), fig.add_subplot(grid[2 * i + 1]))
                 for i in range(n_panels)]


@style.styled
def comparison_figure(table: pd.DataFrame, pairwise: pd.DataFrame, *, max_units: int = 30):
    """Model comparison of one dataset, one bars-and-matrix panel per comparator.

    table: ``rsa.tsv`` (with ``network``, ``layer``, ``n_seeds``); pairwise: ``pairwise.tsv``.
    Units are seed means and candidates of networks with one seed (:func:`comparison_units`);
    a seed mean's seeds are dots. At most ``max_units`` units, the most similar, are shown.
    """
    _check_table(table, "rsa table")
    comparators = list(dict.fromkeys(table["comparator"].astype(str)))
    units = comparison_units(table)
    n_units = min(max_units, units.groupby("comparator").size().max())
    fig, axes = _comparison_layout(len(comparators), n_units)
    for (ax, matrix_ax), comparator in zip(axes, comparators, strict=True):
        mine = units[units["comparator"].astype(str) == comparator]
        shown = mine.nlargest(max_units, "value")
        rows = table[(table["comparator"].astype(str) == comparator)
                     & (table.get("n_seeds", 1) == 1)]
        seeds = rows[rows["network"].astype(str).isin(
            set(shown.loc[shown.get("n_seeds", 1) > 1, "network"].astype(str)))]
        dots = pd.DataFrame({"candidate": seeds["network"].astype(str) + "/"
                             + seeds["layer"].astype(str),
                             "value": seeds["value"],
                             "label": seeds["network_seed"].astype("Int64").astype(str)})
        more = f" (the {len(shown)} most similar of {len(mine)})" if len(mine) > len(shown) else ""
        plot_comparison(ax, matrix_ax, shown, pairwise[pairwise["comparator"] == comparator],
                        dots=dots, ceiling=(float(mine["noise_ceiling_lower"].iloc[0]),
                                            float(mine["noise_ceiling_upper"].iloc[0])),
                        ylabel=f"{comparator_label(comparator)} with V1",
                        title=f"model comparison: {comparator_label(comparator)}{more}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                      borderaxespad=0.0)
    return fig


@style.styled
def group_figure(table: pd.DataFrame, per_recording: pd.DataFrame, pairwise: pd.DataFrame, *,
                 max_units: int = 30):
    """A group of recordings: per comparator, the mean similarity over recordings (bars, with
    the dual-bootstrap interval), one dot per recording, the between-recording noise ceiling
    (grey band) and the mean within-recording ceiling (dashed), and the pairwise matrix.

    table, per_recording, pairwise: ``rsa.tsv``, ``recordings.tsv``, ``pairwise.tsv`` of
    ``results/groups/{group}/``.
    """
    comparators = list(dict.fromkeys(table["comparator"].astype(str)))
    n_units = min(max_units, table.groupby("comparator").size().max())
    fig, axes = _comparison_layout(len(comparators), n_units)
    for (ax, matrix_ax), comparator in zip(axes, comparators, strict=True):
        mine = table[table["comparator"].astype(str) == comparator]
        shown = mine.nlargest(max_units, "value")
        dots = per_recording[per_recording["comparator"].astype(str) == comparator]
        dots = dots.assign(label=dots["dataset"].astype(str))
        more = f" (the {len(shown)} most similar of {len(mine)})" if len(mine) > len(shown) else ""
        plot_comparison(
            ax, matrix_ax, shown, pairwise[pairwise["comparator"] == comparator], dots=dots,
            ceiling=(float(mine["noise_ceiling_lower"].iloc[0]),
                     float(mine["noise_ceiling_upper"].iloc[0])),
            inner_ceiling=(float(mine["fold_ceiling_lower"].iloc[0]),
                           float(mine["fold_ceiling_upper"].iloc[0])),
            ylabel=f"{comparator_label(comparator)} with V1",
            title=f"{len(dots['dataset'].unique())} recordings: "
                  f"{comparator_label(comparator)}{more}",
            dot_label="recording")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0.0)
    return fig
