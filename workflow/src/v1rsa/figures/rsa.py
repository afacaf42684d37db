"""Figures of representational similarity analysis: how close each layer's RDM is to V1's.

One panel per comparator (Pearson, Spearman, …): a bar per layer, grouped and coloured by
network, with its bootstrap confidence interval, the significance of the FDR-corrected
permutation test (q) above it, and V1's noise ceiling as a grey band (lower–upper). With several
seeds of a network, the bar is the mean over seeds and each seed is a dot with its own interval;
the mark is then that of the largest q over seeds. CKA (no interval) gets an extra panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    ``layer``, ``value`` and optionally ``network_seed``, ``ci_low``, ``ci_high``, ``q``,
    ``noise_ceiling_lower``, ``noise_ceiling_upper``. One bar per (network, layer): the mean
    over seeds; several seeds add a dot per seed.
    """
    _check_table(table, "similarity table")
    order = order or candidate_order(table)
    networks = list(dict.fromkeys(network for network, _ in order))
    colours = dict(zip(networks, style.colour_cycle(len(networks)), strict=True))
    has_ci = {"ci_low", "ci_high"} <= set(table.columns)
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
        rows = table[(table["network"].astype(str) == network)
                     & (table["layer"].astype(str) == layer)]
        colour = colours[network]
        mean = float(rows["value"].mean())
        ax.bar(position, mean, width=0.75, color=colour, alpha=0.85, zorder=2,
               label=network)
        top = max(mean, float(rows["value"].max()))
        several = len(rows) > 1
        offsets = np.linspace(-0.22, 0.22, len(rows)) if several else [0.0]
        for offset, (_, row) in zip(offsets, rows.iterrows(), strict=True):
            if several:
                ax.plot(position + offset, row["value"], "o", color="0.15", markersize=3,
                        zorder=3)
            if has_ci:
                _interval(ax, position + offset, row["ci_low"], row["ci_high"],
                          capsize=1.5 if several else 2.5)
                top = max(top, float(row["ci_high"]))
        if "q" in rows:
            ax.annotate(significance_mark(float(rows["q"].max())), (position, top),
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
