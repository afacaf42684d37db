"""Tests of v1rsa.simulate: the NMA raw layout, realism statistics, ground truth, determinism."""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import xarray as xr

from conftest import peak_traced_bytes
from v1rsa import io, simulate, tuning

N_NEURONS, N_TRIALS = 2000, 1500


@pytest.fixture(scope="module")
def recording():
    return simulate.simulate_recording(N_NEURONS, N_TRIALS, seed=0)


def _test_split(n_trials):
    """Every 4th trial in presentation order is a test trial (docs/science.md#preprocessing)."""
    return np.arange(n_trials) % 4 != 0


def test_raw_has_exactly_the_nma_layout(recording):
    raw, _ = recording
    n, t = N_NEURONS, N_TRIALS
    assert set(raw) == {
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
    }
    expected = {
        "sresp": ((n, t), np.float64),
        "istim": ((t,), np.float64),
        "mean_spont": ((n,), np.float64),
        "std_spont": ((n,), np.float64),
        "u_spont": ((n, 128), np.float64),
        "v_spont": ((128, 910), np.float64),
        "stat": ((n,), object),
        "xyz": ((3, n), np.float64),
        "run": ((t,), np.float64),
        "stimtimes": ((t,), np.int64),
    }
    for key, (shape, dtype) in expected.items():
        assert raw[key].shape == shape, key
        assert raw[key].dtype == dtype, key
    for key in ("frametimes", "camtimes"):
        assert raw[key].ndim == 1 and raw[key].dtype == np.int64
        assert np.all(np.diff(raw[key]) > 0)
    assert isinstance(raw["info"], str)
    assert np.all((raw["istim"] >= 0) & (raw["istim"] < 2 * np.pi))
    assert np.all(raw["run"] >= 0)
    # stimulus onsets index imaging frames, after the spontaneous block
    assert raw["stimtimes"][0] >= 910 and raw["stimtimes"][-1] < raw["frametimes"].size
    med = np.stack([entry["med"] for entry in raw["stat"]])
    assert med.dtype == np.int64 and med.shape == (n, 2)
    # med is [ypix, xpix]; xyz rows are x, y, z in µm
    np.testing.assert_array_equal(raw["xyz"][0], med[:, 1] * simulate.PIXEL_UM)
    np.testing.assert_array_equal(raw["xyz"][1], med[:, 0] * simulate.PIXEL_UM)


def test_responses_are_non_negative_and_heavy_tailed(recording):
    raw, _ = recording
    assert raw["sresp"].min() >= 0
    skewness = scipy.stats.skew(raw["sresp"], axis=1)
    assert np.all(skewness > 0)
    assert np.median(skewness) > 1.0


def test_mean_held_out_snr_is_low_as_in_v1(recording):
    raw, truth = recording
    orientation = np.rad2deg(raw["istim"])
    snr = tuning.tuning_snr(raw["sresp"].T, orientation, _test_split(N_TRIALS))
    assert 0.05 <= snr.mean() <= 0.2
    # the measured SNR follows the true one (1,125 training trials inflate it a little)
    assert 0.08 <= truth["snr"].mean() <= 0.12
    assert scipy.stats.spearmanr(snr, truth["snr"]).statistic > 0.7


def test_preferred_angles_are_uniform_and_recovered(recording):
    raw, truth = recording
    orientation = np.rad2deg(raw["istim"])
    measured = tuning.preferred_orientation(raw["sresp"].T, orientation)
    assert scipy.stats.kstest(measured / 360, "uniform").pvalue > 0.01
    assert scipy.stats.kstest(truth["preferred_orientation"] / 360, "uniform").pvalue > 0.01
    error = (measured - truth["preferred_orientation"].values + 180) % 360 - 180
    best = truth["snr"].values > np.quantile(truth["snr"].values, 0.75)
    assert np.median(np.abs(error[best])) < 5.0


