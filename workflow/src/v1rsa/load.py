"""Read the published recordings safely: the raw ``.npy`` dict and the binned NMA ``.npz`` files,
and the chunk-readable HDF5 version of the raw dict for recordings too large for memory.

The raw file (layout ``raw``) is a pickled dict in a 0-d object array. It is read with an
allow-list unpickler that builds numpy arrays, dtypes, scalars and plain containers and refuses
every other global *before* calling it, so a tampered file cannot run code. The ``.npz`` files
hold plain arrays and are read with ``allow_pickle=False``.

The ``raw_hdf5`` layout (``raw.h5``, written by :func:`v1rsa.simulate.simulate_to_hdf5`) holds
the same keys as HDF5 datasets, with the same shapes and meanings, ``sresp`` (N, T) chunked
along neurons; ``stat`` is a group of per-neuron fields (``stat/med`` (N, 2) = [ypix, xpix],
what ``stat[i]["med"]`` holds in the dict) and ``info`` a string. :func:`open_raw_hdf5` opens
it lazily: ``sresp`` and ``u_spont`` stay on disk and are read a block of neurons at a time.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import hashlib
import importlib
import json
import os
import pickle
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import numpy.lib.format as npy_format
import xarray as xr

from v1rsa.io import ContractError

RAW_REQUIRED_KEYS = ("sresp", "istim", "mean_spont", "std_spont")
RAW_LAYOUTS = ("raw", "raw_hdf5")  # single trials: the NMA .npy dict, and its HDF5 version
HDF5_LAZY_KEYS = ("sresp", "u_spont")  # (N, ·) keys left on disk by open_raw_hdf5
BINNED_LAYOUTS = {
    # layout: (keys holding responses, rows per key, bin width in degrees)
    "oribinned1": (("resp",), 360, 1.0),
    "oribinned6_split": (("resp_train", "resp_test"), 60, 6.0),
}
TWO_PI = 2 * np.pi


class UnsafePickleError(ValueError):
    """A pickle asked for a global that is not on the allow-list (it could run code)."""


def _users_path(path: str | os.PathLike) -> Path:
    """``path``, or the file it links to: a local dataset is a link in resources/ to the user's
    own file, and messages should name the file the user knows."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _numpy_core(submodule: str):
    # numpy >= 2 (and 1.26) name the internals numpy._core; older numpy only numpy.core.
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{submodule}")


def _allowed_globals() -> dict[tuple[str, str], object]:
    multiarray = _numpy_core("multiarray")
    numeric = _numpy_core("numeric")
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): codecs.encode,  # bytes under pickle protocol 2
    }
    # np.save of numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*; both mean the same.
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    for builtins_name in ("builtins", "__builtin__"):  # __builtin__: protocol 2 spelling
        for name, obj in (
            ("complex", complex),
            ("set", set),
            ("frozenset", frozenset),
            ("bytearray", bytearray),
        ):
            allowed[(builtins_name, name)] = obj
    return allowed


