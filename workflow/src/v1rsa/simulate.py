r"""Embedded simulator of a Stringer et al. (2021) static-grating recording.

:func:`simulate_recording` returns a dict in exactly the layout of the Neuromatch Academy file
``stringer_orientations.npy`` (keys ``sresp``, ``istim``, ``mean_spont``, ``std_spont``,
``u_spont``, ``v_spont``, ``stat``, ``xyz``, ``run``, ``stimtimes``, ``frametimes``,
``camtimes``, ``info``), so that the rest of the pipeline reads simulated and real data through
one path, plus the ground truth as an :class:`xarray.Dataset`. :func:`save_raw` writes the dict
the way the NMA file was written; :func:`simulate_to_hdf5` streams the same recording, block of
neurons by block, into an HDF5 file of the same keys (the ``raw_hdf5`` layout) for recordings
too large for memory; :func:`expected_response` gives the noise-free mean response.

Generative model
----------------
Neuron i = 1..N, trial t = 1..T, spontaneous frame s = 1..F (F = 910), shared dimension
k = 1..K (K = ``n_shared``). Angles are in radians here; the ground truth stores degrees.

Stimulus and information-limiting noise. Each trial shows a grating at a new random angle,
and every neuron sees it displaced by the same small jitter (Moreno-Bote et al. 2014; the
"differential" noise that puts a floor under population decoding error)::

    θ_t ~ Uniform[0, 2π),   δ_t ~ Normal(0, σ_δ²),   φ_t = θ_t + δ_t      (σ_δ = jitter_deg)

Tuning. Over the full circle, with two peaks at μ_i and μ_i + π of unequal height::

    h_i(x) = exp(κ_i (cos x − 1)) + ρ_i exp(κ_i (cos(x − π) − 1))
    f_i(φ) = A_i h_i(φ − μ_i)

    μ_i ~ Uniform[0, 2π)                        preferred angle (first, larger peak)
    κ_i = clip(κ_med · exp(s_κ z), 0.5, 20)     concentration (z ~ Normal(0, 1))
                                                (κ_med = concentration_median,
                                                 s_κ = concentration_log_sd)
    ρ_i ~ Uniform[ρ_lo, ρ_hi]                    second / first peak (second_peak_ratio)
    A_i ~ LogNormal(0, 0.5²)                     amplitude, arbitrary units

Per-trial gain, correlated with running. A slow running state u_t (AR(1) over trials in
presentation order, coefficient 0.97, stationary Normal(0, 1)) gives the running speed and
part of a multiplicative gain with mean 1::

    run_t = 10 cm/s · max(u_t, 0)
    log g_t = σ_g (c_run u_t + √(1 − c_run²) w_t) − σ_g²/2,   w_t ~ Normal(0, 1)
                                                (σ_g = gain_sd, c_run = gain_running_correlation)

Noise: multiplicative log-normal, with a shared low-rank part and a private part. Every
neuron's log-activity has variance σ_i², a fraction ``shared_fraction`` = ψ of it carried by K
shared factors whose variances fall as a power law (spontaneous-like dimensions, Stringer et
al. 2019)::

    σ_i ~ Uniform[σ_lo, σ_hi]                    (noise_log_sd)
    w_i = v_i / ‖v_i‖,   v_ik ~ Normal(0, k^(−α))   shared loadings, unit norm (α = shared_decay)
    H_kt, H_ks ~ Normal(0, 1)                     shared factors on trials / spontaneous frames
    ε_it, ε_is ~ Normal(0, 1)                     private noise
    ℓ_it = σ_i (√ψ w_iᵀ H_·t + √(1 − ψ) ε_it)     so ℓ_it ~ Normal(0, σ_i²)
    n_it = b_i exp(ℓ_it − σ_i²/2)                 E n = b_i,  Var n = b_i² (exp(σ_i²) − 1)

Responses (non-negative and heavy-tailed, as deconvolved activity) and spontaneous frames
(the same noise model without stimulus drive)::

    sresp_it = g_t f_i(θ_t + δ_t) + n_it
    spont_is = n_is

Signal-to-noise calibration. Each neuron has a target SNR_i ~ mean_snr · Gamma(k, 1/k)
(k = snr_shape, mean ``mean_snr``), capped at 0.9 of the largest SNR its gain and jitter noise
allow. SNR is the variance over stimuli of the mean response over the mean variance around it
(docs/science.md#tuning). Writing h_i as a cosine series, with ive the exponentially scaled modified
Bessel function (scipy.special.ive)::

    h_i(x) = Σ_{n≥0} c_in cos(n x),  c_i0 = (1 + ρ_i) ive(0, κ_i),
                                      c_in = 2 (1 + (−1)ⁿ ρ_i) ive(n, κ_i)
    m_i(x) = E_δ h_i(x + δ) = Σ_n c_in exp(−n² σ_δ²/2) cos(n x)   (jitter blurs the curve)
    S_i = Var_θ A_i m_i = A_i² ½ Σ_{n≥1} c_in² exp(−n² σ_δ²)
    D_i = E_θ Var(g f_i(θ + δ) | θ) = exp(σ_g²) E_θ f_i² − S_i − A_i² c_i0²,
          E_θ f_i² = A_i² (c_i0² + ½ Σ_{n≥1} c_in²)
    SNR_i = S_i / (D_i + Var n_i)

which fixes the noise variance, and with it the baseline b_i = sd(n_i) / √(exp(σ_i²) − 1).
The expected response is E[sresp_it | θ_t = θ] = b_i + A_i m_i(θ − μ_i) (E g = 1).

Defaults. κ_med = 5 (half-width at half-maximum about 31°), mean SNR 0.1 (held-out SNR
measured by :func:`v1rsa.tuning.tuning_snr` at full size: 0.106), and σ_δ = 0.8°, calibrated so
that the linear decoder of Stringer et al. 2021 (ridge to 48 von Mises bumps, λ = n_train,
every 4th trial held out, after spontaneous normalisation and z-scoring) reaches a median
absolute error of 1.08° on the full-size default recording (0.92° without jitter).

Spontaneous statistics, as the authors computed them: mean_spont_i and std_spont_i (ddof 0)
over the F spontaneous frames; Z = (spont − mean_spont) / std_spont; u_spont (N, 128) the
top-128 left singular vectors of Z (unit-norm columns, sign set so each column's largest
entry is positive); v_spont = u_spontᵀ Z (128, F), the projections.

Geometry and timing are placeholders in the real layout, independent of tuning (mouse V1 has
no orientation map): ``stat[i]["med"]`` = [ypix, xpix] uniform on a 1024 × 1024 pixel field
at 1 µm per pixel, 10 planes 30 µm apart; ``xyz`` = (x, y, z) in µm; imaging at 3 Hz
(``frametimes`` in ms), the spontaneous block first, then one stimulus every 3–5 frames
(``stimtimes`` = index of the onset frame in ``frametimes``), a 30 Hz camera (``camtimes`` ms).

Randomness: one :class:`numpy.random.SeedSequence` from ``seed`` is split into streams for the
trials, the neurons and each block of 1,024 neurons' noise, so the same seed gives the same
arrays (and file bytes) on the same machine, in memory or streamed to HDF5. Neurons are
generated block by block: :func:`simulate_recording` holds ``sresp`` and the spontaneous block
(N × F float64) plus a few (1024, T) temporaries; :func:`simulate_to_hdf5` only the temporaries
and per-neuron parameters.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import h5py
import numpy as np
import scipy.linalg
import scipy.special
import threadpoolctl
import xarray as xr

from v1rsa import logs
from v1rsa.io import atomic_path, temporary_folder

N_SPONT_FRAMES = 910
N_SPONT_PCS = 128
NEURONS_PER_BLOCK = 1024
RAW_KEYS = (
    "sresp",
    "istim",
    "mean_spont",
    "std_spont",
    "u_spont",
    "v_spont",
    "stat",
    "xyz",
    "run",
    "stimtimes",
    "frametimes",
    "camtimes",
    "info",
)

CONCENTRATION_RANGE = (0.5, 20.0)
AMPLITUDE_LOG_SD = 0.5
SNR_CAP_FRACTION = 0.9
RUNNING_AR = 0.97
RUNNING_SCALE_CM_S = 10.0
FIELD_PIXELS = 1024
PIXEL_UM = 1.0
N_PLANES = 10
PLANE_SPACING_UM = 30.0
FRAME_RATE_HZ = 3.0
CAMERA_RATE_HZ = 30.0
FRAMES_PER_TRIAL = (3, 5)
HDF5_CHUNK_BYTES = 4 * 2**20


def _harmonic_coefficients(
    concentration: np.ndarray, second_peak_ratio: np.ndarray, jitter_rad: float
) -> np.ndarray:
    """Cosine-series coefficients of the jitter-averaged unit tuning curve m_i (docstring).

    Returns (n_terms, n_neurons) float64; row n multiplies cos(n (θ − μ_i)).
    """
    n_terms = int(np.ceil(12.0 * np.sqrt(np.max(concentration, initial=1.0)))) + 8
    n = np.arange(n_terms)[:, None]
    coefficients = scipy.special.ive(n, concentration[None, :])
    coefficients[1:] *= 2.0
    coefficients *= 1.0 + np.where(n % 2 == 0, 1.0, -1.0) * second_peak_ratio[None, :]
    coefficients *= np.exp(-0.5 * (n * jitter_rad) ** 2)
    return coefficients


def _running_state(rng: np.random.Generator, n_trials: int) -> np.ndarray:
    """Stationary AR(1) with unit variance over trials in presentation order."""
    import scipy.signal  # not at the top: plot_data imports this module and skips its 0.5 s

    innovations = rng.standard_normal(n_trials)
    innovations[1:] *= np.sqrt(1.0 - RUNNING_AR**2)
    return scipy.signal.lfilter([1.0], [1.0, -RUNNING_AR], innovations)


def _timing(rng: np.random.Generator, n_trials: int) -> tuple[np.ndarray, ...]:
    """Imaging-frame times (ms), stimulus-onset frame indices, camera times (ms)."""
    gaps = rng.integers(FRAMES_PER_TRIAL[0], FRAMES_PER_TRIAL[1] + 1, size=n_trials)
    stimtimes = N_SPONT_FRAMES + np.concatenate([[0], np.cumsum(gaps[:-1])]).astype(np.int64)
    n_frames = int(stimtimes[-1] + gaps[-1])
    frametimes = np.round(np.arange(n_frames) * 1000.0 / FRAME_RATE_HZ).astype(np.int64)
    duration_s = n_frames / FRAME_RATE_HZ
    n_camera = int(np.floor(duration_s * CAMERA_RATE_HZ))
    camtimes = np.round(np.arange(n_camera) * 1000.0 / CAMERA_RATE_HZ).astype(np.int64)
    return frametimes, stimtimes, camtimes


def _positive(name: str, value) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _non_negative(name: str, value) -> float:
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
    return float(value)


def _fraction(name: str, value) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _integer(name: str, value, low: int, what: str) -> int:
    if int(value) != value or value < low:
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return int(value)


def _range(name: str, value, low: float, high: float) -> tuple[float, float]:
    pair = np.asarray(value, dtype=np.float64)
    if pair.shape != (2,) or not np.all(np.isfinite(pair)) or pair[0] > pair[1]:
        raise ValueError(f"{name}: expected a (low, high) pair with low <= high, got {value!r}")
    if pair[0] < low or pair[1] > high:
        raise ValueError(f"{name}: expected values in [{low}, {high}], got {value!r}")
    return float(pair[0]), float(pair[1])


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """The size, seed and knobs of one simulated recording, checked when made.

    The knobs (every field after ``seed``) are the symbols of the generative model in the
    module docstring: ``jitter_deg`` = σ_δ (degrees), ``gain_sd`` = σ_g, ``n_shared`` = K,
    ``shared_fraction`` = ψ, ``shared_decay`` = α, ``noise_log_sd`` = (σ_lo, σ_hi),
    ``concentration_median`` = κ_med, ``concentration_log_sd`` = s_κ, ``second_peak_ratio``
    = (ρ_lo, ρ_hi). A value out of range raises ``ValueError`` naming the field.
    """

    n_neurons: int = 23589
    n_trials: int = 4598
    seed: int = 0
    mean_snr: float = 0.1
    snr_shape: float = 1.5
    jitter_deg: float = 0.8
    gain_sd: float = 0.2
    gain_running_correlation: float = 0.5
    n_shared: int = 64
    shared_fraction: float = 0.3
    shared_decay: float = 1.0
    noise_log_sd: tuple[float, float] = (0.6, 1.2)
    concentration_median: float = 5.0
    concentration_log_sd: float = 0.5
    second_peak_ratio: tuple[float, float] = (0.3, 0.95)

    def __post_init__(self):
        checked = {
            "n_neurons": _integer(
                "n_neurons", self.n_neurons, N_SPONT_PCS, f"an integer >= {N_SPONT_PCS}"
            ),
            "n_trials": _integer("n_trials", self.n_trials, 1, "a positive integer"),
            "seed": _integer("seed", self.seed, 0, "a non-negative integer"),
            "n_shared": _integer("n_shared", self.n_shared, 1, "a positive integer"),
            "noise_log_sd": _range("noise_log_sd", self.noise_log_sd, 1e-3, 3.0),
            "second_peak_ratio": _range("second_peak_ratio", self.second_peak_ratio, 0.0, 1.0),
        }
        for name in ("mean_snr", "snr_shape", "concentration_median"):
            checked[name] = _positive(name, getattr(self, name))
        for name in ("jitter_deg", "gain_sd", "shared_decay", "concentration_log_sd"):
            checked[name] = _non_negative(name, getattr(self, name))
        for name in ("gain_running_correlation", "shared_fraction"):
            checked[name] = _fraction(name, getattr(self, name))
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def knobs(self) -> dict:
        """The generative model's knobs (every field but size and seed), as plain numbers and
        lists, in field order: what the ground truth's attrs and the raw ``info`` record."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)[3:]
            for value in [getattr(self, field.name)]
        }


