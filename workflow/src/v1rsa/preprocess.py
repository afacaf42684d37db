"""From raw deconvolved activity to z-scored trials, and from trials to orientation bins.

:func:`preprocess` follows the authors' ``compile_resp`` (Stringer et al. 2021;
docs/science.md#preprocessing): normalise each neuron by its spontaneous mean and std, optionally
project out the top spontaneous PCs, then z-score each neuron across trials. It works on blocks of
neurons, so a recording opened lazily from HDF5 (:func:`v1rsa.load.open_raw_hdf5`) needs little
memory beyond one block and the float32 output. :func:`bin_conditions` averages trials into
orientation bins and disjoint trial folds.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import scipy.sparse
import xarray as xr

from v1rsa.load import validate_raw

log = logging.getLogger(__name__)

ZSCORE_STD_OFFSET = 1e-6  # added to each neuron's std, as the authors do
SPLITS = ("every_nth", "random")
FOLD_METHODS = ("interleaved", "random")


class _Screening:
    """Which neurons are unusable, and why, filled in as their rows are read.

    mean_spont, std_spont: (N,) float64. Three (N,) bool masks: ``not_finite`` (a non-finite
    value), ``no_spont_std`` (spontaneous std not positive), ``no_variance`` (no variance
    across trials); a neuron is counted under the first reason that applies.
    """

    def __init__(self, raw: dict, n_neurons: int, k: int):
        self.raw, self.k = raw, k
        self.mean_spont = np.asarray(raw["mean_spont"], dtype=np.float64)
        self.std_spont = np.asarray(raw["std_spont"], dtype=np.float64)
        self.not_finite = ~(np.isfinite(self.mean_spont) & np.isfinite(self.std_spont))
        self.no_spont_std = ~self.not_finite & ~(self.std_spont > 0)
        self.no_variance = np.zeros(n_neurons, dtype=bool)

    def usable(self, lo: int, hi: int) -> np.ndarray:
        """(hi − lo,) bool: neurons ``lo:hi`` not known to be unusable."""
        rows = slice(lo, hi)
        return ~(self.not_finite[rows] | self.no_spont_std[rows] | self.no_variance[rows])

    def normalised_block(self, lo: int, hi: int) -> np.ndarray:
        """Read neurons ``lo:hi`` once, mark the unusable ones, return them spont-normalised.

        Returns ``(sresp − mean_spont) / std_spont`` for every neuron ``lo:hi``: (hi − lo, T)
        float64. Marks the same neurons on every call.
        """
        rows = slice(lo, hi)
        not_finite, no_spont_std, no_variance = self.not_finite, self.no_spont_std, self.no_variance
        sresp = self.raw["sresp"][rows]
        not_finite[rows] |= ~np.isfinite(sresp).all(axis=1)
        if self.k:
            not_finite[rows] |= ~np.isfinite(self.raw["u_spont"][rows, : self.k]).all(axis=1)
        no_variance[rows] = np.ptp(sresp, axis=1) == 0
        block = np.subtract(sresp, self.mean_spont[rows, None], dtype=np.float64)
        del sresp
        block /= self.std_spont[rows, None]
        bad = not_finite[rows] | no_spont_std[rows] | no_variance[rows]
        not_finite[rows] |= ~bad & ~np.isfinite(block).all(axis=1)
        no_variance[rows] &= ~(not_finite[rows] | no_spont_std[rows])
        return block

    def usable_pcs(self, lo: int, hi: int, keep_block: np.ndarray) -> np.ndarray:
        """The first k columns of ``u_spont`` for the kept neurons of ``lo:hi``: (n_kept, k)."""
        return np.asarray(self.raw["u_spont"][lo:hi, : self.k], dtype=np.float64)[keep_block]

    def log_dropped(self) -> int:
        """Log how many neurons were dropped and why; return that number."""
        n_neurons = self.no_variance.size
        n_dropped = int(n_neurons - self.usable(0, n_neurons).sum())
        if n_dropped:
            log.warning(
                "dropped %d of %d neurons: %d with non-finite values, %d with spontaneous std "
                "<= 0, %d without variance across trials",
                n_dropped,
                n_neurons,
                int(self.not_finite.sum()),
                int(self.no_spont_std.sum()),
                int(self.no_variance.sum()),
            )
        return n_dropped


def _drop_columns(matrix: np.ndarray, columns) -> np.ndarray:
    """``matrix`` (C-contiguous) without ``columns``, compacted row by row in its own buffer.

    Unlike ``np.delete`` this makes no second copy of the matrix: row r moves to offset r·n_kept
    of the buffer, never past the start of row r itself. Returns a view of that buffer.
    """
    keep = np.ones(matrix.shape[1], dtype=bool)
    keep[np.asarray(columns, dtype=np.int64)] = False
    n_rows, n_kept = matrix.shape[0], int(keep.sum())
    flat = matrix.reshape(-1)
    for row in range(n_rows):
        flat[row * n_kept : (row + 1) * n_kept] = matrix[row, keep]  # fancy index: a row copy
    return flat[: n_rows * n_kept].reshape(n_rows, n_kept)


def split_trials(n_trials: int, split: str, test_every: int, seed: int) -> np.ndarray:
    """Label each trial (T,) "train" or "test", in presentation order.

    ``every_nth``: trials 0, ``test_every``, 2·``test_every``, … are test, as in the authors'
    ``compile_resp`` (``itest[::nskip] = 1``). ``random``: the same number of test trials,
    drawn without replacement by ``numpy.random.default_rng(seed)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; expected one of {SPLITS}")
    if test_every < 2:
        raise ValueError(f"test_every={test_every}: expected an integer >= 2")
    n_test = len(range(0, n_trials, test_every))
    if split == "every_nth":
        test = np.arange(0, n_trials, test_every)
    else:
        test = np.random.default_rng(seed).choice(n_trials, size=n_test, replace=False)
    labels = np.full(n_trials, "train", dtype="<U5")
    labels[test] = "test"
    return labels


