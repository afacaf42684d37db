"""Receptive fields of network units, mapped by occlusion with noise.

The course's lecture (after Zhou et al. 2015, "Object detectors emerge in deep scene CNNs")
finds what a unit looks at by covering part of the image with a patch of noise and measuring
how much the unit's activation changes. For a unit ``u`` and a patch centred at pixel
``(y, x)`` the *discrepancy* is

    D_u(y, x) = mean over images g and noise draws d of |a_u(occluded_{g,y,x,d}) − a_u(image_g)|,

in the units of the layer's output. The map is kept at the patch centres (every ``stride``
pixels from pixel 0), not spread over the pixels a patch covers. A patch of ``patch_size`` ×
``patch_size`` pixels centred at ``(y, x)`` covers rows ``y − (patch_size − 1) // 2`` …
``y + patch_size // 2`` (and columns alike), clipped at the image border, so every pixel can be
a centre. A unit that reads exactly the pixels of a box therefore has a non-zero map on that
box dilated by the patch: with a 1-pixel patch the map is non-zero exactly on the box.

Occlusion happens in stimulus space, before the network's input adapter: the noise takes values
in the stimulus' own ``value_range`` (low, high) — ``uniform`` in [low, high], ``binary`` low or
high with probability ½ (the grating's own two values), ``gaussian`` with the grating's mean
(low + high) / 2 and standard deviation (high − low) / 2 — independently per pixel and draw,
from a generator seeded by (seed, image, position), so the maps depend neither on the batch
size nor on the device.

The *empirical receptive field* of a unit is where ``D_u > threshold · max D_u``; its size is
the number of such centres × stride² (pixels, and as a fraction of the map), with the bounding
box's height and width. A unit whose map is zero everywhere (silent for every occlusion) has no
receptive field and is marked not ``responsive``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from v1rsa import logs
from v1rsa.activations import adapt_images, grating_images, layer_shapes, record_activations

log = logging.getLogger(__name__)

NOISE_DISTRIBUTIONS = ("uniform", "gaussian", "binary")

#: Most occluded images per forward pass on a CPU. A pass over 1024 images of 48 × 64 makes a
#: fresh tensor of ~75 MB per convolutional layer (page faults, cache misses); passes of 128
#: reuse memory that is already in cache and run about 3 times faster (the normative CNN).
CPU_PASS_SIZE = 128


def patch_centres(height: int, width: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (pixels, int64) of the patch centres: ``0, stride, 2·stride, …``."""
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer (pixels), got {stride!r}")
    return (np.arange(0, height, stride, dtype=np.int64),
            np.arange(0, width, stride, dtype=np.int64))


def draw_noise(rng: np.random.Generator, shape, distribution: str,
               value_range: Sequence[float]) -> np.ndarray:
    """Pixel noise of ``shape`` (float32) from one of :data:`NOISE_DISTRIBUTIONS` with the
    stimulus' ``value_range`` = (low, high) (the module docstring gives each)."""
    low, high = (float(v) for v in value_range)
    if distribution == "uniform":
        noise = rng.uniform(low, high, shape)
    elif distribution == "binary":
        noise = np.where(rng.random(shape) < 0.5, low, high)
    elif distribution == "gaussian":
        noise = rng.normal((low + high) / 2, (high - low) / 2, shape)
    else:
        raise ValueError(f"unknown noise distribution {distribution!r}; expected one of "
                         f"{list(NOISE_DISTRIBUTIONS)}")
    return noise.astype(np.float32)


