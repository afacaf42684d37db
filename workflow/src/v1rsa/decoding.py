"""Decoding stimulus orientation from V1 population responses, without torch: what every decoder
shares and the linear decoder of Stringer et al. 2021.

- Scores: :func:`decoding_metrics` (median absolute *circular* error in degrees and the fraction
  of test stimuli decoded within 5°) from :func:`circular_error_deg`.
- Splits: :func:`split_conditions` (the course's random 60/40 split of orientation bins) and
  :func:`decoding_split` (train and test arrays of a ``trials.nc`` or ``conditions.nc``).
- :class:`RidgeVonMises` (ridge regression onto von Mises bumps over angle, λ = n_train),
  :func:`fit_ridge` (a decoding stage), and :func:`scaling_table` with :func:`fit_alpha_beta`
  for how its error falls with the number of neurons and trials.

The course's torch networks are in :mod:`v1rsa.decoders`; the jobs that fit only the ridge
decoder start without importing torch, and scipy (0.3 s) is imported where the ridge decoder
needs it, not by the torch decoders' jobs that import this module. All angles are in degrees.
Responses are ``(n_samples, n_neurons)``: single trials or orientation-binned conditions alike.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import xarray as xr

from v1rsa import logs
from v1rsa.io import ContractError

log = logging.getLogger(__name__)

FULL_CIRCLE_DEG = 360.0

# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def circular_error_deg(predicted_deg, true_deg, period: float = FULL_CIRCLE_DEG) -> np.ndarray:
    """Absolute circular difference between two angles, in degrees, in ``[0, period / 2]``.

    ``predicted_deg``, ``true_deg``: arrays of the same shape (any real values, degrees).
    ``period``: 360 for directions, 180 for orientations (θ and θ + 180° the same stimulus).
    """
    predicted_deg = np.asarray(predicted_deg, dtype=np.float64)
    true_deg = np.asarray(true_deg, dtype=np.float64)
    if predicted_deg.shape != true_deg.shape:
        raise ValueError(f"predicted_deg has shape {predicted_deg.shape} but true_deg has "
                         f"shape {true_deg.shape}; expected the same shape")
    if not period > 0:
        raise ValueError(f"period must be positive (degrees), got {period}")
    difference = np.remainder(predicted_deg - true_deg, period)
    return np.minimum(difference, period - difference)


def decoding_metrics(predicted_deg, true_deg, period: float = FULL_CIRCLE_DEG) -> dict:
    """Test-set scores of a decoder: ``median_abs_error_deg``, ``fraction_within_5deg``, ``n_test``.

    ``predicted_deg``, ``true_deg``: ``(n_test,)`` degrees. A random guess scores a median error
    of ``period / 4`` (90° over the full circle).
    """
    error = circular_error_deg(predicted_deg, true_deg, period)
    if error.size == 0:
        raise ValueError("decoding_metrics needs at least one test stimulus, got none")
    return {
        "median_abs_error_deg": float(np.median(error)),
        "fraction_within_5deg": float(np.mean(error <= 5.0)),
        "n_test": int(error.size),
    }


def split_conditions(n_conditions: int, train_fraction: float = 0.6,
                     seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test split of ``n_conditions`` rows (the course: 60/40 of the 360 1°-bins).

    Returns sorted ``(train_index, test_index)`` int64 arrays; the same seed gives the same split.
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    order = np.random.default_rng(seed).permutation(n_conditions)
    n_train = int(train_fraction * n_conditions)
    if n_train == 0 or n_train == n_conditions:
        raise ValueError(f"a {train_fraction} split of {n_conditions} conditions leaves one "
                         "side empty; expected at least one train and one test condition")
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def check_samples(response, orientation_deg=None, name: str = "response") -> np.ndarray:
    response = np.asarray(response)
    if response.ndim != 2:
        raise ValueError(f"{name} must be (n_samples, n_neurons), got shape {response.shape}")
    if not np.all(np.isfinite(response)):
        raise ValueError(f"{name} holds NaN or infinite values; expected finite responses")
    if orientation_deg is not None:
        orientation_deg = np.asarray(orientation_deg)
        if orientation_deg.shape != (response.shape[0],):
            raise ValueError(f"orientation for {name} must be ({response.shape[0]},) degrees, "
                             f"got shape {orientation_deg.shape}")
        if not np.all(np.isfinite(orientation_deg)):
            raise ValueError(f"orientation for {name} holds NaN or infinite values")
    return response


# --------------------------------------------------------------------------------------------
# The linear decoder of Stringer et al. 2021
# --------------------------------------------------------------------------------------------


def ridge_regression(x, y, alpha: float, fit_intercept: bool = False) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Closed-form ridge regression minimising ``‖y − x·coef − intercept‖² + alpha·‖coef‖²``.

    ``x``: ``(n_samples, n_features)``; ``y``: ``(n_samples, n_targets)``. Returns ``coef``
    ``(n_features, n_targets)`` and ``intercept`` ``(n_targets,)`` float64 (the same problem and
    numbers as scikit-learn's ``Ridge``; the intercept is not penalised). Solves the smaller of
    the two normal systems: the primal ``(xᵀx + αI)`` when features ≤ samples, else the dual
    ``coef = xᵀ (x xᵀ + αI)⁻¹ y``, which costs ``O(n_features · n_samples²)``. Like
    scikit-learn, float32 ``x`` is solved in float32 (about 2.5× faster on the full recording),
    anything else in float64.
    """
    import scipy.linalg

    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = x.astype(dtype, copy=False)
    y = np.asarray(y, dtype=dtype)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"ridge_regression needs x (n_samples, n_features) and y (n_samples, "
                         f"n_targets); got shapes {x.shape} and {y.shape}")
    if fit_intercept:
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        x, y = x - x_mean, y - y_mean
    n_samples, n_features = x.shape
    if n_features <= n_samples:
        gram = x.T @ x
        gram.flat[:: n_features + 1] += alpha
        coef = scipy.linalg.solve(gram, x.T @ y, assume_a="pos")
    else:
        gram = x @ x.T
        gram.flat[:: n_samples + 1] += alpha
        coef = x.T @ scipy.linalg.solve(gram, y, assume_a="pos")
    intercept = y_mean - x_mean @ coef if fit_intercept else np.zeros(y.shape[1])
    return coef.astype(np.float64), intercept.astype(np.float64)


