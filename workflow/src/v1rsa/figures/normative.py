"""Figures of the normative tilt CNN: its first-layer filters before and after training, and
its loss and accuracy per epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker

from v1rsa.figures import style

#: The course's hand-made filters, in the order of :func:`v1rsa.stimuli.handmade_filters`.
HANDMADE_NAMES = ("centre-surround", "surround-centre", "Gabor 0°", "Gabor 45°", "Gabor 90°",
                  "Gabor 135°")


def plot_filter(ax, weights, *, limit: float, title: str | None = None):
    """One 2-d filter (kernel_size × kernel_size), diverging colours at ±``limit``, no ticks.

    Returns the image.
    """
    image = ax.imshow(np.asarray(weights), cmap=style.SIGNED_CMAP, vmin=-limit, vmax=limit)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.5)
    if title:
        ax.set_title(title, fontsize=8)
    return image


@style.styled
def filters_figure(before, after, names=HANDMADE_NAMES, *,
                   before_label: str = "hand-made\n(initial)"):
    """Rows of filters: ``before`` (n, k, k) and ``after`` (m, k', k') training, and, when the
    shapes agree, the change (after − before), which is small next to the filters themselves.

    Each row has its own symmetric colour scale and colour bar. ``names`` title the columns when
    there are as many as filters before training.
    """
    before, after = np.asarray(before), np.asarray(after)
    rows = [(before, before_label), (after, "after\ntraining")]
    if before.shape == after.shape:
        rows.append((after - before, "change\n(after − before)"))
    n_columns = max(before.shape[0], after.shape[0])
    fig, axes = style.figure(1.45 * len(rows) + 0.3, len(rows), n_columns)
    for row, (filters, label) in enumerate(rows):
        limit = float(np.abs(filters).max()) or 1.0
        for column, ax in enumerate(axes[row]):
            if column >= filters.shape[0]:
                ax.set_visible(False)
                continue
            title = None
            if row == 0:
                title = names[column] if len(names) == before.shape[0] else f"channel {column}"
            image = plot_filter(ax, filters[column], limit=limit, title=title)
        axes[row, 0].set_ylabel(label)
        fig.colorbar(image, ax=list(axes[row]), label="weight", shrink=0.9, aspect=8)
    return fig


def plot_training_curves(ax_loss, ax_accuracy, history: pd.DataFrame, *,
                         test_accuracy: float | None = None) -> None:
    """Loss and accuracy per epoch for each split of ``history`` (columns ``epoch``,
    ``split``, ``loss``, ``accuracy``; validation gratings drawn as "held-out"), with the
    accuracy after training on a second set of held-out gratings, and chance (0.5)."""
    for split, rows in history.groupby("split", sort=False):
        colour = style.SPLIT_COLOURS.get(str(split))
        label = style.SPLIT_LABELS.get(str(split), str(split))
        ax_loss.plot(rows["epoch"], rows["loss"], marker="o", markersize=3, label=label,
                     color=colour)
        ax_accuracy.plot(rows["epoch"], rows["accuracy"], marker="o", markersize=3,
                         label=label, color=colour)
    ax_loss.set_ylabel("loss (binary cross-entropy)")
    ax_accuracy.axhline(0.5, color="0.5", linestyle=":", linewidth=1, label="chance")
    if test_accuracy is not None:
        ax_accuracy.axhline(test_accuracy, color=style.TRUTH_COLOUR, linestyle="--", linewidth=1,
                            label=f"after training, new {style.HELD_OUT} gratings: "
                                  f"{test_accuracy:.3f}")
    ax_accuracy.set_ylim(0.4, 1.02)
    ax_accuracy.set_ylabel("accuracy (fraction correct)")
    for ax in (ax_loss, ax_accuracy):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


@style.styled
def training_figure(history: pd.DataFrame, test_accuracy: float | None = None):
    """Loss (left) and accuracy (right) per epoch (:func:`plot_training_curves`)."""
    fig, axes = style.figure(3.1, 1, 2)
    plot_training_curves(axes[0, 0], axes[0, 1], history, test_accuracy=test_accuracy)
    # one legend under both panels, clear of the curves
    legend = {}
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=len(legend))
    return fig


def normative_figures(before, after, history: pd.DataFrame, test_accuracy=None,
                      *, handmade_init: bool = True) -> dict:
    """The normative family: ``{"filters": Figure, "training": Figure}``.

    before: (6, 7, 7) the hand-made filters; after: (n_channels, k, k) the trained
    ``conv.weight``; handmade_init: whether training started from the hand-made filters (if not,
    they are shown for reference only).
    """
    before_label = "hand-made\n(initial)" if handmade_init else "hand-made\n(not used)"
    return {
        "filters": filters_figure(before, after, before_label=before_label),
        "training": training_figure(history, test_accuracy),
    }