def preprocess(
    raw: dict,
    *,
    n_spont_pcs_removed: int = 0,
    split: str = "every_nth",
    test_every: int = 4,
    seed: int = 0,
    source: str = "",
    checksum: str = "",
    chunk_neurons: int = 4096,
) -> xr.Dataset:
    """Z-scored single trials from a raw recording dict (trials contract).

    raw: the raw layout (``sresp`` (N, T), ``istim`` (T,) radians, ``mean_spont``,
    ``std_spont`` (N,), and ``u_spont`` (N, ≥k) when ``n_spont_pcs_removed`` = k > 0), as
    :func:`v1rsa.load.load_raw` or :func:`v1rsa.load.open_raw_hdf5` give it (``sresp`` and
    ``u_spont`` may be HDF5 datasets: they are read ``chunk_neurons`` rows at a time).
    Per neuron ``(sresp − mean_spont)/std_spont``; minus ``U_k (U_kᵀ ·)`` with U_k the first k
    columns of ``u_spont`` (the projection sums over all kept neurons); then minus the mean
    and divided by (std + 1e-6) across trials, std with ddof 0.

    Neurons are dropped, counted in ``n_neurons_dropped`` and logged, when any of their
    values is non-finite, their spontaneous std is not positive, or they do not vary across
    trials; neurons found unusable before the projection take no part in it.

    Returns ``response(trial, neuron)`` float32 with coords ``trial``, ``orientation``
    (degrees in [0, 360)), ``split`` ("train"/"test", see :func:`split_trials`),
    ``neuron`` (row in ``raw``) and ``x``, ``y``, ``z`` (µm, from ``xyz``) when present.
    ``chunk_neurons`` bounds memory only; the result does not depend on it. Memory: the
    output plus two float64 copies of ``chunk_neurons`` × T at a time. ``sresp`` is read once
    (twice when k > 0: the projection needs every neuron first).
    """
    n_neurons, n_trials = validate_raw(raw)
    k = _check_arguments(raw, n_trials, n_spont_pcs_removed, chunk_neurons)
    split_labels = split_trials(n_trials, split, test_every, seed)
    blocks = [(lo, min(lo + chunk_neurons, n_neurons)) for lo in range(0, n_neurons, chunk_neurons)]
    screening = _Screening(raw, n_neurons, k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        projection = _spont_projection(screening, blocks, n_trials)
        response = _zscored_responses(screening, blocks, n_trials, projection)
    n_dropped = screening.log_dropped()
    keep = screening.usable(0, n_neurons)
    if not keep.any():
        raise ValueError(f"all {n_neurons} neurons were dropped; nothing usable in the raw dict")
    parameters = {
        "normalisation": "(sresp - mean_spont) / std_spont",
        "n_spont_pcs_removed": k,
        "zscore": "across trials, ddof 0",
        "zscore_std_offset": ZSCORE_STD_OFFSET,
        "split": split,
        "test_every": int(test_every),
        "seed": int(seed),
    }
    attrs = {
        "source": str(source),
        "checksum": str(checksum),
        "preprocessing": json.dumps(parameters),
        "n_neurons_dropped": n_dropped,
        "single_trials": 1,
    }
    return _trials_dataset(raw, response, np.flatnonzero(keep), split_labels, attrs)


def _check_arguments(raw: dict, n_trials: int, n_spont_pcs_removed, chunk_neurons) -> int:
    """Refuse what :func:`preprocess` cannot do with ``raw``; return k, the PCs to remove."""
    if n_trials < 2:
        raise ValueError(f"the raw dict has {n_trials} trial(s); z-scoring needs at least 2")
    k = int(n_spont_pcs_removed)
    if k < 0:
        raise ValueError(f"n_spont_pcs_removed={k}: expected an integer >= 0")
    if k > 0:
        if "u_spont" not in raw:
            raise ValueError(
                f"n_spont_pcs_removed={k} needs the key 'u_spont' (N, k), absent from the raw dict"
            )
        if raw["u_spont"].shape[1] < k:
            raise ValueError(
                f"n_spont_pcs_removed={k} but 'u_spont' has only {raw['u_spont'].shape[1]} columns"
            )
    if chunk_neurons < 1:
        raise ValueError(f"chunk_neurons={chunk_neurons}: expected an integer >= 1")
    return k


def _spont_projection(screening: _Screening, blocks, n_trials: int) -> np.ndarray:
    """The first pass, needed only to remove k > 0 PCs: U_kᵀ X over the usable neurons, (k, T).

    It reads every neuron once and marks the unusable ones, which then take no part.
    """
    projection = np.zeros((screening.k, n_trials))
    if screening.k:
        for lo, hi in blocks:
            block = screening.normalised_block(lo, hi)
            keep_block = screening.usable(lo, hi)
            projection += screening.usable_pcs(lo, hi, keep_block).T @ block[keep_block]
    return projection


def _zscored_responses(screening: _Screening, blocks, n_trials: int, projection) -> np.ndarray:
    """Normalise, remove the PCs and z-score every usable neuron across trials.

    Returns (T, n_usable) float32, one column per usable neuron in row order. Neurons that come
    out flat or non-finite only now (or that this pass is the first to read and screen, when
    no PCs are removed) are marked in ``screening`` and their columns dropped.
    """
    n_neurons = screening.no_variance.size
    response = np.empty((n_trials, int(screening.usable(0, n_neurons).sum())), dtype=np.float32)
    column = 0
    late_drops = []  # output columns of neurons that came out flat or non-finite
    for lo, hi in blocks:
        block = screening.normalised_block(lo, hi)
        keep_block = screening.usable(lo, hi)
        if not keep_block.all():
            block = block[keep_block]
        if screening.k:
            block -= screening.usable_pcs(lo, hi, keep_block) @ projection
        block -= block.mean(axis=1, keepdims=True)
        std = block.std(axis=1)
        block /= (std + ZSCORE_STD_OFFSET)[:, None]
        flat = std == 0
        overflow = ~flat & ~np.isfinite(block).all(axis=1)
        for mask, reason in ((flat, screening.no_variance), (overflow, screening.not_finite)):
            reason[np.flatnonzero(keep_block)[mask] + lo] = True
        late_drops.extend(column + np.flatnonzero(flat | overflow))
        response[:, column : column + len(block)] = block.T
        column += len(block)
        del block
    unfilled = range(column, response.shape[1])  # neurons the screening of this pass dropped
    if late_drops or unfilled:
        response = _drop_columns(response, [*late_drops, *unfilled])
    return response


def _trials_dataset(raw: dict, response, neuron, split_labels, attrs: dict) -> xr.Dataset:
    """The trials contract around ``response`` (T, n_kept) float32 of the neurons ``neuron``
    (rows of ``raw``), with orientations (degrees) and positions taken from ``raw``."""
    orientation = np.mod(np.degrees(np.asarray(raw["istim"], dtype=np.float64)), 360.0)
    neuron = neuron.astype(np.int64)
    coords = {
        "trial": np.arange(response.shape[0], dtype=np.int64),
        "orientation": ("trial", orientation),
        "split": ("trial", split_labels),
        "neuron": neuron,
    }
    if "xyz" in raw:
        for name, row in zip(("x", "y", "z"), raw["xyz"], strict=True):
            coords[name] = ("neuron", np.asarray(row, dtype=np.float64)[neuron])
    return xr.Dataset({"response": (("trial", "neuron"), response)}, coords=coords, attrs=attrs)


def bin_conditions(
    trials: xr.Dataset,
    *,
    bin_width_deg: float = 1.0,
    n_folds: int = 2,
    fold_method: str = "interleaved",
    seed: int = 0,
) -> xr.Dataset:
    """Average trials into orientation bins, overall and per disjoint trial fold.

    trials: the trials contract (``response(trial, neuron)``, ``orientation(trial)`` degrees
    in [0, 360)). Bins are [k·w, (k+1)·w) for w = ``bin_width_deg`` (it must divide 360);
    ``orientation(condition)`` is the bin centre. ``response(condition, neuron)`` float32 is
    the mean of all trials in the bin (both splits); ``response_fold(fold, condition, neuron)``
    the mean over each fold, where within each bin the trials are dealt to folds 0, 1, …
    in presentation order (``interleaved``) or in an order drawn by
    ``numpy.random.default_rng(seed)`` (``random``). Every bin needs at least ``n_folds``
    trials.
    """
    if fold_method not in FOLD_METHODS:
        raise ValueError(f"fold_method {fold_method!r} is unknown; expected one of {FOLD_METHODS}")
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds={n_folds}: expected an integer >= 1")
    n_folds = int(n_folds)
    n_bins = int(round(360.0 / bin_width_deg)) if bin_width_deg > 0 else 0
    if n_bins < 1 or not np.isclose(n_bins * bin_width_deg, 360.0, rtol=0, atol=1e-9):
        raise ValueError(f"bin_width_deg={bin_width_deg}: expected a positive divisor of 360")
    orientation = np.asarray(trials["orientation"].values, dtype=np.float64)
    if not np.isfinite(orientation).all() or orientation.min() < 0 or orientation.max() >= 360:
        raise ValueError("trials 'orientation' must be finite degrees in [0, 360)")
    n_trials = orientation.size

    # Clipping guards the float edge where orientation / w rounds up to n_bins.
    bin_index = np.minimum((orientation / bin_width_deg).astype(np.int64), n_bins - 1)
    n_per_bin = np.bincount(bin_index, minlength=n_bins)
    short = np.flatnonzero(n_per_bin < n_folds)
    if short.size:
        listed = ", ".join(
            f"bin {b} [{b * bin_width_deg:g}°, {(b + 1) * bin_width_deg:g}°) has {n_per_bin[b]}"
            for b in short[:5]
        )
        more = f" and {short.size - 5} more bins" if short.size > 5 else ""
        raise ValueError(
            f"{short.size} of {n_bins} orientation bins hold fewer trials than n_folds={n_folds}: "
            f"{listed}{more}; use a wider bin_width_deg (now {bin_width_deg:g}°) or fewer folds"
        )

    # Rank of each trial within its bin, in presentation (or seeded random) order.
    if fold_method == "interleaved":
        tiebreak = np.asarray(trials["trial"].values)
    else:
        tiebreak = np.random.default_rng(seed).permutation(n_trials)
    order = np.lexsort((tiebreak, bin_index))
    rank = np.empty(n_trials, dtype=np.int64)
    rank[order] = np.arange(n_trials) - np.repeat(np.cumsum(n_per_bin) - n_per_bin, n_per_bin)
    fold = rank % n_folds

    # Means as sparse (condition × trial) averaging matrices: no copy of the trial matrix.
    response = np.asarray(trials["response"].values)
    trial_index = np.arange(n_trials)

    def bin_means(selected: np.ndarray, counts: np.ndarray) -> np.ndarray:
        weights = (1.0 / counts[bin_index[selected]]).astype(np.float32)
        averaging = scipy.sparse.csr_array(
            (weights, (bin_index[selected], trial_index[selected])), shape=(n_bins, n_trials)
        )
        return np.asarray(averaging @ response, dtype=np.float32)

    n_per_fold = np.stack(
        [np.bincount(bin_index[fold == f], minlength=n_bins) for f in range(n_folds)]
    )
    mean_all = bin_means(np.ones(n_trials, dtype=bool), n_per_bin)
    mean_folds = np.stack([bin_means(fold == f, n_per_fold[f]) for f in range(n_folds)])

    neuron_coords = {
        name: coord for name, coord in trials.coords.items() if coord.dims == ("neuron",)
    }
    parameters = {
        **json.loads(trials.attrs.get("preprocessing", "{}")),
        "binning": {
            "bin_width_deg": float(bin_width_deg),
            "n_folds": n_folds,
            "fold_method": fold_method,
            "seed": int(seed),
        },
    }
    return xr.Dataset(
        {
            "response": (("condition", "neuron"), mean_all),
            "response_fold": (("fold", "condition", "neuron"), mean_folds),
        },
        coords={
            "condition": np.arange(n_bins, dtype=np.int64),
            "orientation": ("condition", (np.arange(n_bins) + 0.5) * bin_width_deg),
            "fold": np.arange(n_folds, dtype=np.int64),
            "n_trials": ("condition", n_per_bin.astype(np.int64)),
            "n_trials_fold": (("fold", "condition"), n_per_fold.astype(np.int64)),
            **neuron_coords,
        },
        attrs={
            "bin_width_deg": float(bin_width_deg),
            "n_folds": n_folds,
            "source": trials.attrs.get("source", ""),
            "checksum": trials.attrs.get("checksum", ""),
            "preprocessing": json.dumps(parameters),
        },
    )