@dataclasses.dataclass
class _Trials:
    """Per-trial draws (T,) in presentation order: ``istim`` and ``jitter`` (radians),
    ``gain``, ``run`` (cm/s); shared factors on trials (K, T) and spontaneous frames (K, F);
    timing (:func:`_timing`)."""

    istim: np.ndarray
    jitter: np.ndarray
    gain: np.ndarray
    run: np.ndarray
    factors_trials: np.ndarray
    factors_spont: np.ndarray
    frametimes: np.ndarray
    stimtimes: np.ndarray
    camtimes: np.ndarray


@dataclasses.dataclass
class _Neurons:
    """Per-neuron draws (N,): tuning (``preferred`` radians, ``concentration``, ``ratio``,
    ``amplitude``), noise (``log_sd``, ``loading`` (N, K)), position, and the SNR calibration
    (``baseline``, ``noise_sd``, ``snr``)."""

    preferred: np.ndarray
    concentration: np.ndarray
    ratio: np.ndarray
    amplitude: np.ndarray
    log_sd: np.ndarray
    loading: np.ndarray
    ypix: np.ndarray
    xpix: np.ndarray
    plane: np.ndarray
    baseline: np.ndarray
    noise_sd: np.ndarray
    snr: np.ndarray


@dataclasses.dataclass
class _Model:
    """Every draw of one recording that is not per-block noise (module docstring).
    ``seeds_blocks``: one seed per block of ``NEURONS_PER_BLOCK`` neurons' noise."""

    settings: SimulationSettings
    seeds_blocks: list
    trials: _Trials
    neurons: _Neurons


