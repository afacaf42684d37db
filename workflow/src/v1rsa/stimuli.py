"""The stimuli the networks see: the Neuromatch binarised grating and hand-made 7 x 7 filters.

Everything here follows docs/science.md#stimuli. Angles are degrees from vertical: 0° gives vertical
bars, ±90° horizontal ones; a grating has no phase or noise, so θ and θ + 180° give the same image.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Canvas size (width, height) in pixels at ``res = 1``; ``res`` scales both.
CANVAS_WIDTH, CANVAS_HEIGHT = 640, 480


def _canvas(sf: float, res: float) -> tuple[np.ndarray, np.ndarray]:
    """The course's (H, W) grids ``xx, yy``: radians of grating phase along x and y."""
    if not (np.isfinite(sf) and sf > 0):
        raise ValueError(f"sf (spatial frequency) must be a positive number, got {sf}")
    if not (np.isfinite(res) and res > 0):
        raise ValueError(f"res (resolution) must be a positive number, got {res}")
    return np.meshgrid(sf * np.arange(0, CANVAS_WIDTH * res) / res,
                       sf * np.arange(0, CANVAS_HEIGHT * res) / res)


def image_shape(res: float) -> tuple[int, int]:
    """(H, W) pixels of a grating at resolution ``res`` (48 × 64 at 0.1), as :func:`gratings`
    makes it."""
    return (len(np.arange(0, CANVAS_HEIGHT * res)), len(np.arange(0, CANVAS_WIDTH * res)))


def gratings(orientations_deg, sf: float = 1 / 28, res: float = 0.1,
             offset: float = 0.0) -> np.ndarray:
    """Binarised gratings, one per orientation: (n, H, W) float32 with values {offset, 1 + offset}.

    orientations_deg: (n,) degrees from vertical. H, W = 480·res, 640·res (48 × 64 at 0.1,
    12 × 16 at 0.025). The normative CNN sees offset 0 ({0, 1}); the encoding model −0.5.
    """
    angle = np.deg2rad(np.asarray(orientations_deg, dtype=np.float64))
    if angle.ndim != 1:
        raise ValueError(f"orientations_deg must be 1-d (one angle per grating), "
                         f"got shape {angle.shape}")
    if not np.all(np.isfinite(angle)):
        raise ValueError("orientations_deg holds NaN or infinite angles")
    xx, yy = _canvas(sf, res)
    phase = (xx[None] * np.cos(angle)[:, None, None]
             + yy[None] * np.sin(angle)[:, None, None])
    # The course sets cos < 0 to 0 and cos > 0 to 1, so an exact zero stays 0.
    return (np.cos(phase) > 0).astype(np.float32) + np.float32(offset)


def grating(angle_deg: float, sf: float = 1 / 28, res: float = 0.1) -> np.ndarray:
    """One binarised grating in {0, 1}: (H, W) float32 (see :func:`gratings`)."""
    return gratings([angle_deg], sf=sf, res=res)[0]


def handmade_filters(zero_mean: bool = False) -> np.ndarray:
    """The course's six 7 × 7 filters: (6, 7, 7) float32, each scaled to max |value| = 1.

    Channels: centre-surround, its negative, Gabors at 0°, 45°, 90°, 135° (docs/science.md#filters).
    ``zero_mean=True`` gives the encoding model's copy: after the division by max |value|, each
    filter's mean is subtracted (the course's order), so its max |value| is then no longer 1.
    """
    grid = np.linspace(-3.5, 3.5, 7)
    x, y = np.meshgrid(grid, grid, indexing="ij")
    r = np.sqrt(x**2 + y**2)
    centre_surround = np.exp(-r / (2 * 1.1**2)) - 0.5 * np.exp(-r / (2 * 2.2**2))
    envelope = np.exp(-r / (2 * 0.44**2))
    gabors = [envelope * np.cos(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / 10
                                + np.pi / 2)
              for theta in np.deg2rad([0.0, 45.0, 90.0, 135.0])]
    filters = np.stack([centre_surround, -centre_surround, *gabors])
    filters /= np.abs(filters).max(axis=(1, 2), keepdims=True)
    if zero_mean:
        filters -= filters.mean(axis=(1, 2), keepdims=True)
    return filters.astype(np.float32)


def random_tilt_orientations(n: int, seed: int | np.random.Generator) -> np.ndarray:
    """(n,) float64 degrees drawn uniformly in [−90, 90): the tilt task's training angles."""
    if int(n) != n or n < 1:
        raise ValueError(f"n (number of orientations) must be a positive integer, got {n}")
    return np.random.default_rng(seed).uniform(-90.0, 90.0, int(n))


def unseen(images, seen_images) -> np.ndarray:
    """(n,) bool: which of ``images`` (n, H, W) equal none of ``seen_images`` (m, H, W) pixel for
    pixel. Binarised gratings at nearby angles are often the same image (at 48 × 64 pixels, 92 of
    1,000 random test angles give an image of the 1,000 training angles), so a held-out score
    keeps only the images a network was never shown."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    seen_images = np.ascontiguousarray(seen_images, dtype=np.float32)
    if images.shape[1:] != seen_images.shape[1:]:
        raise ValueError(f"images {images.shape[1:]} and seen_images {seen_images.shape[1:]} "
                         "differ in size")
    seen = {image.tobytes() for image in seen_images}
    return np.array([image.tobytes() not in seen for image in images], dtype=bool)


def tilt_labels(orientation_deg) -> np.ndarray:
    """(n,) int64 tilt labels: 1 where the grating is tilted right (angle > 0°), else 0."""
    return (np.asarray(orientation_deg, dtype=np.float64) > 0).astype(np.int64)


def stimulus_set(orientations_deg, *, sf: float = 1 / 28, res: float = 0.1, offset: float = 0.0,
                 labels=None) -> xr.Dataset:
    """Gratings labelled as the ``results/stimuli/{stimset}.nc`` contract asks.

    Returns ``image(stimulus, y, x)`` float32, coords ``stimulus`` (int64 index) and
    ``orientation(stimulus)`` float64 degrees, ``label(stimulus)`` int64 when ``labels`` is
    given; attrs ``sf`` (radians of grating phase per pixel of the 640 × 480 canvas, so one
    period spans 2π/sf canvas pixels), ``res`` and ``offset``.
    """
    orientations_deg = np.asarray(orientations_deg, dtype=np.float64)
    images = gratings(orientations_deg, sf=sf, res=res, offset=offset)
    n_stimuli = orientations_deg.shape[0]
    data_vars = {"image": (("stimulus", "y", "x"), images)}
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_stimuli,):
            raise ValueError(f"labels must have one entry per orientation ({n_stimuli},), "
                             f"got shape {labels.shape}")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError("labels must be integers (class indices)")
        data_vars["label"] = (("stimulus",), labels.astype(np.int64))
    return xr.Dataset(
        data_vars,
        coords={
            "stimulus": ("stimulus", np.arange(n_stimuli, dtype=np.int64)),
            "orientation": ("stimulus", orientations_deg),
        },
        attrs={"sf": float(sf), "res": float(res), "offset": float(offset)},
    )


def image_batch(images, image_shape: tuple[int, int], network: str):
    """Check a batch of grating images for a network and give it a channel dim.

    images: torch tensor (n, H, W) or (n, 1, H, W) → (n, 1, H, W); raises ``ValueError`` naming
    the network and the expected shape otherwise.
    """
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) != tuple(image_shape):
        raise ValueError(f"{network} expects (n, {image_shape[0]}, {image_shape[1]}) images, "
                         f"got shape {tuple(images.shape)}")
    return images
