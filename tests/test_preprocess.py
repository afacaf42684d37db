"""Z-scoring single trials (the authors' compile_resp) and averaging them into orientation bins."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from conftest import peak_traced_bytes
from v1rsa import io as v1io
from v1rsa import load, simulate
from v1rsa.preprocess import _drop_columns, bin_conditions, preprocess, split_trials


def make_raw(n_neurons: int = 30, n_trials: int = 200, n_pcs: int = 8, seed: int = 0) -> dict:
    """A small dict in the raw layout, with tuned neurons and unit-norm spontaneous PCs."""
    rng = np.random.default_rng(seed)
    istim = rng.uniform(0, 2 * np.pi, n_trials)
    preferred = rng.uniform(0, 2 * np.pi, n_neurons)
    tuning = np.exp(2 * np.cos(istim[None, :] - preferred[:, None]))
    u_spont, _ = np.linalg.qr(rng.standard_normal((n_neurons, n_pcs)))
    return {
        "sresp": tuning * rng.exponential(size=(n_neurons, n_trials)),
        "istim": istim,
        "mean_spont": rng.uniform(0.1, 1, n_neurons),
        "std_spont": rng.uniform(0.5, 2, n_neurons),
        "u_spont": u_spont,
        "xyz": rng.uniform(0, 500, (3, n_neurons)),
    }


def compile_resp_direct(raw: dict, n_pcs: int) -> np.ndarray:
    """docs/science.md#preprocessing written out on the whole matrix: (N, T) float64, z-scored
    per neuron."""
    sresp = (raw["sresp"] - raw["mean_spont"][:, None]) / raw["std_spont"][:, None]
    if n_pcs:
        u = raw["u_spont"][:, :n_pcs]
        sresp = sresp - u @ (u.T @ sresp)
    return (sresp - sresp.mean(axis=1, keepdims=True)) / (sresp.std(axis=1, keepdims=True) + 1e-6)


@pytest.mark.parametrize("n_pcs", [0, 3])
@pytest.mark.parametrize("chunk_neurons", [4096, 7])
def test_preprocess_matches_the_direct_formula(n_pcs, chunk_neurons):
    raw = make_raw()
    trials = preprocess(raw, n_spont_pcs_removed=n_pcs, chunk_neurons=chunk_neurons)

    assert trials["response"].dims == ("trial", "neuron")
    assert trials["response"].dtype == np.float32
    expected = compile_resp_direct(raw, n_pcs).T
    np.testing.assert_allclose(trials["response"].values, expected, rtol=1e-5, atol=1e-5)
    # z-scored: mean 0 and std 1 (up to the authors' 1e-6) per neuron across trials
    np.testing.assert_allclose(trials["response"].mean("trial"), 0, atol=1e-5)
    np.testing.assert_allclose(trials["response"].std("trial"), 1, atol=1e-5)
    np.testing.assert_array_equal(trials["neuron"].values, np.arange(30))
    np.testing.assert_array_equal(trials["x"].values, raw["xyz"][0])
    np.testing.assert_array_equal(trials["z"].values, raw["xyz"][2])
    assert trials.attrs["n_neurons_dropped"] == 0
    assert trials.attrs["single_trials"] == 1
    assert json.loads(trials.attrs["preprocessing"])["n_spont_pcs_removed"] == n_pcs


def test_removing_pcs_changes_the_responses_and_chunking_does_not():
    raw = make_raw()
    whole = preprocess(raw, n_spont_pcs_removed=4, chunk_neurons=10_000)
    chunked = preprocess(raw, n_spont_pcs_removed=4, chunk_neurons=4)
    none_removed = preprocess(raw, n_spont_pcs_removed=0)
    np.testing.assert_allclose(whole["response"], chunked["response"], rtol=0, atol=1e-6)
    assert not np.allclose(whole["response"], none_removed["response"], atol=1e-2)


def test_orientation_is_istim_in_degrees_modulo_360():
    raw = make_raw()
    raw["istim"][:3] = [0.0, np.pi / 2, 2 * np.pi]
    orientation = preprocess(raw)["orientation"].values
    np.testing.assert_allclose(orientation[:3], [0.0, 90.0, 0.0])
    np.testing.assert_allclose(orientation[3:], np.degrees(raw["istim"][3:]))
    assert (orientation >= 0).all() and (orientation < 360).all()


def test_every_nth_split_matches_the_authors():
    # compile_resp: itest = zeros(NT, bool); itest[::nskip] = 1
    labels = split_trials(10, "every_nth", 4, seed=0)
    np.testing.assert_array_equal(np.flatnonzero(labels == "test"), [0, 4, 8])
    trials = preprocess(make_raw(n_trials=200), test_every=4)
    np.testing.assert_array_equal(
        np.flatnonzero(trials["split"].values == "test"), np.arange(0, 200, 4)
    )


def test_random_split_is_seeded_and_keeps_the_test_fraction():
    first = split_trials(200, "random", 4, seed=3)
    again = split_trials(200, "random", 4, seed=3)
    other = split_trials(200, "random", 4, seed=4)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert (first == "test").sum() == (other == "test").sum() == 50
    assert set(first) == {"train", "test"}
    with pytest.raises(ValueError, match="split 'halves' is unknown"):
        split_trials(200, "halves", 4, seed=0)


def test_bad_neurons_are_dropped_counted_and_logged(caplog):
    raw = make_raw()
    raw["sresp"][2, 7] = np.nan
    raw["mean_spont"][5] = np.inf
    raw["std_spont"][11] = 0.0
    raw["sresp"][17] = 0.4  # never responds
    raw["u_spont"][23, 0] = np.nan  # only matters when PCs are removed
    bad = [2, 5, 11, 17, 23]
    good = np.setdiff1d(np.arange(30), bad)

    with caplog.at_level(logging.WARNING, logger="v1rsa.preprocess"):
        trials = preprocess(raw, n_spont_pcs_removed=2, chunk_neurons=8)
    assert trials.attrs["n_neurons_dropped"] == 5
    assert "dropped 5 of 30 neurons" in caplog.text
    np.testing.assert_array_equal(trials["neuron"].values, good)
    np.testing.assert_array_equal(trials["y"].values, raw["xyz"][1][good])
    assert np.isfinite(trials["response"].values).all()

    # The kept neurons are processed as if the bad ones had never been recorded.
    clean = {key: value[good] for key, value in raw.items() if key not in ("istim", "xyz")}
    clean["istim"] = raw["istim"]
    expected = compile_resp_direct(clean, 2).T
    np.testing.assert_allclose(trials["response"].values, expected, rtol=1e-5, atol=1e-5)

    # Without PC removal, u_spont is not used, so neuron 23 is kept.
    assert preprocess(raw).attrs["n_neurons_dropped"] == 4


def test_dropping_columns_in_place_matches_np_delete():
    rng = np.random.default_rng(0)
    for drop in ([0], [6], [1, 2, 5], list(range(6))):
        matrix = rng.standard_normal((5, 7)).astype(np.float32)
        expected = np.delete(matrix, drop, axis=1)
        compacted = _drop_columns(matrix, drop)
        np.testing.assert_array_equal(compacted, expected)
        assert compacted.flags.c_contiguous and np.shares_memory(compacted, matrix)


@pytest.fixture(scope="module")
def recording_files(tmp_path_factory):
    """One simulated recording (2,000 neurons x 1,000 trials) as raw.npy and as raw.h5."""
    folder = tmp_path_factory.mktemp("recording")
    raw, _ = simulate.simulate_recording(2000, 1000, seed=5)
    simulate.save_raw(raw, folder / "raw.npy")
    simulate.simulate_to_hdf5(folder / "raw.h5", 2000, 1000, seed=5)
    return folder / "raw.npy", folder / "raw.h5"


@pytest.mark.parametrize("n_pcs", [0, 4])
def test_zscore_from_hdf5_equals_zscore_from_npy(recording_files, n_pcs):
    npy, h5 = recording_files
    settings = {"n_spont_pcs_removed": n_pcs, "chunk_neurons": 300, "source": "s", "checksum": "c"}
    from_npy = preprocess(load.load_raw(npy), **settings)
    with load.open_raw_hdf5(h5) as raw:
        from_hdf5 = preprocess(raw, **settings)
    xr.testing.assert_identical(from_hdf5, from_npy)
    binned = [bin_conditions(trials, bin_width_deg=6) for trials in (from_hdf5, from_npy)]
    xr.testing.assert_identical(*binned)


def test_zscore_from_hdf5_holds_one_chunk_besides_its_output(recording_files):
    npy, h5 = recording_files
    sresp_bytes, output_bytes = 2000 * 1000 * 8, 1000 * 2000 * 4  # float64 in, float32 out

    def from_hdf5():
        with load.open_raw_hdf5(h5) as raw:
            preprocess(raw, n_spont_pcs_removed=4, chunk_neurons=32)

    assert peak_traced_bytes(from_hdf5) < output_bytes + 0.25 * sresp_bytes
    # the measure sees whole arrays: reading the .npy file holds all of sresp
    assert peak_traced_bytes(lambda: preprocess(load.load_raw(npy))) > sresp_bytes


def test_preprocess_rejects_impossible_requests():
    raw = make_raw(n_pcs=8)
    with pytest.raises(ValueError, match="only 8 columns"):
        preprocess(raw, n_spont_pcs_removed=9)
    del raw["u_spont"]
    with pytest.raises(ValueError, match="'u_spont'"):
        preprocess(raw, n_spont_pcs_removed=1)
    with pytest.raises(v1io.ContractError, match="raw dict: key 'istim'"):
        preprocess({**make_raw(), "istim": np.full(200, np.nan)})
    with pytest.raises(ValueError, match="test_every=1"):
        preprocess(make_raw(), test_every=1)


def test_trials_round_trip_through_netcdf(tmp_path):
    trials = preprocess(make_raw(), source="raw.npy", checksum="abc")
    v1io.write_netcdf(trials, tmp_path / "trials.nc")
    again = v1io.read_netcdf(
        tmp_path / "trials.nc", ["response", "split"], {"response": ("trial", "neuron")}
    )
    np.testing.assert_array_equal(again["response"].values, trials["response"].values)
    np.testing.assert_array_equal(again["split"].values, trials["split"].values)
    assert again["response"].dtype == np.float32
    assert again.attrs["checksum"] == "abc"
    assert int(again.attrs["single_trials"]) == 1


def folds_by_loop(trials, bin_width_deg, n_folds):
    """Deal the trials of each bin to folds in presentation order, one bin at a time."""
    orientation = trials["orientation"].values
    response = trials["response"].values.astype(np.float64)
    n_bins = int(360 / bin_width_deg)
    means = np.zeros((n_folds, n_bins, response.shape[1]))
    for b in range(n_bins):
        in_bin = [
            t
            for t in range(len(orientation))
            if b * bin_width_deg <= orientation[t] < (b + 1) * bin_width_deg
        ]
        for f in range(n_folds):
            means[f, b] = response[in_bin[f::n_folds]].mean(axis=0)
    return means


def test_bin_conditions_matches_scipy_and_a_loop():
    trials = preprocess(make_raw(n_trials=300), source="raw.npy", checksum="abc")
    conditions = bin_conditions(trials, bin_width_deg=30, n_folds=2)

    edges = np.arange(0, 361, 30)
    expected = scipy.stats.binned_statistic(
        trials["orientation"].values,
        trials["response"].values.T.astype(np.float64),
        statistic="mean",
        bins=edges,
    ).statistic.T
    counts = np.histogram(trials["orientation"].values, bins=edges)[0]
    assert conditions["response"].dims == ("condition", "neuron")
    assert conditions["response"].dtype == np.float32
    np.testing.assert_allclose(conditions["response"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(conditions["n_trials"], counts)
    np.testing.assert_allclose(conditions["orientation"], np.arange(15, 360, 30))

    assert conditions["response_fold"].dims == ("fold", "condition", "neuron")
    np.testing.assert_allclose(
        conditions["response_fold"], folds_by_loop(trials, 30, 2), rtol=1e-5, atol=1e-6
    )
    assert conditions.attrs["bin_width_deg"] == 30
    assert conditions.attrs["n_folds"] == 2
    assert conditions.attrs["checksum"] == "abc"
    params = json.loads(conditions.attrs["preprocessing"])
    assert params["binning"]["fold_method"] == "interleaved"
    assert params["n_spont_pcs_removed"] == 0


@pytest.mark.parametrize("fold_method", ["interleaved", "random"])
def test_folds_are_disjoint_balanced_and_cover_every_trial(fold_method):
    trials = preprocess(make_raw(n_trials=300))
    conditions = bin_conditions(trials, bin_width_deg=45, n_folds=3, fold_method=fold_method)
    n_fold = conditions["n_trials_fold"].values
    np.testing.assert_array_equal(n_fold.sum(axis=0), conditions["n_trials"])
    assert (n_fold.max(axis=0) - n_fold.min(axis=0) <= 1).all()
    # Folds partition each bin, so their count-weighted mean is the bin mean.
    pooled = (conditions["response_fold"] * conditions["n_trials_fold"]).sum("fold")
    np.testing.assert_allclose(
        pooled / conditions["n_trials"], conditions["response"], rtol=1e-5, atol=1e-5
    )


def test_random_folds_are_seeded():
    trials = preprocess(make_raw(n_trials=300))
    first = bin_conditions(trials, bin_width_deg=45, fold_method="random", seed=1)
    again = bin_conditions(trials, bin_width_deg=45, fold_method="random", seed=1)
    other = bin_conditions(trials, bin_width_deg=45, fold_method="random", seed=2)
    interleaved = bin_conditions(trials, bin_width_deg=45)
    np.testing.assert_array_equal(first["response_fold"], again["response_fold"])
    assert not np.allclose(first["response_fold"], other["response_fold"])
    assert not np.allclose(first["response_fold"], interleaved["response_fold"])
    np.testing.assert_array_equal(first["response"], interleaved["response"])


def test_bins_with_too_few_trials_are_named():
    raw = make_raw(n_trials=40)
    raw["istim"] = np.radians(np.linspace(0, 80, 40))  # nothing beyond 80°
    trials = preprocess(raw)
    with pytest.raises(ValueError, match=r"bin 9 \[90°, 100°\) has 0.*wider bin_width_deg"):
        bin_conditions(trials, bin_width_deg=10)
    raw["istim"] = np.radians(np.concatenate([np.arange(0, 360, 90), [10.0] * 36]))
    with pytest.raises(ValueError, match=r"bin 1 \[90°, 180°\) has 1"):
        bin_conditions(preprocess(raw), bin_width_deg=90, n_folds=2)
    with pytest.raises(ValueError, match="divisor of 360"):
        bin_conditions(trials, bin_width_deg=7)


def test_conditions_round_trip_through_netcdf(tmp_path):
    conditions = bin_conditions(preprocess(make_raw(n_trials=300)), bin_width_deg=60)
    v1io.write_netcdf(conditions, tmp_path / "conditions.nc")
    again = v1io.read_netcdf(
        tmp_path / "conditions.nc",
        ["response", "response_fold"],
        {"response_fold": ("fold", "condition", "neuron")},
    )
    np.testing.assert_array_equal(again["response_fold"].values, conditions["response_fold"])
    assert again["n_trials_fold"].dtype == np.int64
    assert again["x"].dims == ("neuron",)
