r"""Embedded simulator of a Stringer et al. (2021) static-grating recording.

:func:`simulate_recording` returns a dict in exactly the layout of the Neuromatch Academy file
``stringer_orientations.npy`` (keys ``sresp``, ``istim``, ``mean_spont``, ``std_spont``,
``u_spont``, ``v_spont``, ``stat``, ``xyz``, ``run``, ``stimtimes``, ``frametimes``,
``camtimes``, ``info``), so that the rest of the pipeline reads simulated and real data through
one path, plus the ground truth as an :class:`xarray.Dataset`. :func:`save_raw` writes the dict
the way the NMA file was written; :func:`expected_response` gives the noise-free mean response.

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
(SCIENCE.md §6). Writing h_i as a cosine series, with ive the exponentially scaled modified
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
arrays (and file bytes) on the same machine. Neurons are generated block by block, so memory
stays near one float64 copy of ``sresp`` plus the spontaneous block (N × F float64) and a few
(1024, T) temporaries.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.signal
import scipy.special
import threadpoolctl
import xarray as xr

from v1rsa.io import atomic_path

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


def _check_range(name: str, value, low: float, high: float | None = None) -> tuple[float, float]:
    pair = np.asarray(value, dtype=np.float64)
    if pair.shape != (2,) or not np.all(np.isfinite(pair)) or pair[0] > pair[1]:
        raise ValueError(f"{name}: expected a (low, high) pair with low <= high, got {value!r}")
    if pair[0] < low or (high is not None and pair[1] > high):
        raise ValueError(f"{name}: expected values in [{low}, {high}], got {value!r}")
    return float(pair[0]), float(pair[1])


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


def simulate_recording(
    n_neurons: int = 23589,
    n_trials: int = 4598,
    seed: int = 0,
    *,
    mean_snr: float = 0.1,
    snr_shape: float = 1.5,
    jitter_deg: float = 0.8,
    gain_sd: float = 0.2,
    gain_running_correlation: float = 0.5,
    n_shared: int = 64,
    shared_fraction: float = 0.3,
    shared_decay: float = 1.0,
    noise_log_sd: tuple[float, float] = (0.6, 1.2),
    concentration_median: float = 5.0,
    concentration_log_sd: float = 0.5,
    second_peak_ratio: tuple[float, float] = (0.3, 0.95),
) -> tuple[dict, xr.Dataset]:
    """Simulate one static-grating recording (the generative model is in the module docstring).

    Returns ``(raw, truth)``: ``raw`` the NMA dict (``sresp`` (n_neurons, n_trials) float64
    non-negative, ``istim`` (n_trials,) radians in [0, 2π), spontaneous statistics over 910
    frames, ``u_spont`` (n_neurons, 128), ``v_spont`` (128, 910), positions and timing), and
    ``truth`` the ground truth: per-neuron tuning and noise parameters along ``neuron``,
    per-trial angle, jitter, gain and shared factors along ``trial``, every knob in ``attrs``.
    n_neurons must be at least 128 (the number of spontaneous PCs).
    """
    if int(n_neurons) != n_neurons or n_neurons < N_SPONT_PCS:
        raise ValueError(f"n_neurons: expected an integer >= {N_SPONT_PCS}, got {n_neurons!r}")
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials: expected a positive integer, got {n_trials!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    for name, value in [
        ("mean_snr", mean_snr),
        ("snr_shape", snr_shape),
        ("concentration_median", concentration_median),
    ]:
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    for name, value in [
        ("jitter_deg", jitter_deg),
        ("gain_sd", gain_sd),
        ("shared_decay", shared_decay),
        ("concentration_log_sd", concentration_log_sd),
    ]:
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
    for name, value in [
        ("gain_running_correlation", gain_running_correlation),
        ("shared_fraction", shared_fraction),
    ]:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    if int(n_shared) != n_shared or n_shared < 1:
        raise ValueError(f"n_shared: expected a positive integer, got {n_shared!r}")
    noise_log_sd = _check_range("noise_log_sd", noise_log_sd, 1e-3, 3.0)
    second_peak_ratio = _check_range("second_peak_ratio", second_peak_ratio, 0.0, 1.0)
    n_neurons, n_trials, n_shared, seed = int(n_neurons), int(n_trials), int(n_shared), int(seed)

    seeds_trials, seeds_neurons, seeds_noise = np.random.SeedSequence(seed).spawn(3)
    n_blocks = -(-n_neurons // NEURONS_PER_BLOCK)
    seeds_blocks = seeds_noise.spawn(n_blocks)

    # trials, in presentation order
    rng = np.random.default_rng(seeds_trials)
    istim = rng.uniform(0.0, 2.0 * np.pi, n_trials)
    istim[istim >= 2.0 * np.pi] = 0.0
    jitter_rad = np.deg2rad(jitter_deg)
    jitter = rng.normal(0.0, jitter_rad, n_trials)
    running_state = _running_state(rng, n_trials)
    run = RUNNING_SCALE_CM_S * np.maximum(running_state, 0.0)
    log_gain = gain_sd * (
        gain_running_correlation * running_state
        + np.sqrt(1.0 - gain_running_correlation**2) * rng.standard_normal(n_trials)
    )
    gain = np.exp(log_gain - 0.5 * gain_sd**2)
    factors_trials = rng.standard_normal((n_shared, n_trials))
    factors_spont = rng.standard_normal((n_shared, N_SPONT_FRAMES))
    frametimes, stimtimes, camtimes = _timing(rng, n_trials)

    # neurons
    rng = np.random.default_rng(seeds_neurons)
    preferred = rng.uniform(0.0, 2.0 * np.pi, n_neurons)
    preferred[preferred >= 2.0 * np.pi] = 0.0
    concentration = np.clip(
        concentration_median * np.exp(concentration_log_sd * rng.standard_normal(n_neurons)),
        *CONCENTRATION_RANGE,
    )
    ratio = rng.uniform(*second_peak_ratio, n_neurons)
    amplitude = np.exp(AMPLITUDE_LOG_SD * rng.standard_normal(n_neurons))
    snr_target = mean_snr * rng.gamma(snr_shape, 1.0 / snr_shape, n_neurons)
    log_sd = rng.uniform(*noise_log_sd, n_neurons)
    loading = rng.standard_normal((n_neurons, n_shared))
    loading *= np.arange(1, n_shared + 1) ** (-0.5 * shared_decay)
    loading /= np.linalg.norm(loading, axis=1, keepdims=True)
    ypix = rng.integers(0, FIELD_PIXELS, n_neurons)
    xpix = rng.integers(0, FIELD_PIXELS, n_neurons)
    plane = rng.integers(0, N_PLANES, n_neurons)

    # SNR calibration (module docstring): signal variance, and the variance that the gain and
    # the jitter add around the mean curve, both per unit amplitude squared
    coefficients = _harmonic_coefficients(concentration, ratio, jitter_rad)
    coefficients_unjittered = _harmonic_coefficients(concentration, ratio, 0.0)
    signal_var = 0.5 * np.sum(coefficients[1:] ** 2, axis=0)
    mean_square = coefficients_unjittered[0] ** 2 + 0.5 * np.sum(
        coefficients_unjittered[1:] ** 2, axis=0
    )
    drive_noise_var = np.exp(gain_sd**2) * mean_square - signal_var - coefficients[0] ** 2
    drive_noise_var = np.maximum(drive_noise_var, 0.0)
    with np.errstate(divide="ignore"):
        snr_cap = SNR_CAP_FRACTION * signal_var / drive_noise_var
    snr = np.minimum(snr_target, snr_cap)
    noise_var = amplitude**2 * (signal_var / snr - drive_noise_var)
    noise_sd = np.sqrt(noise_var)
    baseline = noise_sd / np.sqrt(np.expm1(log_sd**2))

    # One BLAS thread: the work is element-wise and single-threaded anyway; threaded BLAS
    # gains little here, stalls LAPACK's eigensolver by orders of magnitude when cores are
    # shared (parallel Snakemake jobs), and may round differently with the thread count.
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        # responses and spontaneous frames, block by block, in buffers reused across blocks
        # (fresh 40 MB temporaries cost more in page faults than the arithmetic)
        sresp = np.empty((n_neurons, n_trials))
        spont_z = np.empty((n_neurons, N_SPONT_FRAMES))
        mean_spont = np.empty(n_neurons)
        std_spont = np.empty(n_neurons)
        gram = np.zeros((N_SPONT_FRAMES, N_SPONT_FRAMES))
        phase = istim + jitter
        cos_phase, sin_phase = np.cos(phase), np.sin(phase)
        shared_scale = log_sd * np.sqrt(shared_fraction)
        private_scale = log_sd * np.sqrt(1.0 - shared_fraction)
        log_offset = np.log(baseline) - 0.5 * log_sd**2
        second_peak = ratio * np.exp(-2.0 * concentration)
        block_size = min(NEURONS_PER_BLOCK, n_neurons)
        buffer_drive = np.empty((block_size, n_trials))
        buffer_noise = np.empty((block_size, n_trials))
        buffer_private = np.empty((block_size, n_trials))
        buffer_spont = np.empty((block_size, N_SPONT_FRAMES))
        buffer_spont_private = np.empty((block_size, N_SPONT_FRAMES))
        for block, seeds_block in enumerate(seeds_blocks):
            rows = slice(block * NEURONS_PER_BLOCK, min((block + 1) * NEURONS_PER_BLOCK, n_neurons))
            n_rows = rows.stop - rows.start
            drive, noise = buffer_drive[:n_rows], buffer_noise[:n_rows]
            private = buffer_private[:n_rows]
            spont, private_spont = buffer_spont[:n_rows], buffer_spont_private[:n_rows]
            rng = np.random.default_rng(seeds_block)
            rng.standard_normal(out=private)
            rng.standard_normal(out=private_spont)

            # first peak exp(κ(cos x − 1)) ≥ exp(−2κ) > 0, so the second, exp(κ(−cos x − 1)), is
            # exp(−2κ) / first: one division instead of a second exp
            np.outer(np.cos(preferred[rows]), cos_phase, out=noise)
            np.outer(np.sin(preferred[rows]), sin_phase, out=drive)
            noise += drive
            noise -= 1.0
            noise *= concentration[rows, None]
            np.exp(noise, out=noise)
            np.divide(second_peak[rows, None], noise, out=drive)
            drive += noise
            drive *= amplitude[rows, None]
            drive *= gain

            np.matmul(loading[rows], factors_trials, out=noise)
            noise *= shared_scale[rows, None]
            private *= private_scale[rows, None]
            noise += private
            noise += log_offset[rows, None]
            np.exp(noise, out=noise)
            np.add(drive, noise, out=sresp[rows])

            np.matmul(loading[rows], factors_spont, out=spont)
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
        del buffer_drive, buffer_noise, buffer_private, buffer_spont, buffer_spont_private

        # top spontaneous PCs from the (F, F) Gram matrix: Z = U S Vᵀ, U = Z V / S
        _, right = scipy.linalg.eigh(
            gram, subset_by_index=[N_SPONT_FRAMES - N_SPONT_PCS, N_SPONT_FRAMES - 1]
        )
        right = right[:, ::-1]
        u_spont = spont_z @ right
        u_spont /= np.linalg.norm(u_spont, axis=0, keepdims=True)
        largest = np.argmax(np.abs(u_spont), axis=0)
        u_spont *= np.sign(u_spont[largest, np.arange(N_SPONT_PCS)])
        v_spont = u_spont.T @ spont_z
        del spont_z

    stat = np.empty(n_neurons, dtype=object)
    for i in range(n_neurons):
        stat[i] = {"med": np.array([ypix[i], xpix[i]], dtype=np.int64)}
    xyz = np.stack([xpix * PIXEL_UM, ypix * PIXEL_UM, plane * PLANE_SPACING_UM]).astype(np.float64)

    knobs = {
        "mean_snr": float(mean_snr),
        "snr_shape": float(snr_shape),
        "jitter_deg": float(jitter_deg),
        "gain_sd": float(gain_sd),
        "gain_running_correlation": float(gain_running_correlation),
        "n_shared": n_shared,
        "shared_fraction": float(shared_fraction),
        "shared_decay": float(shared_decay),
        "noise_log_sd": list(noise_log_sd),
        "concentration_median": float(concentration_median),
        "concentration_log_sd": float(concentration_log_sd),
        "second_peak_ratio": list(second_peak_ratio),
    }
    raw = {
        "sresp": sresp,
        "istim": istim,
        "mean_spont": mean_spont,
        "std_spont": std_spont,
        "u_spont": u_spont,
        "v_spont": v_spont,
        "stat": stat,
        "xyz": xyz,
        "run": run,
        "stimtimes": stimtimes,
        "frametimes": frametimes,
        "camtimes": camtimes,
        "info": (
            f"simulated by v1rsa.simulate.simulate_recording(n_neurons={n_neurons}, "
            f"n_trials={n_trials}, seed={seed}, "
            + ", ".join(f"{key}={value!r}" for key, value in knobs.items())
            + "); not a real recording"
        ),
    }
    truth = _ground_truth(
        seed=seed,
        knobs=knobs,
        preferred=preferred,
        concentration=concentration,
        ratio=ratio,
        amplitude=amplitude,
        baseline=baseline,
        log_sd=log_sd,
        noise_sd=noise_sd,
        snr=snr,
        loading=loading,
        istim=istim,
        jitter=jitter,
        gain=gain,
        factors_trials=factors_trials,
    )
    return raw, truth


def _ground_truth(
    *,
    seed,
    knobs,
    preferred,
    concentration,
    ratio,
    amplitude,
    baseline,
    log_sd,
    noise_sd,
    snr,
    loading,
    istim,
    jitter,
    gain,
    factors_trials,
):
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
