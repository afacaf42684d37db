"""Reading the raw recording and the binned NMA files, safely and with clear errors."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil

import h5py
import numpy as np
import numpy.lib.format as npy_format
import pytest
import torch

from v1rsa import io as v1io
from v1rsa import simulate
from v1rsa.load import (
    UnsafePickleError,
    binned_as_trials,
    file_sha256,
    load_binned,
    load_raw,
    open_raw,
    open_raw_hdf5,
)


def make_raw(n_neurons: int = 12, n_trials: int = 40, seed: int = 0) -> dict:
    """A small dict in the raw layout of ``stringer_orientations.npy``."""
    rng = np.random.default_rng(seed)
    u_spont, _ = np.linalg.qr(rng.standard_normal((n_neurons, 8)))
    return {
        "sresp": rng.exponential(size=(n_neurons, n_trials)),
        "istim": rng.uniform(0, 2 * np.pi, n_trials),
        "mean_spont": rng.uniform(0.1, 1, n_neurons),
        "std_spont": rng.uniform(0.5, 2, n_neurons),
        "u_spont": u_spont,
        "v_spont": rng.standard_normal((8, 30)),
        "stat": np.array(
            [{"med": rng.integers(0, 512, 2), "npix": np.int64(80)} for _ in range(n_neurons)],
            dtype=object,
        ),
        "xyz": rng.uniform(0, 500, (3, n_neurons)),
        "run": rng.exponential(size=n_trials),
        "stimtimes": np.arange(n_trials, dtype=np.int64) * 3,
        "frametimes": np.arange(3 * n_trials, dtype=np.int64),
        "camtimes": np.arange(6 * n_trials, dtype=np.int64),
        "info": "a test recording",
    }


def save_raw(raw: dict, path) -> None:
    """Save ``raw`` as the NMA project file was saved: a 0-d object array, pickled."""
    np.save(path, np.array(raw, dtype=object), allow_pickle=True)


def save_raw_with_pickle(raw: dict, path, protocol: int, numpy_module: str) -> None:
    """Save ``raw`` as np.save does, with a chosen pickle protocol and numpy module spelling.

    numpy 1.x writes protocol 3 and ``numpy.core.multiarray``; numpy 2.x protocol 4 and
    ``numpy._core.multiarray``. Protocols <= 3 name globals in plain text lines, so the
    spelling of an older numpy can be written by replacing the module name.
    """
    array = np.array(raw, dtype=object)
    payload = pickle.dumps(array, protocol=protocol)
    if numpy_module == "numpy.core":
        assert protocol <= 3
        payload = payload.replace(b"numpy._core.", b"numpy.core.")
        assert b"numpy.core.multiarray\n_reconstruct\n" in payload
        assert b"numpy._core" not in payload
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, npy_format.header_data_from_array_1_0(array))
    path.write_bytes(buffer.getvalue() + payload)


def assert_raw_equal(loaded: dict, raw: dict) -> None:
    assert sorted(loaded) == sorted(raw)
    for key, value in raw.items():
        if key == "stat":
            for got, want in zip(loaded[key], value, strict=True):
                np.testing.assert_array_equal(got["med"], want["med"])
                assert got["npix"] == want["npix"]
        elif key == "info":
            assert loaded[key] == value
        else:
            assert loaded[key].dtype == value.dtype
            np.testing.assert_array_equal(loaded[key], value)


def test_load_raw_round_trips_a_dict_saved_by_np_save(tmp_path):
    raw = make_raw()
    path = tmp_path / "raw.npy"
    save_raw(raw, path)
    assert_raw_equal(load_raw(path), raw)


@pytest.mark.parametrize(
    ("protocol", "numpy_module"),
    [
        (2, "numpy.core"),
        (3, "numpy.core"),
        (3, "numpy._core"),
        (4, "numpy._core"),
        (5, "numpy._core"),
    ],
)
def test_load_raw_reads_pickles_of_numpy_1_and_2(tmp_path, protocol, numpy_module):
    raw = make_raw()
    path = tmp_path / "raw.npy"
    save_raw_with_pickle(raw, path, protocol, numpy_module)
    assert_raw_equal(load_raw(path), raw)


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _RunsPython:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.mark.parametrize(
    ("payload", "global_name"), [(_RunsShell, "system"), (_RunsPython, "builtins.exec")]
)
def test_load_raw_refuses_a_pickle_that_would_run_code(tmp_path, payload, global_name):
    marker = tmp_path / "marker"
    raw = make_raw()
    raw["stat"][3]["med"] = payload(marker)  # hidden deep inside the object array
    path = tmp_path / "evil.npy"
    save_raw(raw, path)

    with pytest.raises(UnsafePickleError, match=global_name) as caught:
        load_raw(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not marker.exists()

    # The same file is live: numpy's own unpickler runs the payload.
    np.load(path, allow_pickle=True)
    assert marker.exists()


def test_load_raw_keeps_non_finite_responses_for_preprocessing(tmp_path):
    raw = make_raw()
    raw["sresp"][2, 5] = np.nan
    path = tmp_path / "raw.npy"
    save_raw(raw, path)
    assert np.isnan(load_raw(path)["sresp"][2, 5])


def _without(key):
    def change(raw):
        del raw[key]

    return change


def _replace(key, make_value):
    def change(raw):
        raw[key] = make_value(raw)

    return change


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (_without("sresp"), "sresp", "missing key"),
        (_without("std_spont"), "std_spont", "missing key"),
        (_replace("istim", lambda r: r["istim"][:-1]), "istim", r"expected \(T,\) = \(40,\)"),
        (_replace("istim", lambda r: np.where(r["istim"] > 3, np.nan, r["istim"])), "istim", "NaN"),
        (_replace("istim", lambda r: np.degrees(r["istim"])), "istim", r"radians in \[0, 2π\]"),
        (_replace("mean_spont", lambda r: r["mean_spont"][:5]), "mean_spont", r"\(12,\)"),
        (_replace("sresp", lambda r: r["sresp"].astype(str)), "sresp", "real numeric dtype"),
        (_replace("sresp", lambda r: r["sresp"][0]), "sresp", "2 dimension"),
        (_replace("std_spont", lambda r: list(r["std_spont"])), "std_spont", "numpy array"),
        (_replace("u_spont", lambda r: r["u_spont"][1:]), "u_spont", "N = 12"),
        (_replace("xyz", lambda r: r["xyz"].T), "xyz", r"\(3, 12\)"),
        (_replace("stat", lambda r: r["stat"][:3]), "stat", r"\(12,\)"),
    ],
)
def test_load_raw_names_file_key_and_expectation(tmp_path, change, key, expected):
    raw = make_raw()
    change(raw)
    path = tmp_path / "bad.npy"
    save_raw(raw, path)
    with pytest.raises(v1io.ContractError, match=expected) as caught:
        load_raw(path)
    assert str(path) in str(caught.value)
    assert repr(key) in str(caught.value)


def test_load_raw_rejects_files_of_another_layout(tmp_path):
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((3, 4)))
    with pytest.raises(v1io.ContractError, match="0-d object array"):
        load_raw(plain)

    not_a_dict = tmp_path / "string.npy"
    np.save(not_a_dict, np.array("a string", dtype=object))
    with pytest.raises(v1io.ContractError, match="expected a dict"):
        load_raw(not_a_dict)

    truncated = tmp_path / "truncated.npy"
    save_raw(make_raw(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:-500])
    with pytest.raises(v1io.ContractError, match="damaged pickle"):
        load_raw(truncated)

    text = tmp_path / "text.npy"
    text.write_text("not numpy at all")
    with pytest.raises(v1io.ContractError, match="not a readable .npy"):
        load_raw(text)

    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_raw(tmp_path / "missing.npy")


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "data.bin"
    content = np.random.default_rng(1).bytes(300_000)
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()


def make_oribinned1(path, n_neurons=7, seed=0):
    rng = np.random.default_rng(seed)
    stimuli = np.arange(360) + rng.uniform(0.2, 0.8, 360)
    resp = rng.standard_normal((360, n_neurons))
    np.savez(path, resp=resp, stimuli=stimuli)
    return resp, stimuli


def make_oribinned6_split(path, n_neurons=5, seed=0):
    rng = np.random.default_rng(seed)
    stimuli = np.arange(60) * 6 + 3 + rng.uniform(-0.5, 0.5, 60)
    resp_train = rng.standard_normal((60, n_neurons))
    resp_test = rng.standard_normal((60, n_neurons))
    np.savez(path, resp_train=resp_train, resp_test=resp_test, stimuli=stimuli)
    return resp_train, resp_test, stimuli


def test_load_binned_oribinned1(tmp_path):
    path = tmp_path / "oribinned1.npz"
    resp, stimuli = make_oribinned1(path)
    conditions = load_binned(path, "oribinned1")

    assert conditions["response"].dims == ("condition", "neuron")
    assert conditions["response"].dtype == np.float32
    np.testing.assert_array_equal(conditions["response"].values, resp.astype(np.float32))
    np.testing.assert_array_equal(conditions["orientation"].values, stimuli)
    np.testing.assert_array_equal(conditions["neuron"].values, np.arange(7))
    assert "response_fold" not in conditions
    assert conditions.attrs["bin_width_deg"] == 1.0
    assert conditions.attrs["n_folds"] == 0
    assert conditions.attrs["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()

    # The Dataset is what conditions.nc stores.
    v1io.write_netcdf(conditions, tmp_path / "conditions.nc")
    again = v1io.read_netcdf(
        tmp_path / "conditions.nc", ["response"], {"response": ("condition", "neuron")}
    )
    np.testing.assert_array_equal(again["response"].values, conditions["response"].values)


def test_load_binned_oribinned6_split_has_two_folds(tmp_path):
    path = tmp_path / "oribinned6_split.npz"
    resp_train, resp_test, stimuli = make_oribinned6_split(path)
    conditions = load_binned(path, "oribinned6_split")

    assert conditions["response_fold"].dims == ("fold", "condition", "neuron")
    np.testing.assert_array_equal(conditions["fold"].values, [0, 1])
    np.testing.assert_array_equal(conditions["response_fold"][0], resp_train.astype(np.float32))
    np.testing.assert_array_equal(conditions["response_fold"][1], resp_test.astype(np.float32))
    np.testing.assert_allclose(
        conditions["response"], (resp_train + resp_test) / 2, rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(conditions["orientation"].values, stimuli)
    assert conditions.attrs["bin_width_deg"] == 6.0
    assert conditions.attrs["n_folds"] == 2
    assert conditions["n_trials_fold"].dims == ("fold", "condition")


def _savez_changed(path, make, **changes):
    """Write a valid file with ``make``, then rewrite it with ``changes`` (None drops a key)."""
    make(path)
    with np.load(path) as data:
        arrays = dict(data)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key])
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("layout", "changes", "key", "expected"),
    [
        ("oribinned1", {"resp": None}, "resp", "missing key"),
        ("oribinned1", {"resp": lambda a: a[:359]}, "resp", r"expected \(360, N\)"),
        ("oribinned1", {"resp": lambda a: np.where(a > 2, np.nan, a)}, "resp", "NaN or Inf"),
        ("oribinned1", {"stimuli": lambda a: a[::-1].copy()}, "stimuli", "increasing"),
        ("oribinned1", {"stimuli": lambda a: a - 180}, "stimuli", r"\[0, 360\)"),
        ("oribinned1", {"resp": lambda a: a.astype(complex)}, "resp", "real numeric"),
        ("oribinned6_split", {"resp_test": lambda a: a[:, :-1]}, "resp_test", r"\(60, 5\)"),
        ("oribinned6_split", {"resp_train": None}, "resp_train", "missing key"),
        ("oribinned6_split", {"stimuli": lambda a: np.repeat(a, 6)}, "stimuli", r"\(60,\)"),
    ],
)
def test_load_binned_names_file_and_key(tmp_path, layout, changes, key, expected):
    path = tmp_path / f"{layout}.npz"
    make = make_oribinned1 if layout == "oribinned1" else make_oribinned6_split
    _savez_changed(path, make, **changes)
    with pytest.raises(v1io.ContractError, match=expected) as caught:
        load_binned(path, layout)
    assert str(path) in str(caught.value)
    assert repr(key) in str(caught.value)


def test_errors_name_the_users_file_not_its_link_in_resources(tmp_path):
    mine = tmp_path / "data" / "my_recording.npz"
    mine.parent.mkdir()
    _savez_changed(mine, make_oribinned6_split, resp_train=None)
    raw_mine = tmp_path / "data" / "my_recording.npy"
    np.save(raw_mine, np.array({"sresp": np.ones((3, 4))}, dtype=object), allow_pickle=True)
    hdf5_mine = tmp_path / "data" / "my_recording.h5"
    with h5py.File(hdf5_mine, "w") as file:
        file["sresp"] = np.ones((3, 4))
    links = tmp_path / "resources" / "mine"
    links.mkdir(parents=True)
    for target, read in ((mine, lambda p: load_binned(p, "oribinned6_split")),
                         (raw_mine, load_raw),
                         (hdf5_mine, lambda p: open_raw_hdf5(p).__enter__())):
        link = links / f"raw{target.suffix}"
        link.symlink_to(target)
        with pytest.raises(v1io.ContractError) as caught:
            read(link)
        assert str(caught.value).startswith(f"{target}: ")
        assert "resources" not in str(caught.value)


def test_a_damaged_npz_is_a_contract_error(tmp_path):
    path = tmp_path / "oribinned1.npz"
    make_oribinned1(path, n_neurons=400)
    body = path.read_bytes()
    for damaged in (body[: len(body) // 2], body[:2000] + bytes(1000) + body[3000:]):
        path.write_bytes(damaged)
        with pytest.raises(v1io.ContractError, match="oribinned1.npz: (not a readable|a damaged)"):
            load_binned(path, "oribinned1")


def test_load_binned_refuses_pickled_arrays_and_unknown_layouts(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, resp=np.array([{"a": 1}] * 360, dtype=object), stimuli=np.arange(360.0))
    with pytest.raises(v1io.ContractError, match="'resp' cannot be read as a plain array"):
        load_binned(path, "oribinned1")
    with pytest.raises(ValueError, match="unknown layout 'oribinned2'"):
        load_binned(path, "oribinned2")


def test_binned_as_trials_uses_the_course_decoder_split(tmp_path):
    path = tmp_path / "oribinned1.npz"
    resp, stimuli = make_oribinned1(path)
    trials = binned_as_trials(load_binned(path, "oribinned1"))

    # The course: torch.manual_seed(4); ishuffle = torch.randperm(360); first 60 % train.
    with torch.random.fork_rng():
        torch.manual_seed(4)
        ishuffle = torch.randperm(360).numpy()
    expected = np.full(360, "test", dtype="<U5")
    expected[ishuffle[: int(0.6 * 360)]] = "train"
    np.testing.assert_array_equal(trials["split"].values, expected)
    assert (trials["split"] == "train").sum() == 216

    np.testing.assert_array_equal(trials["response"].values, resp.astype(np.float32))
    np.testing.assert_array_equal(trials["orientation"].values, stimuli)
    assert trials.attrs["single_trials"] == 0
    assert trials.attrs["n_neurons_dropped"] == 0
    v1io.write_netcdf(trials, tmp_path / "trials.nc")
    again = v1io.read_netcdf(tmp_path / "trials.nc", ["response", "split"])
    np.testing.assert_array_equal(again["split"].values, expected)


def test_binned_as_trials_keeps_the_train_and_test_halves(tmp_path):
    path = tmp_path / "oribinned6_split.npz"
    resp_train, resp_test, stimuli = make_oribinned6_split(path)
    trials = binned_as_trials(load_binned(path, "oribinned6_split"))

    train = trials.sel(trial=trials["split"] == "train")
    test = trials.sel(trial=trials["split"] == "test")
    np.testing.assert_array_equal(train["response"].values, resp_train.astype(np.float32))
    np.testing.assert_array_equal(test["response"].values, resp_test.astype(np.float32))
    np.testing.assert_array_equal(train["orientation"].values, stimuli)
    np.testing.assert_array_equal(test["orientation"].values, stimuli)
    assert trials.attrs["single_trials"] == 0


@pytest.fixture(scope="module")
def small_hdf5(tmp_path_factory):
    """A simulated recording of 130 neurons x 40 trials in the raw_hdf5 layout, and its dict."""
    path = tmp_path_factory.mktemp("hdf5") / "raw.h5"
    simulate.simulate_to_hdf5(path, 130, 40, seed=3)
    return path, simulate.simulate_recording(130, 40, seed=3)[0]


def test_open_raw_hdf5_reads_sresp_lazily_and_the_rest_as_load_raw(small_hdf5, tmp_path):
    path, raw = small_hdf5
    with open_raw(path, "raw_hdf5") as opened:
        assert set(opened) == set(raw)
        assert isinstance(opened["sresp"], h5py.Dataset)  # nothing read until sliced
        assert isinstance(opened["u_spont"], h5py.Dataset)
        np.testing.assert_array_equal(opened["sresp"][10:20], raw["sresp"][10:20])
        np.testing.assert_array_equal(opened["u_spont"][:, :3], raw["u_spont"][:, :3])
        for key in ("istim", "mean_spont", "std_spont", "v_spont", "xyz", "run", "stimtimes"):
            assert isinstance(opened[key], np.ndarray), key
            np.testing.assert_array_equal(opened[key], raw[key], err_msg=key)
        assert opened["info"] == raw["info"]
        assert isinstance(opened["stat"], h5py.Group)  # {field: (N, ...)}
        assert opened["stat"]["med"][7].tolist() == raw["stat"][7]["med"].tolist()
        sresp = opened["sresp"]
    assert not sresp.id.valid  # the file is closed with the block
    npy = tmp_path / "raw.npy"
    simulate.save_raw(raw, npy)
    with open_raw(npy, "raw") as loaded:
        np.testing.assert_array_equal(loaded["sresp"], raw["sresp"])
    with pytest.raises(ValueError, match="unknown raw layout 'oribinned1'"):
        with open_raw(npy, "oribinned1"):
            pass


def _hdf5_without(key):
    def change(file):
        del file[key]

    return change


def _hdf5_replace(key, make_value):
    def change(file):
        value = make_value(file)
        del file[key]
        if isinstance(value, dict):
            group = file.create_group(key)
            for name, field in value.items():
                group.create_dataset(name, data=field)
        else:
            file.create_dataset(key, data=value)

    return change


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (_hdf5_without("sresp"), "sresp", "missing key"),
        (_hdf5_without("istim"), "istim", "missing key"),
        (_hdf5_replace("sresp", lambda f: f["sresp"][:, 0]), "sresp", "2 dimension"),
        (
            _hdf5_replace("sresp", lambda f: f["sresp"][()].astype("S8")),
            "sresp",
            "real numeric dtype",
        ),
        (_hdf5_replace("sresp", lambda f: {"data": f["sresp"][()]}), "sresp", "Group"),
        (_hdf5_replace("istim", lambda f: f["istim"][:-1]), "istim", r"expected \(T,\) = \(40,\)"),
        (_hdf5_replace("mean_spont", lambda f: f["mean_spont"][:5]), "mean_spont", r"\(130,\)"),
        (
            _hdf5_replace("std_spont", lambda f: np.array(["a"] * 130, dtype=object)),
            "std_spont",
            "real numeric dtype",
        ),
        (_hdf5_replace("u_spont", lambda f: f["u_spont"][1:]), "u_spont", "N = 130"),
        (_hdf5_replace("stat", lambda f: {"med": f["stat/med"][:3]}), "stat/med", "N = 130"),
        (_hdf5_replace("stat", lambda f: f["stat/med"][()]), "stat", r"\(N,\) = \(130,\)"),
    ],
)
def test_open_raw_hdf5_names_file_key_and_expectation(small_hdf5, tmp_path, change, key, expected):
    path = tmp_path / "bad.h5"
    shutil.copy(small_hdf5[0], path)
    with h5py.File(path, "r+") as file:
        change(file)
    with pytest.raises(v1io.ContractError, match=expected) as caught:
        with open_raw_hdf5(path):
            pass
    assert str(path) in str(caught.value)
    assert repr(key) in str(caught.value)


def test_open_raw_hdf5_rejects_other_files(tmp_path):
    text = tmp_path / "text.h5"
    text.write_text("not HDF5 at all")
    with pytest.raises(v1io.ContractError, match="text.h5: not a readable HDF5 file"):
        with open_raw_hdf5(text):
            pass
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        with open_raw_hdf5(tmp_path / "missing.h5"):
            pass