def test_tuning_has_two_unequal_peaks_180_degrees_apart(recording):
    raw, truth = recording
    best = truth["snr"].values > np.quantile(truth["snr"].values, 0.75)
    curves = tuning.tuning_curves(raw["sresp"][best].T, np.rad2deg(raw["istim"]))
    columns = np.arange(curves.shape[1])
    first = np.argmax(curves, axis=0)
    # the highest point within ±30° of the opposite direction is a local maximum there
    window = np.stack([curves[(first + 180 + k) % 360, columns] for k in range(-30, 31)])
    inside = np.argmax(window, axis=0)
    assert np.mean((inside > 0) & (inside < 60)) > 0.9
    trough = curves.min(axis=0)
    ratio = (window.max(axis=0) - trough) / (curves.max(axis=0) - trough)
    assert np.all(ratio <= 1.0)
    assert 0.4 < np.median(ratio) < 0.9
    assert np.std(ratio) > 0.1
    # the truth agrees: peak heights differ, ratio ρ in the range asked for
    rho = truth["second_peak_ratio"].values
    assert rho.min() >= 0.3 and rho.max() <= 0.95
    np.testing.assert_allclose(truth["amplitude_second_peak"], truth["amplitude_first_peak"] * rho)


def test_spontaneous_statistics_match_the_noise_model(recording):
    raw, truth = recording
    u, v = raw["u_spont"], raw["v_spont"]
    np.testing.assert_allclose(u.T @ u, np.eye(128), atol=1e-10)
    # v = uᵀ Z with u the left singular vectors: rows orthogonal, norms = singular values
    gram = v @ v.T
    singular = np.sqrt(np.diag(gram))
    np.testing.assert_allclose(gram, np.diag(singular**2), atol=1e-8 * singular[0] ** 2)
    assert np.all(np.diff(singular) <= 1e-9 * singular[0])
    # over 910 frames the spontaneous mean estimates the baseline b within its standard error
    z = (raw["mean_spont"] - truth["baseline"].values) / (truth["noise_sd"].values / np.sqrt(910))
    assert abs(z.mean()) < 0.15 and 0.8 < z.std() < 1.2
    np.testing.assert_allclose(np.median(raw["std_spont"] / truth["noise_sd"].values), 1, atol=0.1)
    # the top spontaneous PCs span most of the shared noise loadings (a random 128-d subspace
    # would catch 128 / 2000 = 6 %)
    loading = truth["shared_loading"].values * truth["noise_log_sd"].values[:, None]
    captured = np.sum((u.T @ loading) ** 2) / np.sum(loading**2)
    assert captured > 0.5


def _ridge_decoding_error_deg(raw, n_neurons):
    """Stringer et al. 2021 linear decoder: ridge (λ = n_train) from normalised responses to
    48 von Mises bumps (κ = 10); angle read out as the bumps' population vector."""
    x = raw["sresp"][:n_neurons] - raw["mean_spont"][:n_neurons, None]
    x /= raw["std_spont"][:n_neurons, None]
    x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
    angle = raw["istim"]
    train = _test_split(angle.size)
    centres = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    bumps = np.exp((np.cos(angle[train, None] - centres) - 1) / 0.1)
    bumps = (bumps - bumps.mean(axis=1, keepdims=True)) / bumps.std(axis=1, keepdims=True)
    x_train, x_test = x[:, train], x[:, ~train]
    dual = np.linalg.solve(x_train.T @ x_train + train.sum() * np.eye(train.sum()), bumps)
    decoded = np.angle(((x_test.T @ x_train) @ dual) @ np.exp(1j * centres))
    error = np.angle(np.exp(1j * (angle[~train] - decoded)))
    return np.rad2deg(np.median(np.abs(error)))


def test_decoding_error_falls_with_neurons_down_to_the_jitter_floor(recording):
    raw, _ = recording
    errors = [_ridge_decoding_error_deg(raw, n) for n in (250, 1000, 2000)]
    assert errors[0] > errors[1] > errors[2] > 1.0
    # information-limiting jitter of 10° cannot be decoded away: median |δ| = 0.674 · 10°
    jittered, _ = simulate.simulate_recording(N_NEURONS, N_TRIALS, seed=0, jitter_deg=10.0)
    error_jittered = _ridge_decoding_error_deg(jittered, 2000)
    assert error_jittered > 0.8 * 6.74
    assert error_jittered > errors[2] + 2.0


def _unit_tuning(x, kappa, rho):
    return np.exp(kappa * (np.cos(x) - 1)) + rho * np.exp(kappa * (np.cos(x - np.pi) - 1))


