"""Figures of receptive fields mapped by occlusion: discrepancy maps of example units per layer,
and the receptive-field size of each layer (``v1rsa.receptive_fields``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from v1rsa.figures import style
from v1rsa.receptive_fields import receptive_field_sizes

#: Colour of the receptive-field outline and of the unit's own position, on the sequential map.
OUTLINE_COLOUR = "white"


def unit_title(unit: xr.Dataset) -> str:
    """``"channel 3"`` for a unit of a (C, H, W) layer, ``"unit 7"`` otherwise."""
    channel = int(unit["channel"])
    return f"channel {channel}" if channel >= 0 else f"unit {int(unit['unit_index'])}"


def plot_discrepancy_map(ax, unit: xr.Dataset, *, show_position: bool = True):
    """One unit's discrepancy map divided by its maximum (0…1), its receptive field outlined.

    unit: one ``unit`` of :func:`v1rsa.receptive_fields.receptive_field_dataset`'s output
    (``fields.isel(unit=k)``). Axes in image pixels (patch centres); the unit's own position on
    the image is marked with a cross where the layer has one. Returns the image.
    """
    stride = unit.attrs.get("stride", 1)
    y, x = unit["y"].values, unit["x"].values
    peak = float(unit["max_discrepancy"])
    relative = unit["discrepancy"].values / peak if peak > 0 else unit["discrepancy"].values * 0
    extent = (x[0] - stride / 2, x[-1] + stride / 2, y[-1] + stride / 2, y[0] - stride / 2)
    image = ax.imshow(relative, cmap=style.DISSIMILARITY_CMAP, vmin=0, vmax=1, extent=extent)
    inside = unit["receptive_field"].values.astype(float)
    if 0 < inside.sum() < inside.size:
        ax.contour(x, y, inside, levels=[0.5], colors=OUTLINE_COLOUR, linewidths=0.8)
    if show_position and np.isfinite(float(unit["unit_y_px"])):
        ax.plot(float(unit["unit_x_px"]), float(unit["unit_y_px"]), marker="+", markersize=6,
                color=OUTLINE_COLOUR, markeredgewidth=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():  # the map's frame is the image's border
        spine.set_visible(True)
        spine.set_linewidth(0.5)
    return image


def plot_receptive_field_sizes(ax, sizes: pd.DataFrame) -> None:
    """The receptive-field area of each layer as a percentage of the image, on a log axis: the
    median over responsive units (dot) and the smallest to largest (bar). sizes: from
    :func:`v1rsa.receptive_fields.receptive_field_sizes`, plus ``image_area_px``."""
    position = np.arange(len(sizes))
    scale = 100.0 / sizes["image_area_px"].to_numpy()
    median = sizes["area_px"].to_numpy() * scale
    low = sizes["area_px_min"].to_numpy() * scale
    high = sizes["area_px_max"].to_numpy() * scale
    ax.errorbar(position, median, yerr=[median - low, high - median], fmt="o",
                color=style.PALETTE[0], capsize=3)
    ax.set_xticks(position, sizes["layer"].tolist(), rotation=30, ha="right")
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    style.log_axis(ax, "y")
    ax.set_ylim(top=100)  # the whole image
    ax.set_xlabel("layer")
    ax.set_ylabel("receptive field (% of image area)")
    ax.set_title("size per layer")


@style.styled
def receptive_fields_figure(fields: xr.Dataset, *, n_units: int = 6,
                            title: str | None = None) -> Figure:
    """Discrepancy maps of up to ``n_units`` responsive units per layer (one row each, on one
    relative colour scale) beside each layer's receptive-field size.

    fields: :func:`v1rsa.receptive_fields.receptive_field_dataset`'s output.
    """
    sizes = receptive_field_sizes(fields)
    sizes["image_area_px"] = fields.attrs["image_height"] * fields.attrs["image_width"]
    layers = sizes["layer"].tolist()
    image_ratio = fields.attrs["image_height"] / fields.attrs["image_width"]
    row_height = max(0.9, 1.25 * image_ratio * 6 / max(n_units, 1))
    fig = Figure(figsize=(style.WIDTH_IN, 0.6 + row_height * len(layers)), layout="constrained")
    maps_figure, size_figure = fig.subfigures(1, 2, width_ratios=[2.9, 1.1])
    axes = maps_figure.subplots(len(layers), n_units, squeeze=False)
    image = None
    for row, layer in enumerate(layers):
        units = fields.isel(unit=(fields["layer"].values == layer) & fields["responsive"].values)
        for column, ax in enumerate(axes[row]):
            if column >= units.sizes["unit"]:
                ax.set_visible(False)
                continue
            unit = units.isel(unit=column)
            image = plot_discrepancy_map(ax, unit)
            ax.set_title(unit_title(unit), fontsize=7.5)
        label = f"{layer}\n({sizes['n_responsive'].iloc[row]}/{sizes['n_units'].iloc[row]} " \
                "units)"
        axes[row, 0].set_visible(True)
        axes[row, 0].set_ylabel(label)
    if image is not None:
        maps_figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, aspect=25,
                             label="discrepancy / unit's maximum")
    maps_figure.suptitle(
        f"occlusion by {fields.attrs.get('patch_size', '?')}-pixel {fields.attrs.get('noise', '')}"
        f" noise; outline: > {style.number(fields.attrs['threshold'])} × maximum; +: the unit",
        fontsize=8)
    plot_receptive_field_sizes(size_figure.subplots(), sizes)
    if title:
        fig.suptitle(title)
    return fig


def receptive_field_figures(fields: xr.Dataset, *, n_units: int = 6,
                            title: str | None = None) -> dict[str, Figure]:
    """The receptive-field family: ``{"receptive_fields": Figure}``."""
    return {"receptive_fields": receptive_fields_figure(fields, n_units=n_units, title=title)}
