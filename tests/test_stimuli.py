"""Gratings and hand-made filters, checked against the formulas of docs/science.md#stimuli."""

import math

import numpy as np
import pytest
from scipy import stats

from v1rsa import io, stimuli


def literal_grating(angle_deg, sf=1 / 28, res=0.1):
    """docs/science.md#gratings, pixel by pixel: cos(x·cos a + y·sin a) binarised,
    x, y = sf·index/res."""
    a = math.radians(angle_deg)
    width, height = math.ceil(640 * res), math.ceil(480 * res)
    image = np.zeros((height, width))
    for row in range(height):
        for col in range(width):
            x, y = sf * col / res, sf * row / res
            image[row, col] = 1.0 if math.cos(x * math.cos(a) + y * math.sin(a)) > 0 else 0.0
    return image


@pytest.mark.parametrize("res, shape", [(0.1, (48, 64)), (0.025, (12, 16))])
@pytest.mark.parametrize("angle", [-90.0, -37.5, 0.0, 12.0, 45.0, 90.0, 181.0])
def test_grating_is_the_course_formula(res, shape, angle):
    image = stimuli.grating(angle, res=res)
    assert image.shape == shape and image.dtype == np.float32
    np.testing.assert_array_equal(image, literal_grating(angle, res=res))


def test_grating_orientation_conventions():
    vertical = stimuli.grating(0.0)
    assert np.all(vertical == vertical[0]), "0° must give vertical bars (each column constant)"
    assert len(np.unique(vertical[0])) == 2
    for horizontal in (stimuli.grating(90.0), stimuli.grating(-90.0)):
        assert np.all(horizontal == horizontal[:, :1]), "±90° must give horizontal bars"
    for angle in (-80.0, -20.0, 0.0, 33.0, 60.0):
        np.testing.assert_array_equal(stimuli.grating(angle), stimuli.grating(angle + 180.0))
    assert not np.array_equal(stimuli.grating(20.0), stimuli.grating(-20.0))


def test_gratings_stack_single_gratings_and_apply_the_offset():
    angles = np.array([-60.0, 0.0, 30.0])
    stack = stimuli.gratings(angles, res=0.025, offset=-0.5)
    assert stack.shape == (3, 12, 16) and stack.dtype == np.float32
    assert set(np.unique(stack)) == {-0.5, 0.5}
    for image, angle in zip(stack, angles, strict=True):
        np.testing.assert_array_equal(image, stimuli.grating(angle, res=0.025) - 0.5)
    with pytest.raises(ValueError, match="1-d"):
        stimuli.gratings(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="res"):
        stimuli.gratings([0.0], res=0)


def literal_filters():
    """docs/science.md#filters element by element: grid linspace(−3.5, 3.5, 7), 'ij' indexing."""
    grid = [-3.5 + 7 * i / 6 for i in range(7)]
    filters = np.zeros((6, 7, 7))
    for i, x in enumerate(grid):
        for j, y in enumerate(grid):
            r = math.hypot(x, y)
            cs = math.exp(-r / (2 * 1.1**2)) - 0.5 * math.exp(-r / (2 * 2.2**2))
            filters[0, i, j], filters[1, i, j] = cs, -cs
            for k, theta_deg in enumerate((0, 45, 90, 135)):
                theta = math.radians(theta_deg)
                x_rot = x * math.cos(theta) + y * math.sin(theta)
                filters[2 + k, i, j] = (math.exp(-r / (2 * 0.44**2))
                                        * math.cos(2 * math.pi * x_rot / 10 + math.pi / 2))
    for f in filters:
        f /= np.abs(f).max()
    return filters


def test_handmade_filters_are_the_course_formulas():
    filters = stimuli.handmade_filters()
    assert filters.shape == (6, 7, 7) and filters.dtype == np.float32
    np.testing.assert_allclose(filters, literal_filters(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.abs(filters).max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(filters[1], -filters[0])


def test_zero_mean_filters_divide_then_subtract_the_mean():
    expected = literal_filters()
    expected -= expected.mean(axis=(1, 2), keepdims=True)
    filters = stimuli.handmade_filters(zero_mean=True)
    np.testing.assert_allclose(filters, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(filters.mean(axis=(1, 2)), 0.0, atol=1e-6)


def test_random_tilt_orientations_are_seeded_and_uniform():
    angles = stimuli.random_tilt_orientations(5000, seed=12)
    np.testing.assert_array_equal(angles, stimuli.random_tilt_orientations(5000, seed=12))
    assert not np.array_equal(angles, stimuli.random_tilt_orientations(5000, seed=13))
    assert angles.min() >= -90 and angles.max() < 90
    assert stats.kstest(angles, stats.uniform(loc=-90, scale=180).cdf).pvalue > 0.01
    generator = np.random.default_rng(3)
    assert stimuli.random_tilt_orientations(4, generator).shape == (4,)


def test_tilt_labels_mark_right_tilts():
    labels = stimuli.tilt_labels([-89.0, -0.5, 0.0, 0.5, 89.0])
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])
    assert labels.dtype == np.int64


def test_stimulus_set_follows_the_contract_and_round_trips(tmp_path):
    angles = np.array([-45.0, 10.0, 80.0])
    ds = stimuli.stimulus_set(angles, sf=1 / 28, res=0.1, offset=0.0,
                              labels=stimuli.tilt_labels(angles))
    path = tmp_path / "stimuli" / "tilt.nc"
    io.write_netcdf(ds, path)
    loaded = io.read_netcdf(path, ["image", "orientation", "label"],
                            dims={"image": ("stimulus", "y", "x"), "label": ("stimulus",)})
    assert loaded["image"].dtype == np.float32 and loaded["image"].shape == (3, 48, 64)
    assert loaded["orientation"].dtype == np.float64
    assert loaded["label"].dtype == np.int64
    np.testing.assert_array_equal(loaded["label"], [0, 1, 1])
    np.testing.assert_array_equal(loaded["orientation"], angles)
    np.testing.assert_array_equal(loaded["image"].values, stimuli.gratings(angles))
    assert loaded.attrs["res"] == 0.1 and loaded.attrs["offset"] == 0.0
    assert loaded.attrs["sf"] == pytest.approx(1 / 28)

    encoding_set = stimuli.stimulus_set(angles, res=0.025, offset=-0.5)
    assert "label" not in encoding_set and encoding_set["image"].shape == (3, 12, 16)
    with pytest.raises(ValueError, match="one entry per orientation"):
        stimuli.stimulus_set(angles, labels=[0, 1])