def test_expected_response_is_the_tuning_formula(recording):
    _, truth = recording
    neurons = [0, 7, 1999]
    orientation = np.array([0.0, 33.3, 181.0, 359.9])
    t = truth.isel(neuron=neurons)
    mu = np.deg2rad(t["preferred_orientation"].values)
    x = np.deg2rad(orientation)[:, None] - mu
    # without jitter: b + A h(θ − μ)
    t0 = t.assign_attrs(jitter_deg=0.0)
    direct = t["baseline"].values + t["amplitude_first_peak"].values * _unit_tuning(
        x, t["concentration"].values, t["second_peak_ratio"].values
    )
    np.testing.assert_allclose(simulate.expected_response(t0, orientation), direct, rtol=1e-10)
    # with jitter δ ~ Normal(0, σ²): b + A E_δ h(θ + δ − μ), by numerical integration
    sigma = np.deg2rad(15.0)
    t15 = t.assign_attrs(jitter_deg=15.0)
    got = simulate.expected_response(t15, orientation)
    for j in range(len(neurons)):
        for i in range(len(orientation)):
            mean, _ = scipy.integrate.quad(
                lambda d, i=i, j=j: (
                    _unit_tuning(
                        x[i, j] + d, t["concentration"].values[j], t["second_peak_ratio"].values[j]
                    )
                    * scipy.stats.norm.pdf(d, scale=sigma)
                ),
                -8 * sigma,
                8 * sigma,
            )
            want = t["baseline"].values[j] + t["amplitude_first_peak"].values[j] * mean
            np.testing.assert_allclose(got[i, j], want, rtol=1e-8)


def test_expected_response_matches_trial_means():
    # many trials, high SNR and a wide jitter, so that averaging over the jitter matters
    raw, truth = simulate.simulate_recording(128, 20000, seed=3, mean_snr=1.0, jitter_deg=20.0)
    orientation = truth["orientation"].values
    response = raw["sresp"].T

    def mean_squared_z(expected):
        z = []
        for lower in range(0, 360, 10):
            in_bin = (orientation >= lower) & (orientation < lower + 10)
            difference = response[in_bin] - expected[in_bin]
            z.append(difference.mean(0) / (difference.std(0) / np.sqrt(in_bin.sum())))
        return np.mean(np.square(z))

    assert mean_squared_z(simulate.expected_response(truth, orientation)) < 1.3
    # the curve without the jitter average is measurably wrong
    unblurred = simulate.expected_response(truth.assign_attrs(jitter_deg=0.0), orientation)
    assert mean_squared_z(unblurred) > 5.0


def test_ground_truth_contents_and_netcdf_round_trip(recording, tmp_path):
    raw, truth = recording
    assert truth.sizes == {"neuron": N_NEURONS, "trial": N_TRIALS, "shared_dimension": 64}
    for name in (
        "preferred_orientation",
        "amplitude_first_peak",
        "amplitude_second_peak",
        "concentration",
        "half_width",
        "baseline",
        "noise_log_sd",
        "noise_sd",
        "snr",
    ):
        assert truth[name].dims == ("neuron",), name
    for name in ("orientation", "jitter", "gain"):
        assert truth[name].dims == ("trial",), name
    np.testing.assert_allclose(np.deg2rad(truth["orientation"]), raw["istim"], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(truth["shared_loading"], axis=1), 1.0)
    assert abs(truth["gain"].mean() - 1) < 0.05
    assert truth.attrs["seed"] == 0 and truth.attrs["jitter_deg"] == 0.8
    # half-width at half-maximum of exp(κ(cos x − 1)): cos x = 1 + ln(1/2) / κ
    half = np.deg2rad(truth["half_width"].values)
    np.testing.assert_allclose(np.exp(truth["concentration"] * (np.cos(half) - 1)), 0.5)
    path = tmp_path / "ground_truth.nc"
    io.write_netcdf(truth, path)
    back = io.read_netcdf(
        path, ["preferred_orientation"], {"shared_loading": ("neuron", "shared_dimension")}
    )
    np.testing.assert_array_equal(back["snr"], truth["snr"])
    np.testing.assert_array_equal(back.attrs["noise_log_sd"], truth.attrs["noise_log_sd"])


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_identical_file_bytes(tmp_path):
    paths = {}
    for name, seed in [("a", 5), ("b", 5), ("c", 6)]:
        raw, _ = simulate.simulate_recording(300, 200, seed=seed)
        paths[name] = simulate.save_raw(raw, tmp_path / f"{name}.npy")
    assert _sha256(paths["a"]) == _sha256(paths["b"])
    assert _sha256(paths["a"]) != _sha256(paths["c"])
    for name in ("d", "e"):
        simulate.simulate_to_hdf5(tmp_path / f"{name}.h5", 300, 200, seed=5)
    assert _sha256(tmp_path / "d.h5") == _sha256(tmp_path / "e.h5")


