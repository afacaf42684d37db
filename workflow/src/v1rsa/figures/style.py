"""The one style of every v1rsa figure: fonts, colours, colour maps, axes, layout and saving.

Every figure is ``WIDTH_IN`` inches wide (a two-column journal figure, 183 mm) with a constrained
layout, so labels never overlap and a PNG at ``DPI`` is ``WIDTH_IN * DPI`` pixels wide. Colours
are the Okabe–Ito palette (readable with colour-vision deficiencies); orientation uses a cyclic
colour map, dissimilarity a sequential one, signed quantities a diverging one centred on 0.
Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state) with the
non-interactive Agg backend.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from v1rsa.io import atomic_path  # noqa: E402
from v1rsa.provenance import PNG_KEY  # noqa: E402
from v1rsa.provenance import encode as encode_provenance  # noqa: E402

#: Okabe–Ito colours (less the yellow, too faint on white), in the order lines and bars take
#: them.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Train and held-out curves look the same in every figure, and data a model never learnt from
#: is called "held-out" in every figure, whichever split it comes from.
SPLIT_COLOURS = {"train": PALETTE[0], "test": PALETTE[1], "validation": PALETTE[1]}
SPLIT_LABELS = {"train": "train", "test": "held-out", "validation": "held-out"}
HELD_OUT = "held-out"
#: The simulator's truth and reference lines.
TRUTH_COLOUR = "black"
#: Orientation is circular: 0° and 360° (and −90°/+90° for a grating) get the same colour.
ORIENTATION_CMAP = "twilight"
#: Dissimilarity runs from 0 (identical) upwards: sequential and perceptually uniform.
DISSIMILARITY_CMAP = "viridis"
#: Signed quantities (z-scored responses, weights): diverging, white at 0.
SIGNED_CMAP = "RdBu_r"

WIDTH_IN = 7.2
DPI = 150
#: Formats of the vector copy beside each PNG.
VECTOR_FORMATS = ("pdf", "svg")

RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "legend.frameon": False,
    "image.interpolation": "nearest",
    "mathtext.default": "regular",
    "image.cmap": DISSIMILARITY_CMAP,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    # text stays text in vector copies, editable in Illustrator/Inkscape
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    # the same ids in every SVG, so reruns write identical files
    "svg.hashsalt": "v1rsa",
}


def styled(function):
    """Run ``function`` with the figure style in force (rcParams are read when drawing)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return function(*args, **kwargs)

    return wrapper


