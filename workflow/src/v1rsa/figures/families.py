"""Figures of families of networks: does training, depth or a regulariser move a network
towards V1?

Three figures from the leaderboard (``rsa/leaderboard.tsv`` and ``leaderboard_seeds.tsv``,
:mod:`v1rsa.rsa.leaderboard`), one comparator each, for every family at once:

- :func:`accuracy_figure`: held-out task accuracy against the cross-validated best-layer
  similarity with V1, one point per variant (mean over seeds, bars: SD over seeds), untrained
  variants hollow, V1's noise ceiling as a band, and Spearman's ρ over variants with its
  bootstrap interval;
- :func:`depth_figure`: each layer's similarity with V1 by depth, one panel per family and one
  line per variant, untrained variants dashed;
- :func:`layers_figure`: variants × layers heatmap of the similarity.

Similarities are with single-fold V1 RDMs (mean over folds): the scale the noise ceiling bounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from v1rsa.figures import style
from v1rsa.figures.rsa import comparator_label
from v1rsa.rsa.leaderboard import SIMILARITY_PREFIX, rank_correlation

REQUIRED_COLUMNS = ("family", "variant", "network", "comparator", "untrained", "test_accuracy",
                    "best_score", "noise_ceiling_lower", "noise_ceiling_upper")
#: Columns of each layer's SD over seeds (:func:`with_layer_spread`).
SPREAD_PREFIX = "spread_"
#: Above this many variants, points and rows are not labelled with their names.
MAX_LABELLED = 16


def _family_rows(table: pd.DataFrame, comparator: str, what: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing} (leaderboard.tsv)")
    rows = table[(table["comparator"] == comparator)
                 & table["family"].fillna("").astype(str).ne("")]
    if rows.empty:
        raise ValueError(f"{what}: no family member compared by {comparator!r}")
    return rows.assign(family=rows["family"].astype(str), variant=rows["variant"].astype(str),
                       untrained=rows["untrained"].astype(str).str.lower().eq("true"))


def layer_order(table: pd.DataFrame) -> list[str]:
    """The layers of the ``similarity_{layer}`` columns, in the table's (depth) order."""
    return [c.removeprefix(SIMILARITY_PREFIX) for c in table.columns
            if c.startswith(SIMILARITY_PREFIX)]


def _ceiling(ax, rows: pd.DataFrame, *, label: bool = True) -> None:
    low, high = float(rows["noise_ceiling_lower"].iloc[0]), float(
        rows["noise_ceiling_upper"].iloc[0])
    if np.isfinite(low) and np.isfinite(high):
        ax.axhspan(low, high, color="0.88", zorder=0,
                   label="noise ceiling (lower–upper)" if label else None)


def _sd(rows: pd.DataFrame, column: str) -> np.ndarray:
    if column not in rows:
        return np.zeros(len(rows))
    return np.nan_to_num(rows[column].to_numpy(dtype=float))


def plot_accuracy_similarity(ax, table: pd.DataFrame, comparator: str, *,
                             correlation: dict | None = None) -> dict:
    """Held-out accuracy (x) against best-layer similarity with V1 (y), one point per variant.

    table: ``leaderboard.tsv``; correlation: keyword arguments of
    :func:`v1rsa.rsa.leaderboard.rank_correlation` (n_bootstrap, ci_level, seed). Returns the
    rank correlation drawn in the corner.
    """
    rows = _family_rows(table, comparator, "accuracy figure")
    families = list(dict.fromkeys(rows["family"]))
    colours = dict(zip(families, style.colour_cycle(len(families)), strict=True))
    _ceiling(ax, rows)
    for family in families:
        for untrained in (False, True):
            group = rows[(rows["family"] == family) & (rows["untrained"] == untrained)]
            if group.empty:
                continue
            colour = colours[family]
            ax.errorbar(group["test_accuracy"], group["best_score"],
                        xerr=_sd(group, "test_accuracy_sd"), yerr=_sd(group, "best_score_sd"),
                        fmt="o", markersize=5, color=colour, ecolor=colour, elinewidth=0.8,
                        capsize=2, markerfacecolor="white" if untrained else colour, zorder=3,
                        label=f"{family} (untrained)" if untrained else family)
    if len(rows) <= MAX_LABELLED:
        for _, row in rows.iterrows():
            ax.annotate(row["variant"], (row["test_accuracy"], row["best_score"]),
                        xytext=(4, 3), textcoords="offset points", fontsize=6.5, color="0.25")
    result = rank_correlation(rows["test_accuracy"], rows["best_score"], **(correlation or {}))
    level = int(round(100 * (correlation or {}).get("ci_level", 0.95)))
    interval = (f"[{style.number(result['ci_low'], '.2f')}, "
                f"{style.number(result['ci_high'], '.2f')}]"
                if np.isfinite(result["ci_low"]) else "(no interval: too few variants)")
    text = (f"Spearman ρ = {style.number(result['rho'], '.2f')}, {level} % CI {interval}, "
            f"{result['n']} variants" if np.isfinite(result["rho"])
            else f"Spearman ρ undefined ({result['n']} variants)")
    ax.set_title(text, fontsize=8, loc="left")
    ax.axvline(0.5, color="0.5", linewidth=0.8, linestyle=":", zorder=1)
    ax.set_xlim(right=1.02)  # accuracy ends at 1, whatever a seed's spread
    ax.set_xlabel("held-out tilt accuracy (fraction correct; chance 0.5)")
    ax.set_ylabel(f"best layer's {comparator_label(comparator)} with V1\n"
                  "(chosen on one fold, scored on the other)")
    return result