class RidgeVonMises:
    """Linear decoder of Stringer et al. 2021: ridge regression onto von Mises bumps over angle.

    Each training angle θ becomes a profile over ``n_basis`` bumps
    ``exp(κ·(cos(2π(θ − θ_k)/period) − 1))`` centred at ``θ_k = k·period/n_basis``, z-scored
    across the bumps (as the authors do); ridge regression (λ = n_train unless ``alpha`` is
    given, no intercept by default since responses are z-scored) maps responses to profiles.
    The decoded angle is the argmax of the predicted profile after periodic cubic-spline
    interpolation onto a grid of ``grid_step_deg`` (the authors use a Gaussian-kernel
    interpolation; both pass through the bump values).

    Defaults follow the authors: 48 bumps, κ = 10 (their σ = 0.1), period 360°.
    """

    def __init__(self, n_basis: int = 48, concentration: float = 10.0,
                 period: float = FULL_CIRCLE_DEG, alpha: float | None = None,
                 fit_intercept: bool = False, grid_step_deg: float = 0.1):
        if n_basis < 3:
            raise ValueError(f"n_basis must be at least 3 for a periodic profile, got {n_basis}")
        if not (concentration > 0 and period > 0 and grid_step_deg > 0):
            raise ValueError("concentration, period and grid_step_deg must be positive; got "
                             f"{concentration}, {period}, {grid_step_deg}")
        self.n_basis = int(n_basis)
        self.concentration = float(concentration)
        self.period = float(period)
        self.alpha = None if alpha is None else float(alpha)
        self.fit_intercept = bool(fit_intercept)
        self.grid_step_deg = float(grid_step_deg)
        self.coef_: np.ndarray | None = None
        self.intercept_: np.ndarray | None = None
        self.alpha_: float | None = None
        self._interpolation: np.ndarray | None = None

    @property
    def basis_centres_deg(self) -> np.ndarray:
        """``(n_basis,)`` float64: centres of the bumps in degrees."""
        return np.arange(self.n_basis) * self.period / self.n_basis

    @property
    def grid_deg(self) -> np.ndarray:
        """The fine grid of angles (degrees) on which the profile is maximised."""
        return np.arange(0.0, self.period, self.grid_step_deg)

    def basis(self, orientation_deg) -> np.ndarray:
        """Target profiles: ``(n, n_basis)`` float64, von Mises bumps z-scored across bumps."""
        phase = 2 * np.pi / self.period * (np.asarray(orientation_deg, dtype=np.float64)[:, None]
                                           - self.basis_centres_deg[None, :])
        bumps = np.exp(self.concentration * (np.cos(phase) - 1.0))
        bumps -= bumps.mean(axis=1, keepdims=True)
        return bumps / bumps.std(axis=1, keepdims=True)

    def fit(self, response, orientation_deg) -> RidgeVonMises:
        """Fit on ``response`` ``(n_train, n_neurons)`` and ``orientation_deg`` ``(n_train,)``."""
        response = check_samples(response, orientation_deg, "response")
        self.alpha_ = float(response.shape[0]) if self.alpha is None else self.alpha
        self.coef_, self.intercept_ = ridge_regression(
            response, self.basis(orientation_deg), self.alpha_, self.fit_intercept)
        return self

    def _check_fitted(self) -> None:
        if self.coef_ is None:
            raise RuntimeError("this RidgeVonMises is not fitted yet; call fit() or from_dataset()")

    def predict_profile(self, response) -> np.ndarray:
        """Predicted bump profile: ``(n, n_basis)`` float64 for ``response`` ``(n, n_neurons)``."""
        self._check_fitted()
        response = check_samples(response, name="response")
        if response.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"response has {response.shape[1]} neurons but the decoder was "
                             f"fitted on {self.coef_.shape[0]}")
        # float32 responses stay float32 (a float64 copy of a recording is ~1 GB).
        dtype = np.float32 if response.dtype == np.float32 else np.float64
        profile = response.astype(dtype, copy=False) @ self.coef_.astype(dtype)
        return profile.astype(np.float64) + self.intercept_

    def interpolation_matrix(self) -> np.ndarray:
        """``(n_grid, n_basis)``: periodic cubic spline from bump values to the fine grid."""
        if self._interpolation is None:
            from scipy.interpolate import CubicSpline

            knots = np.append(self.basis_centres_deg, self.period)
            identity = np.eye(self.n_basis)
            spline = CubicSpline(knots, np.vstack([identity, identity[:1]]), bc_type="periodic")
            self._interpolation = spline(self.grid_deg)
        return self._interpolation

    def angle_from_profile(self, profile) -> np.ndarray:
        """Angle (degrees, ``[0, period)``) at the maximum of each interpolated profile row."""
        profile = np.asarray(profile, dtype=np.float64)
        interpolation = self.interpolation_matrix()
        # Rows in chunks so the fine-grid array stays near 64 MB whatever the number of trials.
        chunk = max(1, 8_000_000 // interpolation.shape[0])
        best = np.zeros(len(profile), dtype=np.int64)
        for start in range(0, len(profile), chunk):
            best[start:start + chunk] = np.argmax(profile[start:start + chunk] @ interpolation.T,
                                                  axis=1)
        return self.grid_deg[best]

    def predict(self, response) -> np.ndarray:
        """Decoded angle of each row of ``response``: ``(n,)`` float64 degrees, ``[0, period)``."""
        return self.angle_from_profile(self.predict_profile(response))

    def to_dataset(self, neuron=None) -> xr.Dataset:
        """The fitted decoder as an xarray Dataset (for NetCDF; no pickle).

        ``coef(neuron, basis)`` and ``intercept(basis)`` float64; coords ``neuron`` (``neuron``
        ids if given, else 0…N−1), ``basis``, ``basis_centre_deg(basis)``; attrs hold the
        hyper-parameters (``fit_intercept`` as 0/1, since NetCDF has no booleans).
        """
        self._check_fitted()
        n_neurons = self.coef_.shape[0]
        neuron = np.arange(n_neurons) if neuron is None else np.asarray(neuron)
        if neuron.shape != (n_neurons,):
            raise ValueError(f"neuron must hold {n_neurons} ids, got shape {neuron.shape}")
        return xr.Dataset(
            {"coef": (("neuron", "basis"), self.coef_),
             "intercept": (("basis",), self.intercept_)},
            coords={"neuron": neuron, "basis": np.arange(self.n_basis),
                    "basis_centre_deg": (("basis",), self.basis_centres_deg)},
            attrs={"decoder": "RidgeVonMises", "n_basis": self.n_basis,
                   "concentration": self.concentration, "period_deg": self.period,
                   "alpha": self.alpha_, "fit_intercept": int(self.fit_intercept),
                   "grid_step_deg": self.grid_step_deg},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> RidgeVonMises:
        """Rebuild a fitted decoder from :meth:`to_dataset`; :class:`ContractError` if not one."""
        for name in ("coef", "intercept"):
            if name not in ds.variables:
                raise ContractError(f"RidgeVonMises dataset: missing variable {name!r}")
        for name in ("n_basis", "concentration", "period_deg", "alpha", "fit_intercept",
                     "grid_step_deg"):
            if name not in ds.attrs:
                raise ContractError(f"RidgeVonMises dataset: missing attribute {name!r}")
        if ds["coef"].dims != ("neuron", "basis") or ds["intercept"].dims != ("basis",):
            raise ContractError("RidgeVonMises dataset: expected coef(neuron, basis) and "
                                f"intercept(basis), got {ds['coef'].dims}, {ds['intercept'].dims}")
        decoder = cls(n_basis=int(ds.attrs["n_basis"]),
                      concentration=float(ds.attrs["concentration"]),
                      period=float(ds.attrs["period_deg"]), alpha=float(ds.attrs["alpha"]),
                      fit_intercept=bool(ds.attrs["fit_intercept"]),
                      grid_step_deg=float(ds.attrs["grid_step_deg"]))
        if ds.sizes["basis"] != decoder.n_basis:
            raise ContractError(f"RidgeVonMises dataset: coef has {ds.sizes['basis']} bases but "
                                f"attribute n_basis is {decoder.n_basis}")
        decoder.coef_ = np.asarray(ds["coef"].values, dtype=np.float64)
        decoder.intercept_ = np.asarray(ds["intercept"].values, dtype=np.float64)
        decoder.alpha_ = decoder.alpha
        return decoder


# --------------------------------------------------------------------------------------------
# How the error scales with neurons and trials
# --------------------------------------------------------------------------------------------


def fit_alpha_beta(n, error) -> tuple[float, float]:
    """Least-squares fit of ``error = α + β/√n``; returns ``(α, β)`` (α in the units of error).

    ``n``: positive counts (neurons or trials); ``error``: the same length. α is the error
    floor that more neurons/trials cannot remove (information-limiting noise).
    """
    n = np.asarray(n, dtype=np.float64).ravel()
    error = np.asarray(error, dtype=np.float64).ravel()
    if n.shape != error.shape:
        raise ValueError(f"n and error must have the same length, got {n.size} and {error.size}")
    if np.any(n <= 0) or np.unique(n).size < 2:
        raise ValueError("n must be positive with at least two distinct values to fit α + β/√n")
    design = np.column_stack([np.ones_like(n), 1.0 / np.sqrt(n)])
    (alpha, beta), *_ = np.linalg.lstsq(design, error, rcond=None)
    return float(alpha), float(beta)


def available_sizes(requested, available: int, what: str) -> list[int]:
    """The sizes of ``requested`` that a recording has (≤ ``available``), in their order.

    Sizes above ``available`` are left out with a warning in the log naming them; ``what``
    names the sizes in messages (e.g. ``"decoders.scaling.n_neurons"``). Raises ``ValueError``
    when fewer than 2 distinct sizes remain: the fit of α + β/√n needs at least two.
    """
    requested = [int(n) for n in requested]
    kept = [n for n in requested if n <= available]
    left_out = [n for n in requested if n > available]
    if len(set(kept)) < 2:
        raise ValueError(f"{what}: {requested} keeps {kept} within the {available} of this "
                         "recording; the fit of error = α + β/√n needs at least 2 sizes")
    if left_out:
        log.warning("%s: left out %s, above the %d of this recording; kept %s",
                    what, left_out, available, kept)
    return kept


def scaling_table(
    response,
    orientation_deg,
    split,
    *,
    n_neurons_list,
    n_trials_list,
    n_repeats: int,
    seed: int,
    n_basis: int = 48,
    concentration: float = 10.0,
    period: float = FULL_CIRCLE_DEG,
    progress: bool = True,
) -> pd.DataFrame:
    """Ridge decoding error versus the number of neurons and of training trials.

    ``response``: ``(n_trials, n_neurons)``; ``orientation_deg``: ``(n_trials,)``; ``split``:
    ``(n_trials,)`` of ``"train"``/``"test"``. Axis ``neurons``: random subsets of ``n`` neurons,
    all training trials; axis ``trials``: random subsets of ``n`` training trials, all neurons;
    always scored on all test trials. :class:`RidgeVonMises` with λ = n (training trials) and no
    intercept. Subsets are drawn from ``numpy.random.default_rng(seed)``. float32 responses are
    solved in float32 (see :func:`ridge_regression`).

    Returns one row per (axis, n, repeat): ``axis``, ``n``, ``repeat``,
    ``median_abs_error_deg``, ``fraction_within_5deg``, ``n_test``, and the fit of
    ``median_abs_error_deg = α + β/√n`` over all rows of that axis, repeated on each of its
    rows as ``fit_alpha_deg`` and ``fit_beta_deg`` (NaN when the axis has fewer than two n).
    """
    response = check_samples(response, orientation_deg, "response")
    split = np.asarray(split).astype(str)
    if split.shape != (response.shape[0],) or not set(np.unique(split)) <= {"train", "test"}:
        raise ValueError("split must be one 'train' or 'test' per trial; got values "
                         f"{sorted(set(np.unique(split)))} with shape {split.shape}")
    is_train = split == "train"
    dtype = np.float32 if response.dtype == np.float32 else np.float64  # as ridge_regression
    x_train = response[is_train].astype(dtype)
    x_test = response[~is_train].astype(dtype)
    y_train = np.asarray(orientation_deg, dtype=np.float64)[is_train]
    y_test = np.remainder(np.asarray(orientation_deg, dtype=np.float64)[~is_train], period)
    n_train, n_neurons = x_train.shape
    if len(y_test) == 0 or n_train == 0:
        raise ValueError("split must hold both 'train' and 'test' trials")
    for name, values, limit in (("n_neurons_list", n_neurons_list, n_neurons),
                                ("n_trials_list", n_trials_list, n_train)):
        if any(not 1 <= int(v) <= limit for v in values):
            raise ValueError(f"{name} = {list(values)}: every entry must lie in 1…{limit} "
                             "(the neurons / training trials available)")

    rng = np.random.default_rng(seed)
    decoder = RidgeVonMises(n_basis=n_basis, concentration=concentration, period=period)
    target = decoder.basis(y_train).astype(dtype)
    jobs = [("neurons", int(n), r) for n in n_neurons_list for r in range(n_repeats)]
    jobs += [("trials", int(n), r) for n in n_trials_list for r in range(n_repeats)]
    # Trial subsets reuse one Gram matrix: the dual solution needs only its rows and columns.
    # So does a "subset" of all the neurons (only their order changes), via all the trials.
    shared_gram = bool(n_trials_list) or n_neurons in {int(n) for n in n_neurons_list}
    gram_train = x_train @ x_train.T if shared_gram else None
    gram_test = x_test @ x_train.T if shared_gram else None

    import scipy.linalg

    rows = []
    every_neuron = None  # the predictions of every neuron and trial: each repeat is the same fit
    for axis, n, repeat in logs.progress(jobs, desc="ridge scaling", enabled=progress):
        if axis == "neurons":
            neurons = rng.choice(n_neurons, size=n, replace=False)
        else:
            trials = rng.choice(n_train, size=n, replace=False)
        if axis == "neurons" and n < n_neurons:
            decoder.fit(x_train[:, neurons], y_train)
            predicted = decoder.predict(x_test[:, neurons])
        elif axis == "neurons" and every_neuron is not None:
            predicted = every_neuron
        else:
            if axis == "neurons":
                trials = np.arange(n_train)
            system = gram_train[np.ix_(trials, trials)]
            system.flat[:: len(trials) + 1] += len(trials)  # λ = the number of training trials
            dual = scipy.linalg.solve(system, target[trials], assume_a="pos")
            predicted = decoder.angle_from_profile(gram_test[:, trials] @ dual)
            if axis == "neurons":
                every_neuron = predicted
        metrics = decoding_metrics(predicted, y_test, period)
        rows.append({"axis": axis, "n": n, "repeat": repeat, **metrics})
        log.info("ridge scaling: %s n=%d repeat %d: median error %.2f°", axis, n, repeat,
                 metrics["median_abs_error_deg"])

    table = pd.DataFrame(rows, columns=["axis", "n", "repeat", "median_abs_error_deg",
                                        "fraction_within_5deg", "n_test"])
    table["fit_alpha_deg"] = math.nan
    table["fit_beta_deg"] = math.nan
    for axis, rows_of_axis in table.groupby("axis"):
        if rows_of_axis["n"].nunique() >= 2:
            alpha, beta = fit_alpha_beta(rows_of_axis["n"], rows_of_axis["median_abs_error_deg"])
            table.loc[rows_of_axis.index, ["fit_alpha_deg", "fit_beta_deg"]] = alpha, beta
            log.info("ridge scaling: %s: error ≈ %.3g + %.3g/√n degrees", axis, alpha, beta)
    return table


# --------------------------------------------------------------------------------------------
# A decoding stage: data set in, trained decoder and held-out metrics out
# --------------------------------------------------------------------------------------------


def decoding_split(data: xr.Dataset, *, test_fraction: float, seed: int):
    """Train and test arrays from ``trials.nc`` or ``conditions.nc``.

    Single trials carry their own ``split(trial)`` (every 4th trial test, as the authors);
    orientation bins are split at random as the course does (a ``test_fraction`` of the bins,
    seeded). Returns ``(x_train, y_train, x_test, y_test)``: responses ``(n, n_neurons)`` float32
    and orientations ``(n,)`` in degrees.
    """
    response = data["response"].values
    orientation = data["orientation"].values
    if "split" in data.coords:
        test = data["split"].values.astype(str) == "test"
        train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
    else:
        train_index, test_index = split_conditions(len(orientation), 1 - test_fraction, seed)
    return (response[train_index], orientation[train_index],
            response[test_index], orientation[test_index])


def test_predictions(predicted_deg, true_deg, period: float = FULL_CIRCLE_DEG) -> pd.DataFrame:
    """One row per test stimulus: ``true_deg``, ``predicted_deg``, ``abs_error_deg`` (circular)."""
    return pd.DataFrame({
        "true_deg": np.asarray(true_deg, dtype=np.float64),
        "predicted_deg": np.asarray(predicted_deg, dtype=np.float64),
        "abs_error_deg": circular_error_deg(predicted_deg, true_deg, period=period),
    })


def fit_ridge(data: xr.Dataset, *, n_basis: int, test_fraction: float, split_seed: int):
    """Fit the Stringer et al. ridge decoder (λ = n_train) and score it on the test set.

    Returns the fitted :class:`RidgeVonMises` as a Dataset (``to_dataset``), the metrics and the
    test predictions (:func:`test_predictions`).
    """
    x_train, y_train, x_test, y_test = decoding_split(data, test_fraction=test_fraction,
                                                      seed=split_seed)
    decoder = RidgeVonMises(n_basis=n_basis).fit(x_train, y_train)
    predicted = decoder.predict(x_test)
    metrics = {
        **decoding_metrics(predicted, y_test, period=decoder.period),
        "decoder": "ridge",
        "n_train": int(len(y_train)),
        "n_neurons": int(x_train.shape[1]),
        "alpha": float(decoder.alpha_),
    }
    neuron = data["neuron"].values if "neuron" in data.coords else None
    predictions = test_predictions(predicted, y_test, period=decoder.period)
    return decoder.to_dataset(neuron=neuron), metrics, predictions