def _draw_trials(rng: np.random.Generator, settings: SimulationSettings) -> _Trials:
    """Angles, jitter, running and gain, shared factors and timing, in this order of draws."""
    n_trials = settings.n_trials
    istim = rng.uniform(0.0, 2.0 * np.pi, n_trials)
    istim[istim >= 2.0 * np.pi] = 0.0
    jitter = rng.normal(0.0, np.deg2rad(settings.jitter_deg), n_trials)
    running_state = _running_state(rng, n_trials)
    run = RUNNING_SCALE_CM_S * np.maximum(running_state, 0.0)
    correlation, gain_sd = settings.gain_running_correlation, settings.gain_sd
    log_gain = gain_sd * (
        correlation * running_state
        + np.sqrt(1.0 - correlation**2) * rng.standard_normal(n_trials)
    )
    gain = np.exp(log_gain - 0.5 * gain_sd**2)
    factors_trials = rng.standard_normal((settings.n_shared, n_trials))
    factors_spont = rng.standard_normal((settings.n_shared, N_SPONT_FRAMES))
    frametimes, stimtimes, camtimes = _timing(rng, n_trials)
    return _Trials(
        istim, jitter, gain, run, factors_trials, factors_spont, frametimes, stimtimes, camtimes
    )


def _draw_neurons(rng: np.random.Generator, settings: SimulationSettings) -> _Neurons:
    """Tuning, noise and position of every neuron, then the noise level that gives each its
    target SNR (module docstring, "Signal-to-noise calibration")."""
    n_neurons, n_shared = settings.n_neurons, settings.n_shared
    preferred = rng.uniform(0.0, 2.0 * np.pi, n_neurons)
    preferred[preferred >= 2.0 * np.pi] = 0.0
    concentration = np.clip(
        settings.concentration_median
        * np.exp(settings.concentration_log_sd * rng.standard_normal(n_neurons)),
        *CONCENTRATION_RANGE,
    )
    ratio = rng.uniform(*settings.second_peak_ratio, n_neurons)
    amplitude = np.exp(AMPLITUDE_LOG_SD * rng.standard_normal(n_neurons))
    snr_target = settings.mean_snr * rng.gamma(
        settings.snr_shape, 1.0 / settings.snr_shape, n_neurons
    )
    log_sd = rng.uniform(*settings.noise_log_sd, n_neurons)
    loading = rng.standard_normal((n_neurons, n_shared))
    loading *= np.arange(1, n_shared + 1) ** (-0.5 * settings.shared_decay)
    loading /= np.linalg.norm(loading, axis=1, keepdims=True)
    ypix = rng.integers(0, FIELD_PIXELS, n_neurons)
    xpix = rng.integers(0, FIELD_PIXELS, n_neurons)
    plane = rng.integers(0, N_PLANES, n_neurons)
    baseline, noise_sd, snr = _calibrate_noise(
        settings, concentration, ratio, amplitude, log_sd, snr_target
    )
    return _Neurons(
        preferred, concentration, ratio, amplitude, log_sd, loading, ypix, xpix, plane,
        baseline, noise_sd, snr,
    )


