"""Permutation test of each candidate's similarity with the reference, and FDR control.

The reference's condition labels are permuted (rows and columns together); one-sided,
``p = (1 + #{null ≥ observed}) / (1 + n_permutations)``, so p is never 0. A null value counts as
≥ when it is within 1e-12 of the observed value (floating-point ties).

Relabelling moves values without changing them, so ranks, means and norms are computed once and
a permutation changes only the cross product Σ x_π y: the nulls of all K candidates are one
matrix product of the relabelled reference vectors (P × pairs, built a block at a time by a
compiled kernel) with the candidates (pairs × K). For Spearman the vectors are integer rank
scores (2r − m − 1) held in float64, whose products and sums are exact integers below 2**53 (up
to 775 conditions), so that product is exact in any order. Kendall's τa walks the reference's
sorted order with a Fenwick tree over the candidate's ranks, O(m log m) per permutation.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from v1rsa.rsa._arrays import (
    _check_candidates,
    _check_method,
    _check_rdm,
    _condition_dtype,
    _doubled_centred_ranks,
    _symmetric,
    _tie_group_starts,
    _upper,
)
from v1rsa.rsa.bootstrap import _run_blocks, _workspace
from v1rsa.rsa.comparators import compare_many

# A null value within this distance of the observed value counts as reaching it: the null and the
# observed value come from different floating-point paths, and an exact tie must not be lost.
_TIE_TOLERANCE = 1e-12
# Permutations per block: the block's relabelled reference vectors are the left operand of one
# matrix product with the candidates.
_PERMUTATIONS_PER_BLOCK = 256


def draw_permutations(n_conditions: int, n_permutations: int, rng) -> np.ndarray:
    """Random relabellings of conditions: (n_permutations, n_conditions) int64, each a
    permutation of 0 … n−1."""
    rng = np.random.default_rng(rng)
    return rng.permuted(np.tile(np.arange(n_conditions), (n_permutations, 1)), axis=1)


def _permuted_products(matrix, permutations, directions, n_threads):
    """Σ_{i<j} matrix[π_i, π_j] · directions[:, pair(i, j)] for every permutation π.

    matrix: (n, n) symmetric float64; permutations: (P, n); directions: (k, m) float64 in triu
    order. Returns (P, k) float64: per fixed block of permutations, the relabelled upper
    triangles (``_kernels.permuted_upper``) times directionsᵀ, one block per worker thread.
    """
    from v1rsa import _kernels

    permutations = np.ascontiguousarray(permutations, dtype=_condition_dtype(matrix.shape[0]))
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    out = np.empty((len(permutations), len(directions)))

    def block(start, stop):
        relabelled = _workspace("relabelled", (stop - start, directions.shape[1]))
        _kernels.permuted_upper(matrix, permutations[start:stop], relabelled)
        out[start:stop] = relabelled @ directions.T

    _run_blocks(block, len(permutations), n_threads, _PERMUTATIONS_PER_BLOCK)
    return out


def _permuted_tau_a(x, ys, permutations, n_threads):
    """Kendall's τa of the relabelled reference (x: (m,)) with each candidate (ys: (k, m)) for
    every permutation (P, n): (P, k) float64, exact (``_kernels.permuted_tau_a``). The
    reference's sorted order is computed once; a permutation only renames its pairs."""
    from v1rsa import _kernels

    n = permutations.shape[1]
    rows, cols = np.triu_indices(n, 1)
    order = np.argsort(x)
    key_matrices, n_keys = [], []
    for y in ys:
        distinct, key = np.unique(y, return_inverse=True)
        key_matrices.append(_symmetric(key.astype(np.int32), n))
        n_keys.append(distinct.size)
    inverse = np.empty_like(permutations)
    np.put_along_axis(inverse, permutations, np.arange(n)[None, :], axis=1)
    condition = _condition_dtype(n)
    tau = np.empty((len(permutations), len(ys)))
    with _kernels.threads(n_threads):
        _kernels.permuted_tau_a(rows[order].astype(condition), cols[order].astype(condition),
                                _tie_group_starts(x[order]), np.stack(key_matrices),
                                np.array(n_keys, dtype=np.int64), inverse.astype(condition),
                                tau)
    return tau