class _AllowListUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy arrays, dtypes, scalars and plain containers."""

    allowed = _allowed_globals()

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.path}: refused to unpickle the global {module}.{name}; only numpy "
                "arrays, dtypes, scalars and plain containers are allowed (the file may "
                "contain code, or is not a recording in the expected layout)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.path}: refused a persistent id in the pickle ({pid!r})")


def _read_pickled_object_npy(path: Path):
    """Return the object held in a 0-d object-array ``.npy`` file, unpickled by the allow-list."""
    with open(path, "rb") as fp:
        try:
            version = npy_format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as err:
            raise ContractError(f"{path}: not a readable .npy file ({err})") from err
        if dtype != np.dtype(object) or shape != ():
            raise ContractError(
                f"{path}: expected a 0-d object array holding a dict (np.save of "
                f"np.array(d, dtype=object)), found shape {shape} dtype {dtype}"
            )
        try:
            array = _AllowListUnpickler(fp, path).load()
        except UnsafePickleError:
            raise
        except Exception as err:  # truncated or damaged pickles raise many types
            raise ContractError(
                f"{path}: damaged pickle payload ({type(err).__name__}: {err})"
            ) from err
    if not isinstance(array, np.ndarray) or array.shape != () or array.dtype != object:
        raise ContractError(f"{path}: the pickle does not hold a 0-d object array")
    return array.item()


def _check_numeric(where: str, key: str, value, ndim: int) -> np.ndarray | h5py.Dataset:
    if not isinstance(value, np.ndarray | h5py.Dataset):
        raise ContractError(
            f"{where}: key {key!r} is a {type(value).__name__}, expected a numpy array "
            "(or an HDF5 dataset)"
        )
    if value.dtype.kind not in "iuf":
        raise ContractError(
            f"{where}: key {key!r} has dtype {value.dtype}, expected a real numeric dtype"
        )
    if value.ndim != ndim:
        raise ContractError(
            f"{where}: key {key!r} has shape {value.shape}, expected {ndim} dimension(s)"
        )
    return value


def validate_raw(raw: dict, where: str = "raw dict") -> tuple[int, int]:
    """Check ``raw`` holds the raw-layout keys with consistent shapes; return (N, T).

    Required: ``sresp`` (N, T), ``istim`` (T,) radians in [0, 2π], ``mean_spont`` and
    ``std_spont`` (N,), all real numeric. Checked when present: ``u_spont`` (N, k), ``xyz``
    (3, N), ``stat`` (N,) (or an HDF5 group of (N, ...) fields). Non-finite responses are
    allowed (preprocessing drops those neurons); non-finite ``istim`` is not. Errors are
    :class:`ContractError` naming ``where``.
    ``sresp`` and ``u_spont`` may be HDF5 datasets (:func:`open_raw_hdf5`): only their shape
    and dtype are checked, nothing is read.
    """
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expected a dict of arrays, found {type(raw).__name__}")
    missing = [key for key in RAW_REQUIRED_KEYS if key not in raw]
    if missing:
        raise ContractError(
            f"{where}: missing key(s) {missing}; expected {list(RAW_REQUIRED_KEYS)}, "
            f"found {sorted(map(str, raw))}"
        )
    sresp = _check_numeric(where, "sresp", raw["sresp"], 2)
    n_neurons, n_trials = sresp.shape
    istim = _check_numeric(where, "istim", raw["istim"], 1)
    if istim.shape != (n_trials,):
        raise ContractError(
            f"{where}: key 'istim' has shape {istim.shape}, expected (T,) = ({n_trials},) "
            f"to match 'sresp' (N, T) = {sresp.shape}"
        )
    if not np.isfinite(istim).all():
        raise ContractError(f"{where}: key 'istim' holds NaN or Inf; expected angles in radians")
    if n_trials and (istim.min() < 0 or istim.max() > TWO_PI):
        raise ContractError(
            f"{where}: key 'istim' spans [{istim.min():.4g}, {istim.max():.4g}], expected "
            "radians in [0, 2π]"
        )
    for key in ("mean_spont", "std_spont"):
        value = _check_numeric(where, key, raw[key], 1)
        if value.shape != (n_neurons,):
            raise ContractError(
                f"{where}: key {key!r} has shape {value.shape}, expected (N,) = ({n_neurons},) "
                f"to match 'sresp' (N, T) = {sresp.shape}"
            )
    if "u_spont" in raw:
        u_spont = _check_numeric(where, "u_spont", raw["u_spont"], 2)
        if u_spont.shape[0] != n_neurons:
            raise ContractError(
                f"{where}: key 'u_spont' has shape {u_spont.shape}, expected (N, k) with "
                f"N = {n_neurons} to match 'sresp'"
            )
    if "xyz" in raw:
        xyz = _check_numeric(where, "xyz", raw["xyz"], 2)
        if xyz.shape != (3, n_neurons):
            raise ContractError(
                f"{where}: key 'xyz' has shape {xyz.shape}, expected (3, N) = (3, {n_neurons})"
            )
    if "stat" in raw and isinstance(raw["stat"], h5py.Group):  # raw_hdf5: {field: (N, ...)}
        for name, field in raw["stat"].items():
            if not isinstance(field, h5py.Dataset) or field.shape[:1] != (n_neurons,):
                raise ContractError(
                    f"{where}: key 'stat/{name}' has shape {getattr(field, 'shape', None)}, "
                    f"expected one row per neuron, (N, ...) with N = {n_neurons}"
                )
    elif "stat" in raw:
        stat = raw["stat"]
        if not isinstance(stat, np.ndarray) or stat.shape != (n_neurons,):
            raise ContractError(
                f"{where}: key 'stat' has shape {getattr(stat, 'shape', type(stat).__name__)}, "
                f"expected (N,) = ({n_neurons},)"
            )
    return n_neurons, n_trials


def load_raw(path: str | os.PathLike) -> dict:
    """Read a raw recording (``stringer_orientations.npy`` layout) without running any code.

    Returns the dict as stored (``sresp`` (N, T) float64, ``istim`` (T,) radians, ...),
    checked by :func:`validate_raw`. Raises :class:`UnsafePickleError` when the pickle asks
    for anything but numpy arrays, dtypes, scalars and plain containers, and
    :class:`~v1rsa.io.ContractError` when keys, shapes or dtypes are not as expected.
    """
    path = _users_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    raw = _read_pickled_object_npy(path)
    if not isinstance(raw, dict):
        raise ContractError(
            f"{path}: the 0-d object array holds a {type(raw).__name__}, expected a dict"
        )
    validate_raw(raw, str(path))
    return raw


@contextlib.contextmanager
def open_raw_hdf5(path: str | os.PathLike) -> Iterator[dict]:
    """Open a raw recording in the ``raw_hdf5`` layout lazily; close it on leaving the block.

    Yields the dict of :func:`load_raw` (same keys, shapes and meanings), except that
    ``sresp`` (N, T) and ``u_spont`` (N, k) are :class:`h5py.Dataset` objects, read only when
    sliced (``raw["sresp"][lo:hi]``), so memory holds a block of neurons at a time, and
    ``stat`` is the :class:`h5py.Group` of per-neuron fields (``raw["stat"]["med"][i]`` is
    ``stat[i]["med"]`` of the ``.npy`` dict). Checked by :func:`validate_raw` on opening:
    :class:`~v1rsa.io.ContractError` names the file and key.
    """
    path = _users_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise ContractError(f"{path}: not a readable HDF5 file ({err})") from err
    with file:
        raw = {}
        for key, item in file.items():
            if not isinstance(item, h5py.Dataset) or key in HDF5_LAZY_KEYS:
                raw[key] = item
            elif h5py.check_string_dtype(item.dtype) is not None and item.shape == ():
                raw[key] = item.asstr()[()]
            else:
                raw[key] = item[()]
        validate_raw(raw, str(path))
        yield raw


@contextlib.contextmanager
def open_raw(path: str | os.PathLike, layout: str = "raw") -> Iterator[dict]:
    """The raw recording dict of a file in one of :data:`RAW_LAYOUTS`, for a ``with`` block.

    ``raw``: :func:`load_raw` (everything in memory); ``raw_hdf5``: :func:`open_raw_hdf5`
    (``sresp`` and ``u_spont`` read on demand, the file closed when the block ends).
    """
    if layout == "raw":
        yield load_raw(path)
    elif layout == "raw_hdf5":
        with open_raw_hdf5(path) as raw:
            yield raw
    else:
        raise ValueError(f"{path}: unknown raw layout {layout!r}; expected one of {RAW_LAYOUTS}")


def check_file(path: str | os.PathLike, layout: str) -> None:
    """Read the file at ``path`` as ``layout`` and check what it holds, as zscore will read it.

    ``raw`` is read whole (the allow-list unpickler and :func:`validate_raw`), ``raw_hdf5``
    opened and checked without reading ``sresp``, a binned ``.npz`` read whole (its members'
    CRCs included). Raises :class:`~v1rsa.io.ContractError`, :class:`UnsafePickleError` or
    ``OSError`` naming the file; returns nothing.
    """
    if layout == "raw":
        load_raw(path)
    elif layout == "raw_hdf5":
        with open_raw_hdf5(path):
            pass
    elif layout in BINNED_LAYOUTS:
        load_binned(path, layout)
    else:
        raise ValueError(f"{path}: unknown layout {layout!r}; expected one of "
                         f"{[*RAW_LAYOUTS, *BINNED_LAYOUTS]}")


def file_sha256(path: str | os.PathLike) -> str:
    """Return the sha256 hex digest of the file at ``path`` (read 1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _binned_array(path: Path, data, key: str, shape: tuple[int, ...], wanted: str) -> np.ndarray:
    """``data[key]`` checked to be finite, real numeric, of ``shape`` (-1: any size)."""
    if key not in data.files:
        raise ContractError(f"{path}: missing key {key!r}; found {sorted(data.files)}")
    try:
        value = data[key]
    except ValueError as err:  # object arrays under allow_pickle=False
        raise ContractError(f"{path}: key {key!r} cannot be read as a plain array ({err})") from err
    if value.dtype.kind not in "iuf":
        raise ContractError(
            f"{path}: key {key!r} has dtype {value.dtype}, expected a real numeric dtype"
        )
    if value.ndim != len(shape) or any(
        size >= 0 and size != actual for size, actual in zip(shape, value.shape, strict=False)
    ):
        raise ContractError(f"{path}: key {key!r} has shape {value.shape}, expected {wanted}")
    if not np.isfinite(value).all():
        raise ContractError(f"{path}: key {key!r} holds NaN or Inf values")
    return value


def load_binned(path: str | os.PathLike, layout: str) -> xr.Dataset:
    """Read a binned NMA ``.npz`` file into a conditions Dataset (``allow_pickle=False``).

    ``oribinned1``: ``resp`` (360, N), ``stimuli`` (360,) degrees → ``response(condition,
    neuron)`` only. ``oribinned6_split``: ``resp_train``/``resp_test`` (60, N) →
    ``response_fold(fold, condition, neuron)`` with fold 0 = train half, 1 = test half, and
    ``response`` their mean. ``orientation(condition)`` is the file's ``stimuli`` (the mean
    angle of the trials in each bin, degrees). The number of trials behind each row is not in
    the file: ``n_trials``/``n_trials_fold`` count file rows (1 per fold).
    """
    path = _users_path(path)
    if layout not in BINNED_LAYOUTS:
        raise ValueError(
            f"{path}: unknown layout {layout!r}; expected one of {list(BINNED_LAYOUTS)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    keys, n_rows, bin_width_deg = BINNED_LAYOUTS[layout]
    # a damaged archive fails on opening or on reading a member (bad CRC, cut-off data)
    damaged = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        data = np.load(path, allow_pickle=False)
    except damaged as err:
        raise ContractError(f"{path}: not a readable .npz file ({err})") from err
    with data:
        if not hasattr(data, "files"):
            raise ContractError(f"{path}: expected an .npz archive, found a single array")
        try:
            stimuli = _binned_array(path, data, "stimuli", (n_rows,), f"({n_rows},) degrees")
            first = _binned_array(path, data, keys[0], (n_rows, -1), f"({n_rows}, N)")
            n_neurons = first.shape[1]
            responses = [first] + [
                _binned_array(path, data, key, (n_rows, n_neurons), f"({n_rows}, {n_neurons})")
                for key in keys[1:]
            ]
        except ContractError:
            raise
        except damaged as err:
            raise ContractError(f"{path}: a damaged .npz archive ({type(err).__name__}: "
                                f"{err})") from err
    stimuli = stimuli.astype(np.float64)
    if not (np.diff(stimuli) > 0).all():
        raise ContractError(f"{path}: key 'stimuli' is not strictly increasing")
    if stimuli.min() < 0 or stimuli.max() >= 360:
        raise ContractError(
            f"{path}: key 'stimuli' spans [{stimuli.min():.4g}, {stimuli.max():.4g}], "
            "expected degrees in [0, 360)"
        )
    stack = np.stack([r.astype(np.float32) for r in responses])  # (fold, condition, neuron)
    n_folds = len(keys) if len(keys) > 1 else 0
    coords = {
        "condition": np.arange(n_rows, dtype=np.int64),
        "orientation": ("condition", stimuli),
        "neuron": np.arange(n_neurons, dtype=np.int64),
        "n_trials": ("condition", np.full(n_rows, len(keys), dtype=np.int64)),
    }
    variables = {"response": (("condition", "neuron"), stack.mean(axis=0, dtype=np.float32))}
    if n_folds:
        coords["fold"] = np.arange(n_folds, dtype=np.int64)
        coords["n_trials_fold"] = (("fold", "condition"), np.ones((n_folds, n_rows), np.int64))
        variables["response_fold"] = (("fold", "condition", "neuron"), stack)
    attrs = {
        "bin_width_deg": bin_width_deg,
        "n_folds": n_folds,
        "source": str(path),
        "checksum": file_sha256(path),
        "preprocessing": json.dumps({"layout": layout, "keys": list(keys)}),
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def binned_as_trials(
    conditions: xr.Dataset, *, train_fraction: float = 0.6, seed: int = 4
) -> xr.Dataset:
    """Rows of a binned NMA source as a trials Dataset (``single_trials`` = 0).

    With folds (``oribinned6_split``), the rows are the fold-0 bins (split "train") then the
    fold-1 bins ("test"), as the course's encoding model uses them. Without folds
    (``oribinned1``), rows are the bins and the split is the course's decoder split:
    ``torch.randperm`` from a generator seeded with ``seed`` (4 in the course), the first
    ``int(train_fraction · n)`` rows train. ``response(trial, neuron)`` float32 holds the
    file's values unchanged (bin averages of z-scored trials, not re-z-scored).
    """
    if "response_fold" in conditions:
        folds = conditions["response_fold"].values
        n_folds, n_conditions, _ = folds.shape
        if n_folds != 2:
            raise ValueError(f"binned source has {n_folds} folds; expected 2 (train, test halves)")
        response = folds.reshape(n_folds * n_conditions, -1)
        orientation = np.tile(conditions["orientation"].values, n_folds)
        split = np.repeat(np.array(["train", "test"]), n_conditions)
        split_rule = {"split": "fold0_train_fold1_test"}
    else:
        import torch  # the course's own draw, so decoders see the course's train/test rows

        response = conditions["response"].values
        orientation = conditions["orientation"].values
        n_rows = response.shape[0]
        order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed)).numpy()
        split = np.full(n_rows, "test", dtype="<U5")
        split[order[: int(train_fraction * n_rows)]] = "train"
        split_rule = {"split": "torch_randperm", "train_fraction": train_fraction, "seed": seed}
    n_rows, n_neurons = response.shape
    neuron_coords = {
        name: coord for name, coord in conditions.coords.items() if coord.dims == ("neuron",)
    }
    preprocessing = {
        "binned": json.loads(conditions.attrs.get("preprocessing", "{}")),
        **split_rule,
    }
    return xr.Dataset(
        {"response": (("trial", "neuron"), np.ascontiguousarray(response, dtype=np.float32))},
        coords={
            "trial": np.arange(n_rows, dtype=np.int64),
            "orientation": ("trial", orientation.astype(np.float64)),
            "split": ("trial", split),
            **neuron_coords,
        },
        attrs={
            "source": conditions.attrs.get("source", ""),
            "checksum": conditions.attrs.get("checksum", ""),
            "preprocessing": json.dumps(preprocessing),
            "n_neurons_dropped": 0,
            "single_trials": 0,
        },
    )