def _calibrate_noise(settings, concentration, ratio, amplitude, log_sd, snr_target):
    """Baseline b_i, noise sd and achieved SNR (N,) of every neuron: the target SNR capped at
    ``SNR_CAP_FRACTION`` of the largest that the gain and the jitter allow."""
    # signal variance, and the variance that the gain and the jitter add around the mean curve,
    # both per unit amplitude squared
    jitter_rad = np.deg2rad(settings.jitter_deg)
    coefficients = _harmonic_coefficients(concentration, ratio, jitter_rad)
    coefficients_unjittered = _harmonic_coefficients(concentration, ratio, 0.0)
    signal_var = 0.5 * np.sum(coefficients[1:] ** 2, axis=0)
    mean_square = coefficients_unjittered[0] ** 2 + 0.5 * np.sum(
        coefficients_unjittered[1:] ** 2, axis=0
    )
    drive_noise_var = np.exp(settings.gain_sd**2) * mean_square - signal_var
    drive_noise_var = np.maximum(drive_noise_var - coefficients[0] ** 2, 0.0)
    with np.errstate(divide="ignore"):
        snr_cap = SNR_CAP_FRACTION * signal_var / drive_noise_var
    snr = np.minimum(snr_target, snr_cap)
    noise_sd = np.sqrt(amplitude**2 * (signal_var / snr - drive_noise_var))
    baseline = noise_sd / np.sqrt(np.expm1(log_sd**2))
    return baseline, noise_sd, snr


