"""Tests of v1rsa.tuning: Fourier tuning curves, held-out SNR, preferred orientation."""

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LinearRegression

from v1rsa import tuning


def test_fourier_basis_columns():
    basis = tuning.fourier_basis(np.array([0.0, 90.0]), n_harmonics=2)
    # [1, cos θ, cos 2θ, sin θ, sin 2θ]
    np.testing.assert_allclose(basis, [[1, 1, 1, 0, 0], [1, 0, -1, 1, 0]], atol=1e-12)


def test_tuning_curves_recover_a_band_limited_curve_exactly():
    rng = np.random.default_rng(0)
    orientation = rng.uniform(0, 360, 400)
    theta = np.deg2rad(orientation)
    response = np.stack([2 + np.cos(theta - 1.0), 0.5 * np.sin(3 * theta) + np.cos(2 * theta)], 1)
    grid = np.array([0.0, 45.0, 200.0])
    curves = tuning.tuning_curves(response, orientation, at_deg=grid, n_harmonics=3)
    g = np.deg2rad(grid)
    expected = np.stack([2 + np.cos(g - 1.0), 0.5 * np.sin(3 * g) + np.cos(2 * g)], 1)
    np.testing.assert_allclose(curves, expected, atol=1e-10)
    assert tuning.tuning_curves(response, orientation).shape == (360, 2)


def test_fit_matches_sklearn_least_squares():
    rng = np.random.default_rng(1)
    orientation = rng.uniform(0, 360, 300)
    response = rng.gamma(2.0, 1.0, size=(300, 5))
    coefficients = tuning.fit_tuning(response, orientation, n_harmonics=4)
    features = tuning.fourier_basis(orientation, 4)[:, 1:]
    reference = LinearRegression().fit(features, response)
    np.testing.assert_allclose(coefficients[0], reference.intercept_, rtol=1e-9)
    np.testing.assert_allclose(coefficients[1:], reference.coef_.T, rtol=1e-9, atol=1e-12)


def test_tuning_snr_recovers_known_signal_to_noise_ratio():
    # signal a·cos 2(θ − μ) + b·cos(θ − μ) has variance (a² + b²) / 2 over uniform θ;
    # Gaussian noise of sd σ gives SNR = (a² + b²) / (2 σ²)
    rng = np.random.default_rng(2)
    n_trials, n_neurons = 20000, 60
    orientation = rng.uniform(0, 360, n_trials)
    theta = np.deg2rad(orientation)[:, None]
    a = rng.uniform(0.2, 1.0, n_neurons)
    b = rng.uniform(0.0, 0.6, n_neurons)
    mu = rng.uniform(0, 2 * np.pi, n_neurons)
    sigma = rng.uniform(0.8, 3.0, n_neurons)
    signal = a * np.cos(2 * (theta - mu)) + b * np.cos(theta - mu) + 5.0
    response = signal + sigma * rng.standard_normal((n_trials, n_neurons))
    train = np.arange(n_trials) % 4 != 0
    snr = tuning.tuning_snr(response, orientation, train)
    expected = (a**2 + b**2) / (2 * sigma**2)
    np.testing.assert_allclose(snr.mean(), expected.mean(), rtol=0.05)
    # per neuron: the estimate's sampling error on 5,000 test trials is a few per cent
    np.testing.assert_allclose(snr, expected, rtol=0.25, atol=0.01)


def test_tuning_snr_of_pure_noise_is_near_zero():
    rng = np.random.default_rng(3)
    orientation = rng.uniform(0, 360, 4000)
    response = rng.standard_normal((4000, 50))
    train = np.arange(4000) % 4 != 0
    snr = tuning.tuning_snr(response, orientation, train)
    # over-fitting 13 coefficients on 3,000 trials leaves var ≈ 13 / 3000 on held-out trials
    assert 0 < snr.mean() < 0.01


def test_preferred_orientation_finds_the_larger_of_two_peaks():
    rng = np.random.default_rng(4)
    orientation = rng.uniform(0, 360, 2000)
    preferred = np.array([10.0, 123.4, 271.9, 359.5])
    delta = np.deg2rad(orientation[:, None] - preferred[None, :])
    # von Mises peaks at μ and μ + 180° (smaller), κ = 2 (well inside 6 harmonics)
    response = np.exp(2 * (np.cos(delta) - 1)) + 0.6 * np.exp(2 * (np.cos(delta - np.pi) - 1))
    found = tuning.preferred_orientation(response, orientation)
    error = (found - preferred + 180) % 360 - 180
    np.testing.assert_allclose(error, 0, atol=0.05)
    assert np.all((found >= 0) & (found < 360))


def test_bad_input_names_the_argument():
    response = np.zeros((10, 3))
    with pytest.raises(ValueError, match="orientation_deg"):
        tuning.tuning_curves(response, np.zeros(9))
    with pytest.raises(ValueError, match="train"):
        tuning.tuning_snr(response, np.linspace(0, 360, 10), np.ones(10, int))
    with pytest.raises(ValueError, match="response"):
        tuning.fit_tuning(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        tuning.fit_tuning(np.full((10, 3), np.nan), np.linspace(0, 360, 10))


def test_neuron_tuning_table_of_a_trials_dataset():
    rng = np.random.default_rng(3)
    orientation = rng.uniform(0, 360, 800)
    preferred = np.array([30.0, 200.0, 300.0])
    theta, mu = np.deg2rad(orientation)[:, None], np.deg2rad(preferred)[None, :]
    response = np.exp(2.0 * (np.cos(theta - mu) - 1)) + rng.normal(0, 0.1, (800, 3))
    split = np.where(np.arange(800) % 4 == 0, "test", "train")
    trials = xr.Dataset({"response": (("trial", "neuron"), response.astype(np.float32))},
                        coords={"orientation": ("trial", orientation), "split": ("trial", split),
                                "neuron": [7, 8, 9]})
    table = tuning.neuron_tuning(trials)
    assert list(table["neuron"].values) == [7, 8, 9]
    np.testing.assert_allclose(table["preferred_orientation"], preferred, atol=3.0)
    np.testing.assert_array_equal(
        table["snr"], tuning.tuning_snr(response.astype(np.float32), orientation, split == "train"))
    with pytest.raises(ValueError, match="'split'"):
        tuning.neuron_tuning(trials.drop_vars("split"))