def plot_depth_profile(ax, table: pd.DataFrame, family: str, comparator: str,
                       layers=None) -> None:
    """Each layer's similarity with V1 by depth, one line per variant of ``family`` (untrained
    variants dashed grey), the noise ceiling as a band. table: ``leaderboard.tsv``; with the
    columns ``spread_{layer}`` (:func:`with_layer_spread`), bars show the SD over seeds.
    Layers share one axis in ``layers``' order (default: the table's), so a shallow network's
    fc sits above a deep one's."""
    rows = _family_rows(table, comparator, "depth figure")
    rows = rows[rows["family"] == family]
    layers = layers or layer_order(table)
    present = [layer for layer in layers
               if rows[f"{SIMILARITY_PREFIX}{layer}"].notna().any()]
    positions = {layer: i for i, layer in enumerate(present)}
    _ceiling(ax, rows)
    trained = rows[~rows["untrained"]]
    colours = dict(zip(trained["network"], style.colour_cycle(len(trained)), strict=True))
    for _, row in rows.iterrows():
        values = [(positions[layer], row[f"{SIMILARITY_PREFIX}{layer}"]) for layer in present
                  if np.isfinite(row[f"{SIMILARITY_PREFIX}{layer}"])]
        x, y = zip(*values, strict=True)
        sd = [row.get(f"{SPREAD_PREFIX}{layer}", 0.0) for layer in present
              if np.isfinite(row[f"{SIMILARITY_PREFIX}{layer}"])]
        untrained = bool(row["untrained"])
        colour = "0.45" if untrained else colours[row["network"]]
        ax.errorbar(x, y, yerr=np.nan_to_num(np.asarray(sd, dtype=float)), color=colour,
                    linestyle="--" if untrained else "-", marker="o", markersize=3,
                    linewidth=1.0 if untrained else 1.4, capsize=1.5, elinewidth=0.7,
                    label=row["variant"] + (" (untrained)" if untrained else ""), zorder=2)
    ax.set_xticks(range(len(present)), present, rotation=45, ha="right")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(f"{comparator_label(comparator)} with V1")
    ax.set_title(f"family {family}")
    ax.axhline(0.0, color="0.3", linewidth=0.8)


def with_layer_spread(table: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``spread_{layer}``: each layer's SD over seeds (ddof 1) from the per-seed
    table (NaN with one seed)."""
    columns = [c for c in table.columns if c.startswith(SIMILARITY_PREFIX)]
    spread = seeds.groupby(["network", "comparator"], sort=False)[columns].std(ddof=1)
    spread.columns = [SPREAD_PREFIX + c.removeprefix(SIMILARITY_PREFIX) for c in columns]
    return table.merge(spread.reset_index(), on=["network", "comparator"], how="left")


def plot_layer_heatmap(ax, table: pd.DataFrame, comparator: str) -> None:
    """Variants (rows, grouped by family) × layers (columns, by depth): the similarity of each
    layer with V1, mean over seeds; blank where a variant has no such layer."""
    rows = _family_rows(table, comparator, "layer heatmap")
    rows = rows.sort_values(["family", "untrained", "variant"], kind="stable")
    layers = [layer for layer in layer_order(table)
              if rows[f"{SIMILARITY_PREFIX}{layer}"].notna().any()]
    values = rows[[f"{SIMILARITY_PREFIX}{layer}" for layer in layers]].to_numpy(dtype=float)
    limit = style.symmetric_limit(values, 100.0)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=style.SIGNED_CMAP, vmin=-limit,
                      vmax=limit, aspect="auto")
    labels = [f"{row['family']}: {row['variant']}" + (" (untrained)" if row["untrained"] else "")
              for _, row in rows.iterrows()]
    ax.set_yticks(range(len(rows)), labels if len(rows) <= 3 * MAX_LABELLED else [""] * len(rows))
    ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
    if values.size <= 12 * MAX_LABELLED:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black")
    ax.set_xlabel("layer (input → output)")
    ax.figure.colorbar(image, ax=ax, label=f"{comparator_label(comparator)} with V1", shrink=0.8)


@style.styled
def accuracy_figure(table: pd.DataFrame, comparator: str, *, correlation: dict | None = None):
    fig, axes = style.figure(4.2)
    ax = axes[0, 0]
    plot_accuracy_similarity(ax, table, comparator, correlation=correlation)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper")
    return fig


@style.styled
def depth_figure(table: pd.DataFrame, seeds: pd.DataFrame, comparator: str):
    table = with_layer_spread(table, seeds)
    families = list(dict.fromkeys(_family_rows(table, comparator, "depth figure")["family"]))
    n_columns = min(2, len(families))
    n_rows = int(np.ceil(len(families) / n_columns))
    fig, axes = style.figure(4.0 * n_rows + 0.4, n_rows, n_columns, sharey=True)
    for _, ax, family, _ in style.panels(axes, dict.fromkeys(families)):
        plot_depth_profile(ax, table, family, comparator)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncols=2, fontsize=6.5,
                  borderaxespad=0.0)
    return fig


@style.styled
def layers_figure(table: pd.DataFrame, comparator: str):
    n_variants = len(_family_rows(table, comparator, "layer heatmap"))
    fig, axes = style.figure(min(1.2 + 0.22 * n_variants, 9.5))
    plot_layer_heatmap(axes[0, 0], table, comparator)
    return fig


def family_figures(table: pd.DataFrame, seeds: pd.DataFrame, comparator: str, *,
                   correlation: dict | None = None) -> dict:
    """The three figures of :mod:`v1rsa.figures.families` by name (accuracy, depth, layers)."""
    return {"accuracy": accuracy_figure(table, comparator, correlation=correlation),
            "depth": depth_figure(table, seeds, comparator),
            "layers": layers_figure(table, comparator)}