def _draw_model(settings: SimulationSettings) -> _Model:
    """Draw everything but the per-block noise, from independent streams of ``settings.seed``
    for the trials, the neurons and the noise."""
    seeds_trials, seeds_neurons, seeds_noise = np.random.SeedSequence(settings.seed).spawn(3)
    n_blocks = -(-settings.n_neurons // NEURONS_PER_BLOCK)
    return _Model(
        settings=settings,
        seeds_blocks=seeds_noise.spawn(n_blocks),
        trials=_draw_trials(np.random.default_rng(seeds_trials), settings),
        neurons=_draw_neurons(np.random.default_rng(seeds_neurons), settings),
    )


def _neuron_blocks(n_neurons: int) -> list[slice]:
    """Rows of each block of ``NEURONS_PER_BLOCK`` neurons (the last one may be shorter)."""
    return [
        slice(start, min(start + NEURONS_PER_BLOCK, n_neurons))
        for start in range(0, n_neurons, NEURONS_PER_BLOCK)
    ]


def _simulate_neurons(model: _Model, sresp, spont_z, *, progress: bool = False):
    """Responses and z-scored spontaneous frames, one block of neurons at a time.

    Writes ``sresp[rows]`` (N, T) and ``spont_z[rows]`` (N, F) block by block; both may be
    numpy arrays or HDF5 datasets. Returns ``mean_spont``, ``std_spont`` (N,) and the Gram
    matrix Zᵀ Z (F, F) of the z-scored spontaneous frames, all float64.
    """
    settings, trials, neurons = model.settings, model.trials, model.neurons
    n_neurons, n_trials = settings.n_neurons, settings.n_trials
    log_sd = neurons.log_sd
    mean_spont = np.empty(n_neurons)
    std_spont = np.empty(n_neurons)
    gram = np.zeros((N_SPONT_FRAMES, N_SPONT_FRAMES))
    phase = trials.istim + trials.jitter
    cos_phase, sin_phase = np.cos(phase), np.sin(phase)
    shared_fraction = settings.shared_fraction
    shared_scale = log_sd * np.sqrt(shared_fraction)
    private_scale = log_sd * np.sqrt(1.0 - shared_fraction)
    log_offset = np.log(neurons.baseline) - 0.5 * log_sd**2
    second_peak = neurons.ratio * np.exp(-2.0 * neurons.concentration)
    concentration, amplitude, loading = neurons.concentration, neurons.amplitude, neurons.loading
    # buffers reused across blocks (fresh 40 MB temporaries cost more in page faults than the
    # arithmetic)
    block_size = min(NEURONS_PER_BLOCK, n_neurons)
    buffer_drive = np.empty((block_size, n_trials))
    buffer_noise = np.empty((block_size, n_trials))
    buffer_private = np.empty((block_size, n_trials))
    buffer_spont = np.empty((block_size, N_SPONT_FRAMES))
    buffer_spont_private = np.empty((block_size, N_SPONT_FRAMES))
    blocks = zip(_neuron_blocks(n_neurons), model.seeds_blocks, strict=True)
    for rows, seeds_block in logs.progress(
        blocks, total=len(model.seeds_blocks), desc="simulate", unit="block", enabled=progress
    ):
        n_rows = rows.stop - rows.start
        drive, noise = buffer_drive[:n_rows], buffer_noise[:n_rows]
        private = buffer_private[:n_rows]
        spont, private_spont = buffer_spont[:n_rows], buffer_spont_private[:n_rows]
        rng = np.random.default_rng(seeds_block)
        rng.standard_normal(out=private)
        rng.standard_normal(out=private_spont)

        # first peak exp(κ(cos x − 1)) ≥ exp(−2κ) > 0, so the second, exp(κ(−cos x − 1)), is
        # exp(−2κ) / first: one division instead of a second exp
        np.outer(np.cos(neurons.preferred[rows]), cos_phase, out=noise)
        np.outer(np.sin(neurons.preferred[rows]), sin_phase, out=drive)
        noise += drive
        noise -= 1.0
        noise *= concentration[rows, None]
        np.exp(noise, out=noise)
        np.divide(second_peak[rows, None], noise, out=drive)
        drive += noise
        drive *= amplitude[rows, None]
        drive *= trials.gain

        np.matmul(loading[rows], trials.factors_trials, out=noise)
        noise *= shared_scale[rows, None]
        private *= private_scale[rows, None]
        noise += private
        noise += log_offset[rows, None]
        np.exp(noise, out=noise)
        drive += noise
        sresp[rows] = drive

        np.matmul(loading[rows], trials.factors_spont, out=spont)
        spont *= shared_scale[rows, None]
        private_spont *= private_scale[rows, None]
        spont += private_spont
        spont += log_offset[rows, None]
        np.exp(spont, out=spont)
        mean_spont[rows] = spont.mean(axis=1)
        std_spont[rows] = spont.std(axis=1)
        spont -= mean_spont[rows, None]
        spont /= std_spont[rows, None]
        spont_z[rows] = spont
        gram += spont.T @ spont
    return mean_spont, std_spont, gram


def _spont_pcs(spont_z, gram: np.ndarray, n_neurons: int) -> tuple[np.ndarray, np.ndarray]:
    """Top spontaneous PCs from the (F, F) Gram matrix: Z = U S Vᵀ, U = Z V / S.

    spont_z: (N, F) z-scored spontaneous frames, a numpy array or an HDF5 dataset, read one
    block of neurons at a time. Returns ``u_spont`` (N, 128) with unit-norm columns, each
    signed so its largest entry is positive, and ``v_spont`` = ``u_spontᵀ Z`` (128, F).
    """
    _, right = scipy.linalg.eigh(
        gram, subset_by_index=[N_SPONT_FRAMES - N_SPONT_PCS, N_SPONT_FRAMES - 1]
    )
    right = np.ascontiguousarray(right[:, ::-1])
    u_spont = np.empty((n_neurons, N_SPONT_PCS))
    projections = np.zeros((N_SPONT_PCS, N_SPONT_FRAMES))
    for rows in _neuron_blocks(n_neurons):
        block = np.asarray(spont_z[rows])
        np.matmul(block, right, out=u_spont[rows])
        projections += u_spont[rows].T @ block
    scale = 1.0 / np.linalg.norm(u_spont, axis=0)
    largest = np.argmax(np.abs(u_spont), axis=0)
    scale *= np.sign(u_spont[largest, np.arange(N_SPONT_PCS)])
    u_spont *= scale
    return u_spont, projections * scale[:, None]


def _info(settings: SimulationSettings) -> str:
    return (
        f"simulated by v1rsa.simulate.simulate_recording(n_neurons={settings.n_neurons}, "
        f"n_trials={settings.n_trials}, seed={settings.seed}, "
        + ", ".join(f"{key}={value!r}" for key, value in settings.knobs().items())
        + "); not a real recording"
    )


def _xyz(neurons: _Neurons) -> np.ndarray:
    return np.stack(
        [neurons.xpix * PIXEL_UM, neurons.ypix * PIXEL_UM, neurons.plane * PLANE_SPACING_UM]
    ).astype(np.float64)


def simulate_recording(
    n_neurons: int = SimulationSettings.n_neurons,
    n_trials: int = SimulationSettings.n_trials,
    seed: int = SimulationSettings.seed,
    *,
    progress: bool = False,
    **knobs,
) -> tuple[dict, xr.Dataset]:
    """Simulate one static-grating recording (the generative model is in the module docstring).

    Returns ``(raw, truth)``: ``raw`` the NMA dict (``sresp`` (n_neurons, n_trials) float64
    non-negative, ``istim`` (n_trials,) radians in [0, 2π), spontaneous statistics over 910
    frames, ``u_spont`` (n_neurons, 128), ``v_spont`` (128, 910), positions and timing), and
    ``truth`` the ground truth: per-neuron tuning and noise parameters along ``neuron``,
    per-trial angle, jitter, gain and shared factors along ``trial``, every knob in ``attrs``.
    ``knobs``: the generative model's, as the fields of :class:`SimulationSettings` (defaults
    and checks there); n_neurons must be at least 128 (the number of spontaneous PCs).
    ``progress``: report progress over blocks of neurons (:func:`v1rsa.logs.progress`).
    Memory: ``sresp`` and the (N, 910) spontaneous frames in float64; :func:`simulate_to_hdf5`
    writes the same recording without holding either.
    """
    settings = SimulationSettings(n_neurons, n_trials, seed, **knobs)
    model = _draw_model(settings)
    n_neurons, trials, neurons = settings.n_neurons, model.trials, model.neurons
    # One BLAS thread: the work is element-wise and single-threaded anyway; threaded BLAS
    # gains little here, stalls LAPACK's eigensolver by orders of magnitude when cores are
    # shared (parallel Snakemake jobs), and may round differently with the thread count.
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        sresp = np.empty((n_neurons, settings.n_trials))
        spont_z = np.empty((n_neurons, N_SPONT_FRAMES))
        mean_spont, std_spont, gram = _simulate_neurons(model, sresp, spont_z, progress=progress)
        u_spont, v_spont = _spont_pcs(spont_z, gram, n_neurons)
        del spont_z

    stat = np.empty(n_neurons, dtype=object)
    for i in range(n_neurons):
        stat[i] = {"med": np.array([neurons.ypix[i], neurons.xpix[i]], dtype=np.int64)}
    raw = {
        "sresp": sresp,
        "istim": trials.istim,
        "mean_spont": mean_spont,
        "std_spont": std_spont,
        "u_spont": u_spont,
        "v_spont": v_spont,
        "stat": stat,
        "xyz": _xyz(neurons),
        "run": trials.run,
        "stimtimes": trials.stimtimes,
        "frametimes": trials.frametimes,
        "camtimes": trials.camtimes,
        "info": _info(settings),
    }
    return raw, _ground_truth(model)


def hdf5_chunk_neurons(n_neurons: int, n_trials: int) -> int:
    """Neurons per HDF5 chunk of ``sresp`` (N, T) in the ``raw_hdf5`` layout: a power of two
    (so chunks tile the simulator's blocks of 1,024) of rows of T float64 within 4 MiB."""
    rows = max(1, HDF5_CHUNK_BYTES // (8 * int(n_trials)))
    return min(NEURONS_PER_BLOCK, 1 << (rows.bit_length() - 1), int(n_neurons))


def simulate_to_hdf5(
    path: str | os.PathLike,
    n_neurons: int = 23589,
    n_trials: int = 4598,
    seed: int = 0,
    *,
    progress: bool = False,
    **knobs,
) -> xr.Dataset:
    """Simulate a recording as :func:`simulate_recording` does and stream it to an HDF5 file.

    Writes ``path`` atomically in the ``raw_hdf5`` layout: one HDF5 dataset per key of the NMA
    dict, with the same names, shapes, dtypes and values as ``simulate_recording(n_neurons,
    n_trials, seed, **knobs)[0]`` (bit for bit), except ``stat``, a group holding ``stat/med``
    (N, 2) int64 ([ypix, xpix] per neuron, what ``stat[i]["med"]`` holds), and ``info``, a
    UTF-8 string. ``sresp`` (N, T) float64 is chunked along neurons
    (:func:`hdf5_chunk_neurons` rows per chunk), so it can be read a block of neurons at a time.
    Neurons are simulated, written and dropped one block of 1,024 at a time; the (N, 910)
    spontaneous frames wait in a scratch file beside ``path`` (removed afterwards) for the PCs.
    Memory: three (1,024, T) float64 buffers plus per-neuron arrays (about 3.5 kB a neuron,
    ``u_spont`` and the shared loadings the largest), never N × T. Returns the ground truth.
    """
    path = Path(path)
    settings = SimulationSettings(n_neurons, n_trials, seed, **knobs)
    model = _draw_model(settings)
    n_neurons, n_trials = settings.n_neurons, settings.n_trials
    trials, neurons = model.trials, model.neurons
    chunk_rows = hdf5_chunk_neurons(n_neurons, n_trials)
    with (
        threadpoolctl.threadpool_limits(1, user_api="blas"),
        atomic_path(path) as tmp,
        h5py.File(tmp, "w") as file,
        temporary_folder(path) as scratch_dir,
        h5py.File(Path(scratch_dir) / "spont_z.h5", "w") as scratch,
    ):
        sresp = file.create_dataset(
            "sresp", (n_neurons, n_trials), dtype=np.float64, chunks=(chunk_rows, n_trials)
        )
        spont_z = scratch.create_dataset(
            "spont_z",
            (n_neurons, N_SPONT_FRAMES),
            dtype=np.float64,
            chunks=(min(NEURONS_PER_BLOCK, n_neurons), N_SPONT_FRAMES),
        )
        mean_spont, std_spont, gram = _simulate_neurons(model, sresp, spont_z, progress=progress)
        u_spont, v_spont = _spont_pcs(spont_z, gram, n_neurons)
        arrays = {
            "istim": trials.istim,
            "mean_spont": mean_spont,
            "std_spont": std_spont,
            "u_spont": u_spont,
            "v_spont": v_spont,
            "xyz": _xyz(neurons),
            "run": trials.run,
            "stimtimes": trials.stimtimes,
            "frametimes": trials.frametimes,
            "camtimes": trials.camtimes,
        }
        for key, value in arrays.items():
            file.create_dataset(key, data=value)
        file.create_group("stat").create_dataset(
            "med", data=np.stack([neurons.ypix, neurons.xpix], axis=1).astype(np.int64)
        )
        file.create_dataset("info", data=_info(settings), dtype=h5py.string_dtype())
    return _ground_truth(model)


def _ground_truth(model: _Model) -> xr.Dataset:
    """The ground truth of a drawn recording (see :func:`simulate_recording`)."""
    seed, knobs = model.settings.seed, model.settings.knobs()
    neurons, trials, loading = model.neurons, model.trials, model.neurons.loading
    preferred, concentration, ratio = neurons.preferred, neurons.concentration, neurons.ratio
    amplitude, baseline, snr = neurons.amplitude, neurons.baseline, neurons.snr
    log_sd, noise_sd, factors_trials = neurons.log_sd, neurons.noise_sd, trials.factors_trials
    istim, jitter, gain = trials.istim, trials.jitter, trials.gain
    n_neurons, n_trials = preferred.size, istim.size
    half_width = np.rad2deg(np.arccos(np.clip(1.0 + np.log(0.5) / concentration, -1.0, 1.0)))
    attrs = {
        "model": "v1rsa.simulate: von Mises tuning with two peaks, log-normal noise "
        "(shared low-rank + private), per-trial gain, per-trial angle jitter",
        "seed": seed,
        "n_spont_frames": N_SPONT_FRAMES,
        **{
            key: np.asarray(value) if isinstance(value, list) else value
            for key, value in knobs.items()
        },
    }
    neuron = ("neuron",)
    return xr.Dataset(
        {
            "preferred_orientation": (
                neuron,
                _to_degrees(preferred),
                {"units": "degree", "description": "angle of the first (larger) peak, μ"},
            ),
            "amplitude_first_peak": (neuron, amplitude, {"units": "a.u.", "description": "A"}),
            "amplitude_second_peak": (
                neuron,
                amplitude * ratio,
                {"units": "a.u.", "description": "A ρ, at μ + 180°"},
            ),
            "second_peak_ratio": (neuron, ratio, {"units": "1", "description": "ρ"}),
            "concentration": (
                neuron,
                concentration,
                {"units": "1", "description": "von Mises κ of both peaks"},
            ),
            "half_width": (
                neuron,
                half_width,
                {"units": "degree", "description": "half-width at half-maximum of one peak"},
            ),
            "baseline": (
                neuron,
                baseline,
                {"units": "a.u.", "description": "b, mean response without drive"},
            ),
            "noise_log_sd": (neuron, log_sd, {"units": "1", "description": "σ, sd of log noise"}),
            "noise_sd": (neuron, noise_sd, {"units": "a.u.", "description": "sd of the noise n"}),
            "snr": (
                neuron,
                snr,
                {
                    "units": "1",
                    "description": "true SNR: var over θ of the mean response "
                    "/ mean variance around it",
                },
            ),
            "shared_loading": (
                ("neuron", "shared_dimension"),
                loading,
                {"units": "1", "description": "w, unit-norm rows"},
            ),
            "orientation": (
                ("trial",),
                _to_degrees(istim),
                {"units": "degree", "description": "θ, shown angle"},
            ),
            "jitter": (
                ("trial",),
                np.rad2deg(jitter),
                {"units": "degree", "description": "δ, angle jitter seen by all neurons"},
            ),
            "gain": (("trial",), gain, {"units": "1", "description": "g, mean 1"}),
            "shared_factor": (
                ("trial", "shared_dimension"),
                factors_trials.T,
                {"units": "1", "description": "H, shared log-noise factors"},
            ),
        },
        coords={
            "neuron": np.arange(n_neurons, dtype=np.int64),
            "trial": np.arange(n_trials, dtype=np.int64),
            "shared_dimension": np.arange(loading.shape[1], dtype=np.int64),
        },
        attrs=attrs,
    )


def _to_degrees(radians: np.ndarray) -> np.ndarray:
    degrees = np.mod(np.rad2deg(radians), 360.0)
    return np.where(degrees >= 360.0, 0.0, degrees)


def expected_response(truth: xr.Dataset, orientation_deg: np.ndarray) -> np.ndarray:
    """Noise-free mean response of every neuron at the given stimulus angles.

    E[sresp | θ] = b_i + A_i m_i(θ − μ_i), averaged over gain and jitter (module docstring).
    truth: the ground truth from :func:`simulate_recording`; orientation_deg: (n_orientations,)
    degrees. Returns (n_orientations, n_neurons) float64 in the units of ``sresp``.
    """
    required = [
        "preferred_orientation",
        "amplitude_first_peak",
        "second_peak_ratio",
        "concentration",
        "baseline",
    ]
    missing = [name for name in required if name not in truth.variables]
    if missing or "jitter_deg" not in truth.attrs:
        raise ValueError(
            f"truth: expected the ground truth of simulate_recording, missing variables "
            f"{missing} or attribute 'jitter_deg'"
        )
    orientation = np.deg2rad(np.asarray(orientation_deg, dtype=np.float64))
    if orientation.ndim != 1:
        raise ValueError(f"orientation_deg: expected a 1-d array, got shape {orientation.shape}")
    coefficients = _harmonic_coefficients(
        truth["concentration"].values,
        truth["second_peak_ratio"].values,
        np.deg2rad(float(truth.attrs["jitter_deg"])),
    )
    preferred = np.deg2rad(truth["preferred_orientation"].values)
    n = np.arange(coefficients.shape[0])
    # cos(n(θ − μ)) = cos nθ cos nμ + sin nθ sin nμ: two matrix products over harmonics
    curve = np.cos(np.outer(orientation, n)) @ (coefficients * np.cos(np.outer(n, preferred)))
    curve += np.sin(np.outer(orientation, n)) @ (coefficients * np.sin(np.outer(n, preferred)))
    curve *= truth["amplitude_first_peak"].values
    curve += truth["baseline"].values
    return curve


def save_raw(raw: dict, path: str | os.PathLike) -> Path:
    """Write ``raw`` as the NMA file was written: ``np.save`` of a 0-d object array (a pickle).

    Written atomically to exactly ``path`` (unlike ``np.save``, no ".npy" is appended).
    Returns the path written.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"raw: expected a dict with keys {list(RAW_KEYS)}, got {type(raw)}")
    missing = [key for key in RAW_KEYS if key not in raw]
    if missing:
        raise ValueError(f"raw: missing keys {missing}; the NMA layout needs {list(RAW_KEYS)}")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # Writing, not reading: the published layout is a pickled dict, and v1rsa reads it back
        # only through the allow-list unpickler of v1rsa.load.
        np.save(handle, np.array(raw, dtype=object), allow_pickle=True)
    return path