#: each simulated recording's fingerprint (tests/data/simulated_recordings.json)
FINGERPRINTS = Path(__file__).parent / "data" / "simulated_recordings.json"
RECORDINGS = {
    "default_knobs": ((1500, 300, 3), {}),
    "every_knob": ((300, 200, 5), {"jitter_deg": 2.0, "n_shared": 8, "noise_log_sd": (0.5, 0.9),
                                   "second_peak_ratio": (0.1, 0.5)}),
}


def _recording_fingerprint(raw, truth) -> dict:
    """What identifies a recording, across CPUs: integer arrays and text by their sha256; float
    arrays by three sums (plain, absolute, and weighted by a fixed sawtooth), because another
    CPU's vector maths (numpy's exp and cos with or without AVX-512) may differ in the last bit;
    the truth's attrs as they are."""
    arrays = {f"raw.{key}": raw[key] for key in simulate.RAW_KEYS}
    arrays["raw.stat"] = np.stack([entry["med"] for entry in raw["stat"]])
    arrays["raw.info"] = np.frombuffer(raw["info"].encode(), dtype=np.uint8)
    arrays.update({f"truth.{name}": truth[name].values for name in truth.variables})
    fingerprint = {}
    for name, value in sorted(arrays.items()):
        value = np.ascontiguousarray(value)
        if value.dtype.kind == "f":
            flat = value.ravel()
            sawtooth = (np.arange(flat.size) * 7919 % 1000) / 1000 - 0.5
            fingerprint[name] = {"shape": list(value.shape), "sum": float(flat.sum()),
                                 "abs_sum": float(np.abs(flat).sum()),
                                 "weighted": float(flat @ sawtooth)}
        else:
            fingerprint[name] = {"shape": list(value.shape), "dtype": value.dtype.str,
                                 "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    fingerprint["truth.attrs"] = {key: np.asarray(value).tolist()
                                  for key, value in truth.attrs.items()}
    return json.loads(json.dumps(fingerprint))  # as read back from the file


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_a_seed_gives_the_same_recording_as_it_always_has(name):
    # Every downstream number and the calibration in the module docstring rest on these draws,
    # so a change to them must be deliberate: then write the new fingerprints with
    # _recording_fingerprint. The floats agree to 1e-9 of their absolute sum: rounding in the
    # last bit, not a different draw.
    size, knobs = RECORDINGS[name]
    ours = _recording_fingerprint(*simulate.simulate_recording(*size, **knobs))
    expected = json.loads(FINGERPRINTS.read_text())[name]
    assert ours.keys() == expected.keys()
    for key, value in expected.items():
        if "abs_sum" not in value:
            assert ours[key] == value, key
            continue
        assert ours[key]["shape"] == value["shape"], key
        for total in ("sum", "abs_sum", "weighted"):
            assert ours[key][total] == pytest.approx(value[total], rel=0,
                                                     abs=1e-9 * value["abs_sum"]), (key, total)


def test_settings_are_checked_and_name_the_field():
    settings = simulate.SimulationSettings(200, 50, 1, noise_log_sd=[0.5, 0.9], n_shared=4.0)
    assert settings.noise_log_sd == (0.5, 0.9) and isinstance(settings.n_shared, int)
    assert list(settings.knobs())[:2] == ["mean_snr", "snr_shape"]
    assert settings.knobs()["noise_log_sd"] == [0.5, 0.9]
    bad = {
        "n_neurons": {"n_neurons": 127},
        "n_trials": {"n_trials": 0},
        "seed": {"seed": -1},
        "n_shared": {"n_shared": 1.5},
        "mean_snr": {"mean_snr": float("nan")},
        "jitter_deg": {"jitter_deg": -0.1},
        "shared_fraction": {"shared_fraction": 1.2},
        "noise_log_sd": {"noise_log_sd": (0.5, 4.0)},
        "second_peak_ratio": {"second_peak_ratio": (0.9, 0.3)},
    }
    for name, change in bad.items():
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            simulate.SimulationSettings(**{"n_neurons": 200, "n_trials": 50, **change})
    with pytest.raises(TypeError, match="jiter_deg"):
        simulate.simulate_recording(200, 50, jiter_deg=1.0)