def permutation_null(reference, candidates, method: str, permutations, *, n_threads: int = 1):
    """Comparisons of the candidates with the reference under relabelled conditions.

    reference: (n, n); candidates: (k, n, n); permutations: (P, n), each a permutation of the
    reference's conditions (rows and columns move together). Returns (P, k) float64.
    Relabelling moves values without changing them, so ranks, means and norms are computed once;
    per permutation only the cross products Σ x_π · y change (``_permuted_products``). Spearman's
    are sums of integers (doubled centred ranks), exact; Kendall's τa counts concordant minus
    discordant pairs with a Fenwick tree, exact (``_permuted_tau_a``).
    """
    method = _check_method(method)
    reference = _check_rdm(reference, "reference")
    n = reference.shape[0]
    candidates = _check_candidates(candidates, n)
    permutations = np.asarray(permutations)
    if (permutations.ndim != 2 or permutations.shape[1] != n
            or not (np.sort(permutations, axis=1) == np.arange(n)).all()):
        raise ValueError(f"permutations: expected rows that are permutations of 0 … {n - 1}")
    x, ys = _upper(reference), _upper(candidates)
    if not len(ys):
        return np.empty((len(permutations), 0))
    if method == "kendall_tau_a":
        return _permuted_tau_a(x, ys, permutations, n_threads)
    if method == "spearman":  # integer rank scores, exact in float64 (see the module)
        x = _doubled_centred_ranks(x[None])[0].astype(np.float64)
        ys = _doubled_centred_ranks(ys).astype(np.float64)
    elif method == "pearson":
        x = x - x.mean()
        ys = ys - ys.mean(axis=1, keepdims=True)
    norm_x = np.sqrt(x @ x)
    norm_y = np.sqrt(np.einsum("km,km->k", ys, ys))
    cross = _permuted_products(_symmetric(x, n), permutations, ys, n_threads)
    with np.errstate(invalid="ignore", divide="ignore"):
        null = cross / norm_x / norm_y
    null[:, (norm_y == 0) | (norm_x == 0)] = 0.0  # rsatoolbox's value for a zero vector
    return null


def permutation_test(reference, candidates, method: str, *, n_permutations: int = 10000, rng,
                     n_threads: int = 1) -> dict:
    """One-sided permutation test of each candidate's similarity with the reference.

    The reference's condition labels are permuted (rows and columns together), shared across
    candidates. reference: (n, n); candidates: (k, n, n); rng: seed or Generator. Returns
    ``p`` (k,) = (1 + #{null ≥ observed}) / (1 + n_permutations) (the test of "more similar than
    chance"), ``null`` (n_permutations, k), ``observed`` (k,) and ``permutations``
    (n_permutations, n) int64.
    """
    observed = compare_many(reference, candidates, method)
    permutations = draw_permutations(np.shape(reference)[0], n_permutations, rng)
    null = permutation_null(reference, candidates, method, permutations, n_threads=n_threads)
    return {
        "p": permutation_p_value(observed, null),
        "null": null,
        "observed": observed,
        "permutations": permutations,
    }


def permutation_p_value(observed, null) -> np.ndarray:
    """(1 + #{null ≥ observed − 1e-12}) / (1 + n_permutations) per column; null: (P, k)."""
    null = np.asarray(null, dtype=np.float64)
    reached = null >= np.asarray(observed, dtype=np.float64) - _TIE_TOLERANCE
    return (1 + reached.sum(axis=0)) / (1 + null.shape[0])


def fdr_bh(p) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) of a 1-D array of p-values.

    NaN p-values stay NaN and do not count among the tests.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p: expected a 1-D array of p-values, got shape {p.shape}")
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        q[tested] = scipy.stats.false_discovery_control(p[tested], method="bh")
    return q
