"""Representational dissimilarity matrices (RDMs) of V1 and of network layers.

Each distance is one Gram matrix (a single BLAS matrix multiply in float64) plus a few passes
over the data, so it runs near the machine's matrix-multiply speed. ``device=None`` or
``"cpu"`` uses numpy; a torch device such as ``"cuda"`` runs the product there, in float64.
The definitions and normalisations match rsatoolbox 0.3.2's ``calc_rdm`` (checked in
``tests/test_rdm.py``); the correlation distance is the course's (docs/science.md#distances):
z-score each condition's vector across units, ``RDM = 1 − Z Zᵀ / N``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)

#: methods that take one (n_conditions, n_units) matrix
SINGLE_MATRIX_METHODS = ("correlation", "cosine", "squared_euclidean")
#: every method :func:`rdm_from_conditions` knows; ``crossvalidated`` needs ``response_fold``
METHODS = (*SINGLE_MATRIX_METHODS, "crossvalidated")

# A centred row counts as constant when its norm is below this fraction of its mean (times
# √n_units): centring a constant row in float64 leaves a rounding residue of ~1e-16·|mean|
# per unit, which must not be taken for a pattern.
_RELATIVE_ZERO = 1e-12


def correlation_distance(x, *, device=None) -> np.ndarray:
    """1 − Pearson correlation between the rows of ``x``.

    x: (n_conditions, n_units) responses. Returns (n, n) float64 in [0, 2], symmetric, with an
    exact-zero diagonal. Equals ``1 − Z Zᵀ / N`` with ``Z`` each row z-scored (ddof 0).
    A constant row (zero variance) has no correlation: it raises ``ValueError``.
    """
    x = _as_matrix(x, "x")
    row_mean = x.mean(axis=1, dtype=np.float64)
    centred = np.subtract(x, row_mean[:, None], dtype=np.float64)
    # The row norms come from the Gram matrix's diagonal, so x is read only twice.
    gram = _gram(centred, device=device)
    del centred
    threshold = x.shape[1] * (_RELATIVE_ZERO * row_mean) ** 2
    distance = _one_minus_normalised(gram, threshold, "constant across units (zero variance)")
    return _finish(distance, "x", low=0.0, high=2.0)


def cosine_distance(x, *, device=None) -> np.ndarray:
    """1 − cosine similarity between the rows of ``x`` (scipy's ``cdist(x, x, 'cosine')``).

    x: (n_conditions, n_units). Returns (n, n) float64 in [0, 2], symmetric, zero diagonal.
    An all-zero row raises ``ValueError``.
    """
    x = _as_matrix(x, "x")
    gram = _gram(np.asarray(x, dtype=np.float64), device=device)
    distance = _one_minus_normalised(gram, np.zeros(x.shape[0]), "all zero")
    return _finish(distance, "x", low=0.0, high=2.0)


def squared_euclidean_distance(x, *, device=None) -> np.ndarray:
    """Squared euclidean distance between rows, divided by the number of units.

    This is rsatoolbox's ``calc_rdm(method='euclidean')`` (which it labels 'squared
    euclidean'): ``‖x_i − x_j‖² / n_units``. x: (n_conditions, n_units).
    Returns (n, n) float64 ≥ 0, symmetric, zero diagonal.
    """
    x = _as_matrix(x, "x")
    gram = _gram(np.asarray(x, dtype=np.float64), device=device)
    return _finish(_distances_from_gram(gram, x.shape[1]), "x", low=0.0, high=None)


def crossvalidated_distance(folds, *, device=None) -> np.ndarray:
    """Cross-validated squared euclidean distance (crossnobis with identity noise).

    folds: (n_folds ≥ 2, n_conditions, n_units), each fold's condition means from disjoint
    trials. For every pair of different folds (a, b) it takes the inner product of the
    condition differences ``(x_a[i] − x_a[j]) · (x_b[i] − x_b[j])``, averages over the pairs
    and divides by n_units. Noise independent across folds cancels in expectation, so the
    estimate is unbiased (and can be negative). Equals rsatoolbox's
    ``calc_rdm(method='crossnobis')`` with identity noise and one pattern per condition and
    fold. Returns (n, n) float64, symmetric, zero diagonal.
    """
    folds = np.asarray(folds)
    if folds.ndim != 3 or folds.shape[0] < 2 or 0 in folds.shape:
        raise ValueError("folds must be (n_folds >= 2, n_conditions, n_units), "
                         f"got shape {folds.shape}")
    n_folds, n_conditions, n_units = folds.shape
    fold_means = [np.asarray(fold, dtype=np.float64) for fold in folds]
    # Σ over ordered fold pairs a ≠ b of x_a x_bᵀ, averaged: the cross-fold Gram matrix.
    cross_gram = np.zeros((n_conditions, n_conditions))
    for a in range(n_folds):
        for b in range(a + 1, n_folds):
            gram_ab = _gram(fold_means[a], fold_means[b], device=device)
            cross_gram += gram_ab + gram_ab.T  # summed first, so exactly symmetric
    cross_gram /= n_folds * (n_folds - 1)
    return _finish(_distances_from_gram(cross_gram, n_units), "folds", low=None, high=None)


def distance_matrix(x, method: str = "correlation", *, device=None) -> np.ndarray:
    """The RDM of ``x`` (n_conditions, n_units) by ``method``: one of SINGLE_MATRIX_METHODS."""
    functions = {
        "correlation": correlation_distance,
        "cosine": cosine_distance,
        "squared_euclidean": squared_euclidean_distance,
    }
    if method not in functions:
        raise ValueError(f"unknown RDM method {method!r} for one response matrix; expected one "
                         f"of {list(functions)} ('crossvalidated' needs trial folds)")
    return functions[method](x, device=device)


def upper_triangle(rdm) -> np.ndarray:
    """The strict upper triangle of a square ``rdm`` as a vector of n(n−1)/2 values.

    Row-major order, as ``np.triu_indices(n, 1)``; the same order as scipy's ``squareform``
    and rsatoolbox's ``RDMs.get_vectors()``.
    """
    rdm = np.asarray(rdm)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"an RDM must be a square matrix, got shape {rdm.shape}")
    return rdm[np.triu_indices(rdm.shape[0], 1)]


def select_conditions(
    conditions: xr.Dataset, *, min_deg: float = 0.0, max_deg: float = 180.0,
    shift_deg: float = -90.0,
) -> xr.Dataset:
    """Keep conditions with ``min_deg ≤ orientation ≤ max_deg`` and shift their orientation.

    The course's choice (docs/science.md#rsa-conditions): V1 orientations 0…180°, shifted by −90° to
    −90…+90°, the orientations at which the networks then see gratings. Returns the subset of
    ``conditions`` (every variable along ``condition``) with ``orientation`` replaced by the shifted
    degrees and the selection recorded in attrs.
    """
    if "orientation" not in conditions.coords:
        raise ValueError("conditions has no 'orientation' coordinate; expected "
                         "orientation(condition) in degrees (conditions.nc contract)")
    orientation = conditions["orientation"].values
    keep = (orientation >= min_deg) & (orientation <= max_deg)
    if not keep.any():
        raise ValueError(f"no condition has an orientation in [{min_deg}, {max_deg}] degrees; "
                         f"orientations span {orientation.min()}…{orientation.max()}")
    selected = conditions.isel(condition=np.flatnonzero(keep))
    selected = selected.assign_coords(orientation=selected["orientation"] + shift_deg)
    selected.attrs.update(orientation_min_deg=float(min_deg), orientation_max_deg=float(max_deg),
                          orientation_shift_deg=float(shift_deg))
    return selected


def rdm_dataset(
    rdm,
    orientation_deg,
    *,
    method: str,
    source: str,
    rdm_folds=None,
    condition=None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """Label an RDM as the contract ``rdms/{source}.nc`` asks.

    rdm: (n, n); orientation_deg: (n,) degrees; rdm_folds: optional (n_folds, n, n) per-fold
    RDMs (for noise ceilings); condition: optional (n,) int condition index (default 0…n−1).
    Returns ``rdm(condition, condition_)`` float64 (and ``rdm_fold(fold, condition,
    condition_)``), coords ``orientation(condition)``, ``orientation_(condition_)``, attrs
    ``method``, ``source`` and ``attrs``.
    """
    rdm = np.asarray(rdm, dtype=np.float64)
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    n = orientation_deg.shape[0]
    if rdm.shape != (n, n):
        raise ValueError(f"rdm must be ({n}, {n}) to match {n} orientations, got {rdm.shape}")
    condition = np.arange(n) if condition is None else np.asarray(condition)
    if condition.shape != (n,):
        raise ValueError(f"condition must be ({n},), got shape {condition.shape}")
    condition = condition.astype(np.int64)
    variables = {"rdm": (("condition", "condition_"), rdm)}
    coords = {
        "condition": ("condition", condition),
        "condition_": ("condition_", condition),
        "orientation": ("condition", orientation_deg),
        "orientation_": ("condition_", orientation_deg),
    }
    if rdm_folds is not None:
        rdm_folds = np.asarray(rdm_folds, dtype=np.float64)
        if rdm_folds.ndim != 3 or rdm_folds.shape[1:] != (n, n):
            raise ValueError(f"rdm_folds must be (n_folds, {n}, {n}), got {rdm_folds.shape}")
        variables["rdm_fold"] = (("fold", "condition", "condition_"), rdm_folds)
        coords["fold"] = ("fold", np.arange(rdm_folds.shape[0], dtype=np.int64))
    return xr.Dataset(variables, coords=coords,
                      attrs={**dict(attrs or {}), "method": method, "source": source})


def rdm_from_conditions(
    conditions: xr.Dataset,
    method: str = "correlation",
    *,
    source: str = "v1",
    device=None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """The RDM dataset of trial-averaged responses (``conditions.nc``, or a selection of it).

    Single-matrix methods use ``response(condition, neuron)`` and add one RDM per fold of
    ``response_fold`` when present; ``crossvalidated`` uses ``response_fold`` across folds
    (and has no per-fold RDMs). Provenance attrs of ``conditions`` (checksum, preprocessing,
    binning, selection) are kept; its ``source`` becomes ``data_source``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown RDM method {method!r}; expected one of {list(METHODS)}")
    has_folds = "response_fold" in conditions
    if method == "crossvalidated":
        if not has_folds:
            raise ValueError("method 'crossvalidated' needs variable 'response_fold(fold, "
                             "condition, neuron)', which these conditions lack (a pre-binned "
                             "source has no trial folds); use a single-matrix method")
        folds = _checked_values(conditions, "response_fold", ("fold", "condition", "neuron"))
        rdm, rdm_folds = crossvalidated_distance(folds, device=device), None
    else:
        response = _checked_values(conditions, "response", ("condition", "neuron"))
        rdm = distance_matrix(response, method, device=device)
        rdm_folds = None
        if has_folds:
            folds = _checked_values(conditions, "response_fold", ("fold", "condition", "neuron"))
            rdm_folds = np.stack([distance_matrix(fold, method, device=device)
                                  for fold in folds])
    provenance = {key: value for key, value in conditions.attrs.items()
                  if key not in ("method", "source")}
    if "source" in conditions.attrs:
        provenance["data_source"] = conditions.attrs["source"]
    return rdm_dataset(rdm, conditions["orientation"].values, method=method, source=source,
                       rdm_folds=rdm_folds, condition=conditions["condition"].values,
                       attrs={**provenance, **dict(attrs or {})})


def rdm_from_activations(
    activations: xr.Dataset,
    layer: str,
    method: str = "correlation",
    *,
    source: str | None = None,
    device=None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """The RDM dataset of one layer of an activations dataset (``activations/{model}.nc``).

    ``source`` defaults to ``"{model}/{layer}"`` from the dataset's ``model`` attr.
    """
    if layer not in activations.data_vars:
        raise ValueError(f"layer {layer!r} is not in the activations; found "
                         f"{sorted(map(str, activations.data_vars))}")
    values = _checked_values(activations, layer, ("condition", f"{layer}_unit"))
    rdm = distance_matrix(values, method, device=device)
    if source is None:
        source = f"{activations.attrs.get('model', 'model')}/{layer}"
    return rdm_dataset(rdm, activations["orientation"].values, method=method, source=source,
                       condition=activations["condition"].values,
                       attrs={"model": activations.attrs.get("model", ""), "layer": layer,
                              **dict(attrs or {})})


def _checked_values(dataset: xr.Dataset, name: str, dims: tuple[str, ...]) -> np.ndarray:
    if name not in dataset:
        raise ValueError(f"missing variable {name!r}; expected {name}{dims}")
    variable = dataset[name]
    if tuple(variable.dims) != dims:
        raise ValueError(f"variable {name!r} has dims {tuple(variable.dims)}, expected {dims}")
    values = variable.values
    if not np.isfinite(values).all():
        raise ValueError(f"variable {name!r} holds NaN or infinite values (e.g. a condition "
                         "without trials in a fold); an RDM needs finite responses")
    return values


def _as_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be (n_conditions, n_units), got shape {x.shape}")
    return x


def _gram(a: np.ndarray, b: np.ndarray | None = None, *, device=None) -> np.ndarray:
    """``a @ b.T``, or the exactly symmetric ``a @ a.T`` when ``b`` is None, in float64.

    numpy does ``a @ a.T`` as one BLAS syrk. With a non-CPU torch ``device`` the product runs
    there.
    """
    if device is None or str(device) == "cpu":
        return a @ (a if b is None else b).T
    import torch

    device = torch.device(device)
    if device.type == "mps":
        raise ValueError("Apple MPS has no float64, which exact RDMs need; use device='cpu'")
    a_device = torch.as_tensor(a, dtype=torch.float64, device=device)
    if b is not None:
        b_device = torch.as_tensor(b, dtype=torch.float64, device=device)
        return (a_device @ b_device.T).cpu().numpy()
    gram = a_device @ a_device.T
    return ((gram + gram.T) / 2).cpu().numpy()  # a GPU gemm need not be exactly symmetric


def _one_minus_normalised(gram: np.ndarray, threshold: np.ndarray, what: str) -> np.ndarray:
    """``1 − gram_ij / √(gram_ii gram_jj)``, in place; rows with ``gram_ii ≤ threshold`` raise."""
    squared_norm = np.diag(gram).copy()
    degenerate = squared_norm <= threshold
    if degenerate.any():
        rows = np.flatnonzero(degenerate)
        raise ValueError(f"{rows.size} row(s) of the response matrix are {what}, e.g. rows "
                         f"{rows[:10].tolist()}; their distance is undefined — drop those "
                         "conditions, or choose another method")
    scale = 1.0 / np.sqrt(squared_norm)
    gram *= np.outer(scale, scale)  # an outer product is exactly symmetric, so is the result
    return np.subtract(1.0, gram, out=gram)


def _distances_from_gram(gram: np.ndarray, n_units: int) -> np.ndarray:
    """``(gram_ii + gram_jj − 2 gram_ij) / n_units``, in place (symmetric ``gram``)."""
    diagonal = np.diag(gram).copy()
    gram *= -2.0
    gram += diagonal[:, None] + diagonal[None, :]
    gram /= n_units
    return gram


def _finish(distance: np.ndarray, name: str, *, low, high) -> np.ndarray:
    """Clip ``distance`` to its valid range and zero its diagonal; NaN/inf input raises here."""
    if not np.isfinite(distance).all():
        raise ValueError(f"{name} holds NaN or infinite values (or values too large to "
                         "square); an RDM needs finite responses")
    if low is not None or high is not None:
        np.clip(distance, low, high, out=distance)
    np.fill_diagonal(distance, 0.0)
    return distance


def layer_rdms(activations: xr.Dataset, method: str = "correlation", *, device=None) -> xr.Dataset:
    """RDMs of every layer of an activations dataset: ``rdm(layer, condition, condition_)``.

    A layer with a single unit (the normative CNN's ``out``) has no correlation or cosine
    distance between conditions; its RDM is the squared euclidean distance instead, and the
    method used for each layer is kept in ``method(layer)``.
    """
    layers = [str(name) for name in activations.data_vars]
    if not layers:
        raise ValueError("the activations hold no layer")
    rdms, methods = [], []
    for layer in layers:
        layer_method = method
        if method in ("correlation", "cosine") and activations.sizes[f"{layer}_unit"] < 2:
            layer_method = "squared_euclidean"
            log.warning("layer %r has one unit: its RDM uses the squared euclidean distance "
                        "instead of %s", layer, method)
        if layer_method == "crossvalidated":
            layer_method = "squared_euclidean"  # networks are noise-free: nothing to cross-validate
        single = rdm_from_activations(activations, layer, layer_method, device=device)
        rdms.append(single["rdm"].values)
        methods.append(layer_method)
    first = single
    return xr.Dataset(
        {
            "rdm": (("layer", "condition", "condition_"), np.stack(rdms)),
            "method": ("layer", np.array(methods)),
        },
        coords={"layer": layers, **{name: first.coords[name] for name in
                                    ("condition", "condition_", "orientation", "orientation_")}},
        attrs={"model": activations.attrs.get("model", ""), "requested_method": method,
               **{k: v for k, v in activations.attrs.items() if k not in ("model", "layers")}},
    )


# Conversion to and from rsatoolbox
# --------------------------------------------------------------------------------------------

#: rsatoolbox's ``dissimilarity_measure`` for each of our methods (its ``calc_rdm`` names the
#: squared euclidean distance per unit 'squared euclidean' and the cross-validated one
#: 'crossnobis'; it has no cosine distance, so that one keeps its name).
RSATOOLBOX_MEASURES = {
    "correlation": "correlation",
    "cosine": "cosine",
    "squared_euclidean": "squared euclidean",
    "crossvalidated": "crossnobis",
}


def to_rsatoolbox(rdms, *, method: str | None = None, names=None, orientation_deg=None):
    """An ``rsatoolbox.rdm.RDMs`` holding ``rdms``, for rsatoolbox's inference and plots.

    rdms: an (n, n) RDM, a (k, n, n) stack, or an RDM file's Dataset (``rdms/v1.nc``:
    ``rdm(condition, condition_)`` with attr ``method``; ``rdms/{network}/seed{seed}.nc``:
    ``rdm(layer, condition, condition_)`` with ``method(layer)``), whose method, layer names
    and orientations are taken from the file. method: one of :data:`METHODS` (or rsatoolbox's
    own name), stored as ``dissimilarity_measure``; names: (k,) names of the RDMs, stored as
    ``rdm_descriptors['name']``; orientation_deg: (n,) degrees, stored as
    ``pattern_descriptors['orientation']``. Needs rsatoolbox (imported here, not by v1rsa).
    """
    from rsatoolbox.rdm import RDMs

    if isinstance(rdms, xr.Dataset):
        dataset = rdms
        rdms = dataset["rdm"].values
        if "layer" in dataset.dims:
            names = [str(layer) for layer in dataset["layer"].values] if names is None else names
            if method is None and "method" in dataset:
                layer_methods = {str(m) for m in dataset["method"].values}
                method = layer_methods.pop() if len(layer_methods) == 1 else None
        else:
            names = [str(dataset.attrs.get("source", "rdm"))] if names is None else names
            method = dataset.attrs.get("method") if method is None else method
        if orientation_deg is None and "orientation" in dataset.coords:
            orientation_deg = dataset["orientation"].values
    stack = np.asarray(rdms, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"rdms: expected (n, n) or (k, n, n), got shape {np.shape(rdms)}")
    rdm_descriptors = {}
    if names is not None:
        names = [str(name) for name in names]
        if len(names) != stack.shape[0]:
            raise ValueError(f"names: expected {stack.shape[0]} names, got {len(names)}")
        rdm_descriptors["name"] = names
    pattern_descriptors = {}
    if orientation_deg is not None:
        orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
        if orientation_deg.shape != (stack.shape[1],):
            raise ValueError(f"orientation_deg: expected ({stack.shape[1]},) degrees, got "
                             f"shape {orientation_deg.shape}")
        pattern_descriptors["orientation"] = orientation_deg.tolist()
    rows, columns = np.triu_indices(stack.shape[1], 1)
    return RDMs(
        stack[:, rows, columns],
        dissimilarity_measure=RSATOOLBOX_MEASURES.get(method, method),
        rdm_descriptors=rdm_descriptors or None,
        pattern_descriptors=pattern_descriptors or None,
    )


def from_rsatoolbox(rdms) -> xr.DataArray:
    """An ``rsatoolbox.rdm.RDMs`` as a labelled stack of square RDMs.

    Returns ``(rdms, condition, condition_)`` float64 with zero diagonals; every rdm descriptor
    becomes a coordinate along ``rdms`` and every pattern descriptor one along ``condition``
    (and ``condition_``), ``attrs['method']`` our name of its dissimilarity measure (see
    :data:`RSATOOLBOX_MEASURES`; an unknown one is kept as rsatoolbox names it).
    """
    matrices = np.asarray(rdms.get_matrices(), dtype=np.float64)
    k, n, _ = matrices.shape
    coords = {"rdms": np.arange(k, dtype=np.int64), "condition": np.arange(n, dtype=np.int64),
              "condition_": np.arange(n, dtype=np.int64)}
    for name, values in (rdms.rdm_descriptors or {}).items():
        if name != "index" and len(values) == k:
            coords[name] = ("rdms", np.asarray(values))
    for name, values in (rdms.pattern_descriptors or {}).items():
        if name != "index" and len(values) == n:
            coords[name] = ("condition", np.asarray(values))
            coords[f"{name}_"] = ("condition_", np.asarray(values))
    measures = {value: key for key, value in RSATOOLBOX_MEASURES.items()}
    measure = rdms.dissimilarity_measure
    attrs = {} if measure is None else {"method": measures.get(measure, measure)}
    return xr.DataArray(matrices, dims=("rdms", "condition", "condition_"), coords=coords,
                        name="rdm", attrs=attrs)