def default_units(shapes: Mapping[str, tuple[int, ...]], max_units: int = 64
                  ) -> dict[str, np.ndarray]:
    """Units to map when none are named: for a layer of shape (channels, height, width) the
    unit at the spatial centre (height // 2, width // 2) of each channel; for any other layer
    every unit. At most ``max_units`` per layer, evenly spaced. Returns flat indices (int64)."""
    units = {}
    for layer, shape in shapes.items():
        if len(shape) == 3:
            n_channels, height, width = shape
            index = np.ravel_multi_index(
                (np.arange(n_channels), np.full(n_channels, height // 2),
                 np.full(n_channels, width // 2)), shape)
        else:
            index = np.arange(int(np.prod(shape)))
        if index.size > max_units:
            index = index[np.unique(np.linspace(0, index.size - 1, max_units).round().astype(int))]
        units[layer] = index.astype(np.int64)
    return units


def discrepancy_maps(
    model: nn.Module,
    images,
    units: Mapping[str, Sequence[int]],
    *,
    patch_size: int,
    stride: int = 1,
    noise: str = "uniform",
    value_range: Sequence[float] = (0.0, 1.0),
    n_draws: int = 8,
    seed: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1024,
    device=None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Discrepancy maps of chosen units: the mean |change of activation| per patch position.

    images: (n_images, H, W) grey stimuli with values in ``value_range``; units: ``{layer:
    flat unit indices}`` (as :func:`v1rsa.activations.record_activations` flattens a layer).
    transform: maps a (b, H, W) tensor of stimuli to the network's input (e.g.
    :func:`v1rsa.activations.adapt_images`); None adds a channel dim. Every image is occluded at
    every patch centre of :func:`patch_centres` with ``n_draws`` noise patches; the occluded
    images (positions × draws, for as many images as fit) are made in batches of about
    ``batch_size`` and go through the network on ``device``, under ``torch.inference_mode``, in
    passes of ``batch_size`` (on a CPU at most :data:`CPU_PASS_SIZE`). The noise of image
    ``g`` at position ``k`` is drawn by ``numpy.random.default_rng([seed, g, k])``, so the maps
    depend neither on ``batch_size`` nor on the device. Returns ``{layer: (n_units, n_y, n_x)
    float32}`` (module docstring).
    """
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    if int(patch_size) != patch_size or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer (pixels), got {patch_size!r}")
    if noise not in NOISE_DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {noise!r}; expected one of "
                         f"{list(NOISE_DISTRIBUTIONS)}")
    images = images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    if images.ndim != 3 or 0 in images.shape:
        raise ValueError(f"images must be (n_images, H, W) grey stimuli, got shape "
                         f"{tuple(images.shape)}")
    if not units:
        raise ValueError("no units to map: units is empty")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    transform = transform or (lambda x: x[:, None])
    layers = list(units)
    n_images, height, width = images.shape
    centres_y, centres_x = patch_centres(height, width, stride)
    n_x, n_positions = centres_x.size, centres_y.size * centres_x.size  # row-major
    # first row and column of each patch in the image padded by patch_size on every side
    top = torch.as_tensor(centres_y - (patch_size - 1) // 2 + patch_size, device=device)
    left = torch.as_tensor(centres_x - (patch_size - 1) // 2 + patch_size, device=device)
    offsets = torch.arange(patch_size, device=device)
    images = images.to(device=device, dtype=torch.float32)
    pass_size = min(batch_size, CPU_PASS_SIZE) if device.type == "cpu" else batch_size

    original = record_activations(model, transform(images), layers, batch_size=pass_size,
                                  device=device, units=units)
    totals = {layer: np.zeros((n_positions, original[layer].shape[1])) for layer in layers}
    pairs_per_batch = max(1, batch_size // n_draws)  # (image, position) pairs, all draws each
    n_pairs = n_images * n_positions
    with torch.inference_mode():
        for start in logs.progress(range(0, n_pairs, pairs_per_batch), desc="occlusion",
                                   unit="batch", enabled=progress):
            pair = np.arange(start, min(start + pairs_per_batch, n_pairs))
            image, position = pair // n_positions, pair % n_positions
            patches = np.stack([
                draw_noise(np.random.default_rng([seed, g, k]),
                           (n_draws, patch_size, patch_size), noise, value_range)
                for g, k in zip(image.tolist(), position.tolist(), strict=True)])
            position_on_device = torch.as_tensor(position, device=device)
            rows = (top[position_on_device // n_x][:, None] + offsets).repeat_interleave(
                n_draws, dim=0)  # (pairs × draws, patch_size)
            columns = (left[position_on_device % n_x][:, None] + offsets).repeat_interleave(
                n_draws, dim=0)
            occluded = nn.functional.pad(
                images[torch.as_tensor(image, device=device)].repeat_interleave(n_draws, dim=0),
                (patch_size,) * 4)
            sample = torch.arange(occluded.shape[0], device=device)[:, None, None]
            occluded[sample, rows[:, :, None], columns[:, None, :]] = torch.as_tensor(
                patches, device=device).reshape(-1, patch_size, patch_size)
            # contiguous: the convolution reads a strided crop about 10 % slower than a copy
            occluded = occluded[:, patch_size:patch_size + height,
                                patch_size:patch_size + width].contiguous()
            recorded = record_activations(model, transform(occluded), layers,
                                          batch_size=pass_size, device=device, units=units)
            for layer in layers:
                change = np.abs(recorded[layer].reshape(len(pair), n_draws, -1)
                                - original[layer][image][:, None])
                np.add.at(totals[layer], position, change.mean(axis=1, dtype=np.float64))
    return {layer: (total / n_images).T.reshape(-1, centres_y.size, n_x).astype(np.float32)
            for layer, total in totals.items()}


def receptive_field_dataset(
    maps: Mapping[str, np.ndarray],
    units: Mapping[str, Sequence[int]],
    shapes: Mapping[str, tuple[int, ...]],
    *,
    image_shape: tuple[int, int],
    stride: int,
    threshold: float,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """Label discrepancy maps and measure each unit's empirical receptive field.

    maps: ``{layer: (n_units, n_y, n_x)}`` from :func:`discrepancy_maps`; units: the flat unit
    indices mapped; shapes: each layer's output shape per stimulus
    (:func:`v1rsa.activations.layer_shapes`); image_shape: (H, W) of the stimuli, pixels.
    Returns, with one ``unit`` per mapped unit of every layer (in order):

    - ``discrepancy(unit, y, x)`` float32, ``receptive_field(unit, y, x)`` bool (``D >
      threshold · max D``), ``max_discrepancy(unit)``, ``responsive(unit)`` (max > 0);
    - ``area_px(unit)`` (centres in the field × stride²), ``area_fraction(unit)`` (of the map),
      ``height_px(unit)``, ``width_px(unit)`` (bounding box: centres spanned × stride), all NaN
      where not responsive;
    - coords ``y``, ``x`` (patch centres, pixels), ``layer(unit)``, ``unit_index(unit)`` (flat
      index in the layer), ``channel(unit)`` (−1 when the layer is not (C, H, W)), and
      ``unit_y_px(unit)``, ``unit_x_px(unit)``: the unit's position mapped onto the image,
      ``(i + ½)·H / H_layer − ½`` (NaN when not (C, H, W));
    - attrs ``threshold``, ``stride``, ``image_height``, ``image_width``, ``layers`` and
      ``attrs``.
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a fraction of the maximum in [0, 1), got "
                         f"{threshold}")
    height, width = (int(v) for v in image_shape)
    centres_y, centres_x = patch_centres(height, width, stride)
    discrepancy, layer_of, unit_index, channel, unit_y, unit_x = [], [], [], [], [], []
    for layer, layer_maps in maps.items():
        layer_maps = np.asarray(layer_maps, dtype=np.float32)
        index = np.asarray(units[layer], dtype=np.int64)
        if layer_maps.shape != (index.size, centres_y.size, centres_x.size):
            raise ValueError(f"maps of layer {layer!r} must be ({index.size}, {centres_y.size}, "
                             f"{centres_x.size}), got {layer_maps.shape}")
        discrepancy.append(layer_maps)
        layer_of += [layer] * index.size
        unit_index.append(index)
        shape = tuple(shapes[layer])
        if len(shape) == 3:
            c, i, j = np.unravel_index(index, shape)
            channel.append(c)
            unit_y.append((i + 0.5) * height / shape[1] - 0.5)
            unit_x.append((j + 0.5) * width / shape[2] - 0.5)
        else:
            channel.append(np.full(index.size, -1))
            unit_y.append(np.full(index.size, np.nan))
            unit_x.append(np.full(index.size, np.nan))
    discrepancy = np.concatenate(discrepancy)
    peak = discrepancy.max(axis=(1, 2))
    responsive = peak > 0
    inside = discrepancy > threshold * peak[:, None, None]
    inside &= responsive[:, None, None]
    n_inside = inside.sum(axis=(1, 2)).astype(np.float64)
    rows, columns = inside.any(axis=2), inside.any(axis=1)

    def span(hit):  # centres from the first to the last hit, × stride (pixels)
        first = np.argmax(hit, axis=1)
        last = hit.shape[1] - 1 - np.argmax(hit[:, ::-1], axis=1)
        return np.where(responsive, (last - first + 1) * stride, np.nan)

    per_unit = ("unit",)
    return xr.Dataset(
        {
            "discrepancy": (("unit", "y", "x"), discrepancy),
            "receptive_field": (("unit", "y", "x"), inside),
            "max_discrepancy": (per_unit, peak),
            "responsive": (per_unit, responsive),
            "area_px": (per_unit, np.where(responsive, n_inside * stride**2, np.nan)),
            "area_fraction": (per_unit, np.where(responsive, n_inside / inside[0].size, np.nan)),
            "height_px": (per_unit, span(rows)),
            "width_px": (per_unit, span(columns)),
        },
        coords={
            "unit": ("unit", np.arange(discrepancy.shape[0], dtype=np.int64)),
            "y": ("y", centres_y),
            "x": ("x", centres_x),
            "layer": ("unit", np.array(layer_of, dtype=str)),
            "unit_index": ("unit", np.concatenate(unit_index)),
            "channel": ("unit", np.concatenate(channel).astype(np.int64)),
            "unit_y_px": ("unit", np.concatenate(unit_y).astype(np.float64)),
            "unit_x_px": ("unit", np.concatenate(unit_x).astype(np.float64)),
        },
        attrs={**dict(attrs or {}), "threshold": float(threshold), "stride": int(stride),
               "image_height": height, "image_width": width, "layers": ",".join(maps)},
    )


def receptive_field_sizes(fields: xr.Dataset) -> pd.DataFrame:
    """Receptive-field size per layer, over its responsive units: one row per layer (in
    order) of :func:`receptive_field_dataset`'s output with ``n_units``,
    ``n_responsive``, the median ``area_px``, ``area_fraction``, ``height_px``, ``width_px``,
    and the smallest and largest area (``area_px_min``, ``area_px_max``)."""
    rows = []
    for layer in dict.fromkeys(fields["layer"].values.tolist()):
        units = fields.isel(unit=fields["layer"].values == layer)
        responsive = units.isel(unit=units["responsive"].values)
        row = {"layer": layer, "n_units": units.sizes["unit"],
               "n_responsive": responsive.sizes["unit"]}
        for name in ("area_px", "area_fraction", "height_px", "width_px"):
            values = responsive[name].values
            row[name] = float(np.median(values)) if values.size else np.nan
        area = responsive["area_px"].values
        row["area_px_min"] = float(area.min()) if area.size else np.nan
        row["area_px_max"] = float(area.max()) if area.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def grating_receptive_fields(
    model: nn.Module,
    layers: Sequence[str],
    *,
    n_gratings: int,
    sf: float,
    res: float,
    offset: float = 0.0,
    shift_deg: float = 0.0,
    input_adapter: Mapping | None = None,
    units: Mapping[str, Sequence[int]] | None = None,
    max_units: int = 64,
    patch_size: int,
    stride: int = 1,
    noise: str = "uniform",
    n_draws: int = 8,
    threshold: float = 0.25,
    seed: int = 0,
    batch_size: int = 1024,
    device=None,
) -> xr.Dataset:
    """Receptive fields of units of ``layers`` over ``n_gratings`` of the course's gratings.

    The gratings are at ``n_gratings`` orientations evenly spaced over −90…90° (+
    ``shift_deg``), values ``{0, 1} + offset`` at resolution ``res``, shown through
    :func:`v1rsa.activations.adapt_images` with ``input_adapter`` when given (occlusion happens
    before it, in grating pixels, with noise in [offset, 1 + offset]). units: ``{layer: flat
    indices}`` for some layers; the others get :func:`default_units`. Other arguments: see
    :func:`discrepancy_maps` and :func:`receptive_field_dataset`, whose Dataset this returns
    (attrs add the settings and ``orientation_deg``).
    """
    if int(n_gratings) != n_gratings or n_gratings < 1:
        raise ValueError(f"n_gratings must be a positive integer, got {n_gratings!r}")
    orientation_deg = -90.0 + 180.0 * np.arange(n_gratings) / n_gratings
    images = torch.from_numpy(grating_images(orientation_deg, sf=sf, res=res, offset=offset,
                                             shift_deg=shift_deg))
    value_range = (float(offset), float(offset) + 1.0)
    if input_adapter is not None:
        def transform(stimuli):
            return adapt_images(stimuli, **input_adapter)
    else:
        def transform(stimuli):
            return stimuli[:, None]
    shapes = layer_shapes(model, transform(images[:1]), layers)
    chosen = default_units({layer: shapes[layer] for layer in layers}, max_units)
    unknown = sorted(set(units or {}) - set(layers))
    if unknown:
        raise ValueError(f"units name layer(s) {unknown} that are not among the layers mapped "
                         f"{list(layers)}")
    chosen.update({layer: np.asarray(index, dtype=np.int64)
                   for layer, index in (units or {}).items()})
    log.info("mapping %s units of layers %s over %d gratings of %d × %d pixels",
             {layer: len(index) for layer, index in chosen.items()}, list(layers), n_gratings,
             *images.shape[1:])
    maps = discrepancy_maps(model, images, chosen, patch_size=patch_size, stride=stride,
                            noise=noise, value_range=value_range, n_draws=n_draws, seed=seed,
                            transform=transform, batch_size=batch_size, device=device)
    return receptive_field_dataset(
        maps, chosen, shapes, image_shape=tuple(images.shape[1:]), stride=stride,
        threshold=threshold,
        attrs={"patch_size": int(patch_size), "noise": noise, "n_draws": int(n_draws),
               "seed": int(seed), "orientation_deg": orientation_deg + shift_deg,
               "value_low": value_range[0], "value_high": value_range[1]},
    )