def test_save_raw_writes_exactly_the_path_in_the_nma_format(tmp_path):
    raw, _ = simulate.simulate_recording(200, 50, seed=1)
    path = simulate.save_raw(raw, tmp_path / "raw")  # np.save would have written raw.npy
    assert path == tmp_path / "raw"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    # our own file, so a plain pickle load is fine here; the pipeline uses a safe unpickler
    loaded = np.load(path, allow_pickle=True)
    assert loaded.shape == () and loaded.dtype == object
    back = loaded.item()
    assert set(back) == set(raw)
    for key in ("sresp", "istim", "u_spont", "stimtimes"):
        np.testing.assert_array_equal(back[key], raw[key])
    assert back["stat"][3]["med"].tolist() == raw["stat"][3]["med"].tolist()


def test_bad_arguments_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="n_neurons"):
        simulate.simulate_recording(100, 50)
    with pytest.raises(ValueError, match="mean_snr"):
        simulate.simulate_recording(200, 50, mean_snr=0)
    with pytest.raises(ValueError, match="second_peak_ratio"):
        simulate.simulate_recording(200, 50, second_peak_ratio=(0.9, 0.3))
    with pytest.raises(ValueError, match="missing keys"):
        simulate.save_raw({"sresp": np.zeros((2, 2))}, tmp_path / "raw.npy")
    assert not list(tmp_path.iterdir())


def test_streamed_hdf5_equals_the_in_memory_recording(tmp_path):
    # two blocks of neurons (the second partial), HDF5 chunks of 128 rows, non-default knobs
    n, t, knobs = 1500, 3000, {"jitter_deg": 2.0, "n_shared": 8, "noise_log_sd": (0.5, 0.9)}
    raw, truth = simulate.simulate_recording(n, t, seed=7, **knobs)
    path = tmp_path / "raw.h5"
    streamed_truth = simulate.simulate_to_hdf5(path, n, t, seed=7, **knobs)
    # the scratch file of spontaneous frames is gone, and nothing half-written is left
    assert [p.name for p in tmp_path.iterdir()] == ["raw.h5"]
    xr.testing.assert_identical(streamed_truth, truth)
    with h5py.File(path, "r") as file:
        assert set(file) == set(raw)
        assert file["sresp"].chunks == (simulate.hdf5_chunk_neurons(n, t), t) == (128, t)
        for key in set(raw) - {"stat", "info"}:
            assert file[key].dtype == raw[key].dtype, key
            np.testing.assert_array_equal(file[key][()], raw[key], err_msg=key)
        med = np.stack([entry["med"] for entry in raw["stat"]])
        np.testing.assert_array_equal(file["stat/med"][()], med)
        assert file["info"].asstr()[()] == raw["info"]


def test_a_failed_hdf5_simulation_leaves_no_file(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(simulate, "_spont_pcs", fail)  # after every block of sresp is written
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate.simulate_to_hdf5(tmp_path / "raw.h5", 300, 50, seed=0)
    assert not list(tmp_path.iterdir())


def test_streamed_simulation_memory_does_not_grow_with_the_recording(tmp_path):
    n_trials, sizes = 2000, (2048, 8192)
    peaks = [
        peak_traced_bytes(
            lambda n=n: simulate.simulate_to_hdf5(tmp_path / f"{n}.h5", n, n_trials, seed=0)
        )
        for n in sizes
    ]
    sresp_growth = 8 * n_trials * (sizes[1] - sizes[0])  # float64 bytes
    # per-neuron parameters grow (u_spont, loadings: ~2 kB a neuron), the responses do not
    assert peaks[1] - peaks[0] < 0.1 * sresp_growth
    # the measure sees numpy arrays: the in-memory simulation holds all of sresp
    in_memory = peak_traced_bytes(lambda: simulate.simulate_recording(sizes[1], n_trials, seed=0))
    assert in_memory > 8 * n_trials * sizes[1]