@styled
def figure(height_in: float, nrows: int = 1, ncols: int = 1, *, width_in: float = WIDTH_IN,
           squeeze: bool = False, **subplots) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure ``width_in`` × ``height_in`` inches and its grid of Axes.

    Returns ``(figure, axes)`` with ``axes`` a 2-d array (``squeeze=False``) of shape
    ``(nrows, ncols)``; extra keywords go to :meth:`Figure.subplots`.
    """
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplots)
    return fig, axes


@styled
def save(fig: Figure, png_path: str | os.PathLike, vector_path: str | os.PathLike | None = None,
         *, dpi: int = DPI, provenance: Mapping | None = None) -> None:
    """Write ``fig`` as a PNG at ``dpi`` and, when given, a vector copy (PDF or SVG), atomically.

    The vector format is the suffix of ``vector_path``. Dates are left out of the files so that
    reruns write identical bytes. provenance: a :func:`v1rsa.provenance.record`, kept in each
    file's metadata (PNG text ``Provenance``, SVG ``description``, PDF ``Subject``).
    """
    text = None if provenance is None else encode_provenance(provenance)
    png_metadata = {"Software": None} if text is None else {"Software": None, PNG_KEY: text}
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=png_metadata)
    if vector_path is not None:
        fmt = os.fspath(vector_path).rsplit(".", 1)[-1].lower()
        if fmt not in VECTOR_FORMATS:
            raise ValueError(f"{vector_path}: a vector copy must end in one of "
                             f"{['.' + f for f in VECTOR_FORMATS]}")
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None}
        if text is not None:
            metadata["Subject" if fmt == "pdf" else "Description"] = text
        if fmt == "svg":
            buffer = io.StringIO()
            fig.savefig(buffer, format=fmt, metadata=metadata)
            with atomic_path(vector_path) as tmp:
                with open(tmp, "w", encoding="utf-8") as file:
                    file.write(stable_clip_ids(buffer.getvalue()))
        else:
            with atomic_path(vector_path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=metadata)


def stable_clip_ids(svg: str) -> str:
    """``svg`` with its clip paths numbered in the order they are defined.

    Matplotlib names a clip path after a hash of its rectangle's float coordinates, so a layout
    that differs in the 15th digit between two runs (invisible in the drawing, whose coordinates
    are written to 6 decimals) gives other names and other bytes. Numbered, the file depends on
    what is drawn only.
    """
    names = {name: f"clip{i}" for i, name in
             enumerate(dict.fromkeys(re.findall(r'<clipPath id="([^"]+)"', svg)))}
    if not names:
        return svg
    pattern = re.compile(r'(id="|url\(#)(' + "|".join(map(re.escape, names)) + r')\b')
    return pattern.sub(lambda m: m.group(1) + names[m.group(2)], svg)


def save_figures(figures: Mapping[str, Figure], paths: Mapping[str, str], *,
                 dpi: int = DPI, provenance: Mapping | None = None, note: str = "") -> None:
    """Save each named figure to ``paths[name]`` (PNG) and ``paths[name + "_vector"]``, each
    with ``provenance`` (:func:`save`) and ``note`` above it (:func:`add_note`).

    ``paths``: e.g. ``dict(snakemake.output.items())`` of a plot rule. Raises ``KeyError``
    naming a figure that has no PNG path.
    """
    for name, fig in figures.items():
        if name not in paths:
            raise KeyError(f"figure {name!r} has no output path; expected one of {sorted(paths)}")
        if note:
            add_note(fig, note)
        save(fig, paths[name], paths.get(f"{name}_vector"), dpi=dpi, provenance=provenance)


@styled
def add_note(fig: Figure, note: str) -> None:
    """Print ``note`` as the first line of the figure's title (its suptitle, made if it has
    none), e.g. that the figure comes from a smoke-size run; the constrained layout makes room."""
    title = fig.get_suptitle()
    fig.suptitle(f"{note}\n{title}" if title else note)


def panels(axes, items: Mapping):
    """Pair each ``(name, value)`` of ``items`` with the next Axes of a grid, in reading order,
    and hide the Axes left over. Yields ``(index, ax, name, value)``."""
    axes = list(np.ravel(axes))
    for ax in axes[len(items):]:
        ax.set_visible(False)
    for index, (ax, (name, value)) in enumerate(zip(axes, items.items(), strict=False)):
        yield index, ax, name, value


def orientation_axis(ax, axis: str = "x", *, low: float = 0.0, high: float = 360.0,
                     step: float = 90.0, label: str | None = "stimulus orientation (°)") -> None:
    """Limits ``low``…``high`` degrees with ticks every ``step`` on the x or y axis of ``ax``."""
    ticks = np.arange(low, high + step / 2, step)
    if axis == "x":
        ax.set_xlim(low, high)
        ax.set_xticks(ticks)
        if label:
            ax.set_xlabel(label)
    elif axis == "y":
        ax.set_ylim(low, high)
        ax.set_yticks(ticks)
        if label:
            ax.set_ylabel(label)
    else:
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")


def sorted_neuron_ticks(ax, preferred_sorted_deg, axis: str = "y",
                        at_deg=(0.0, 90.0, 180.0, 270.0)) -> None:
    """Tick a neuron axis (neurons sorted by preferred orientation) with preferred angles.

    Each tick sits at the first neuron whose preferred orientation reaches ``at_deg``.
    preferred_sorted_deg: (n_neurons,) degrees in ascending order.
    """
    positions = np.searchsorted(np.asarray(preferred_sorted_deg), at_deg)
    labels = [f"{angle:g}°" for angle in at_deg]
    if axis == "y":
        ax.set_yticks(positions, labels)
    else:
        ax.set_xticks(positions, labels)


#: Most rows or columns of data an image shows; more are averaged in groups of neighbours.
MAX_IMAGE_PIXELS = 1000


def group_means(image, axis: int, max_size: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """``image`` (2-d) with runs of neighbours along ``axis`` averaged down to ``max_size``.

    No figure shows 23,589 neurons as 23,589 pixels; the renderer's anti-aliasing would average
    them anyway, once per output file. Group sizes differ by at most one; an image with at most
    ``max_size`` entries along ``axis`` comes back as it is.
    """
    image = np.asarray(image, dtype=np.float64)
    size = image.shape[axis]
    if size <= max_size:
        return image
    starts = np.linspace(0, size, max_size + 1).astype(int)[:-1]
    counts = np.diff(starts, append=size)
    return np.add.reduceat(image, starts, axis=axis) / np.expand_dims(counts, 1 - axis)


def symmetric_limit(values, percentile: float = 99.0) -> float:
    """A colour limit for signed data: the ``percentile`` of |values| (1.0 when all are 0)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    values = values[np.isfinite(values)]
    limit = float(np.percentile(values, percentile)) if values.size else 0.0
    return limit if limit > 0 else 1.0


def colour_cycle(n: int) -> list[str]:
    """``n`` colours from the palette, repeating when ``n`` exceeds its length."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def number(value: float, fmt: str = "g") -> str:
    """``value`` formatted with ``fmt``, with a typographic minus sign."""
    return format(value, fmt).replace("-", "−")


class PlainLogFormatter(ticker.Formatter):
    """Log-axis tick labels as plain numbers (0.3, 1, 40000) instead of 3×10⁻¹.

    Which ticks get a label is left to :class:`matplotlib.ticker.LogFormatter` (minor ticks are
    labelled only when the axis spans little more than a decade).
    """

    def __init__(self):
        self.inner = ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1.2, 0.6))

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs):
        super().set_locs(locs)
        self.inner.set_locs(locs)

    def __call__(self, x, pos=None):
        return number(x) if self.inner(x, pos) else ""


def log_axis(ax, axis: str = "y") -> None:
    """A log scale on the x or y axis of ``ax`` with plain-number tick labels."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_formatter(PlainLogFormatter())
    target.set_minor_formatter(PlainLogFormatter())


def legend_below(ax, **kwargs) -> None:
    """The legend of ``ax`` under its x label, one entry per row, clear of the data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1, borderaxespad=0.0,
              **kwargs)


def grating_norm(orientation_deg) -> Normalize:
    """Colour normalisation over one grating period (180°) from the multiple of 90° at or below
    the lowest angle: with the cyclic :data:`ORIENTATION_CMAP`, −90° and +90° (the same
    grating) get the same colour."""
    low = float(np.floor(np.min(orientation_deg) / 90.0) * 90.0)
    return Normalize(vmin=low, vmax=low + 180.0)

