"""Checks and array helpers shared by the RSA modules: RDM input checks, upper triangles, ranks.

Every comparison uses the strict upper triangle of (n, n) RDMs, in ``np.triu_indices(n, 1)``
order.
"""

from __future__ import annotations

import numpy as np

#: comparators, in our names
METHODS = ("pearson", "spearman", "kendall_tau_a", "cosine")
#: conditions a comparison needs, and a bootstrap sample must hold (rsatoolbox's rule)
MIN_CONDITIONS = 3
# Spearman in exact integers. The bootstrap sums non-negative terms w R_x R_y (R: a doubled
# average rank − 1 of the sample's W = Σ w weighted entries, below 2W ≤ n(n − 1)), below
# 4W³ ≤ (n(n − 1))³/2: integers below 2**53, exact in float64, up to 512 conditions; int64 up to
# 1625 conditions; beyond, float64 and the sums round. The permutation null's
# centred rank scores (2r − m − 1), m = n(n − 1)/2 pairs, give partial sums below (m³ − m)/3:
# integers below 2**53, exact in float64 in any order, up to 775 conditions.
MAX_CONDITIONS_FLOAT64_RANKS = 512
MAX_CONDITIONS_INT64_RANKS = 1625


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown RDM comparison method {method!r}; expected one of {METHODS}")
    return method


def _check_rdm(rdm, name: str) -> np.ndarray:
    """Return ``rdm`` as a float64 (n, n) array; raise ``ValueError`` naming ``name`` if it is not
    a finite, symmetric RDM of at least 3 conditions."""
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"{name}: expected a square (n, n) RDM, got shape {rdm.shape}")
    if rdm.shape[0] < MIN_CONDITIONS:
        raise ValueError(f"{name}: an RDM needs at least 3 conditions, got {rdm.shape[0]}")
    if not np.isfinite(rdm).all():
        raise ValueError(f"{name}: RDM holds NaN or infinite values")
    if not np.allclose(rdm, rdm.T, rtol=1e-7, atol=1e-12):
        raise ValueError(f"{name}: RDM is not symmetric")
    return rdm


def _check_candidates(candidates, n_conditions: int, name: str = "candidates") -> np.ndarray:
    """Return ``candidates`` as float64 (k, n, n); each checked like :func:`_check_rdm`."""
    candidates = np.asarray(candidates, dtype=np.float64)
    if candidates.ndim != 3:
        raise ValueError(f"{name}: expected a stack of RDMs (k, n, n), got shape "
                         f"{candidates.shape}")
    if candidates.shape[1:] != (n_conditions, n_conditions):
        raise ValueError(f"{name}: RDMs of shape {candidates.shape[1:]} do not match the "
                         f"reference's ({n_conditions}, {n_conditions})")
    for i, rdm in enumerate(candidates):
        _check_rdm(rdm, f"{name}[{i}]")
    return candidates


def _upper(rdms: np.ndarray) -> np.ndarray:
    """Strict upper triangles of (..., n, n) RDMs, as (..., n(n−1)/2) in triu_indices order."""
    rows, cols = np.triu_indices(rdms.shape[-1], 1)
    return rdms[..., rows, cols]


def _symmetric(vector: np.ndarray, n_conditions: int) -> np.ndarray:
    """(n, n) symmetric matrix with zero diagonal from an upper-triangle vector, of its dtype."""
    rows, cols = np.triu_indices(n_conditions, 1)
    matrix = np.zeros((n_conditions, n_conditions), dtype=vector.dtype)
    matrix[rows, cols] = vector
    matrix[cols, rows] = vector
    return matrix


def _average_ranks(vectors: np.ndarray) -> np.ndarray:
    """Ranks 1 … m of each row of vectors (r, m), ties given their average rank: (r, m) float64,
    equal to ``scipy.stats.rankdata(vectors, axis=1)``. One numpy argsort per row (its default,
    vectorised sort is several times faster than the stable sort scipy uses, and the order inside
    a tie group does not matter once the group shares its mean rank)."""
    ranks = np.empty(vectors.shape, dtype=np.float64)
    for row, out in zip(vectors, ranks, strict=True):
        order = np.argsort(row)
        ordered = row[order]
        new_group = np.r_[True, ordered[1:] != ordered[:-1]]
        if new_group.all():
            out[order] = np.arange(1, row.size + 1)
            continue
        starts = np.flatnonzero(new_group)
        ends = np.r_[starts[1:], row.size]  # the group holds ranks starts + 1 … ends
        out[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks


def _n_from_pairs(n_pairs: int) -> int:
    return int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))


def _condition_dtype(n_conditions: int):
    """The smallest unsigned integer type that holds condition indices (compact kernel inputs)."""
    return np.uint16 if n_conditions <= 1 << 16 else np.uint32


def _tie_group_starts(ordered: np.ndarray) -> np.ndarray:
    """Starts of the runs of equal values in a sorted vector (m,), then m: (g + 1,) int64."""
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    return np.r_[np.flatnonzero(new_group), ordered.size].astype(np.int64)


def _doubled_centred_ranks(vectors: np.ndarray) -> np.ndarray:
    """2 · average rank − (m + 1) of each row of vectors (r, m): (r, m) int64. Integers (average
    ranks are halves), centred (they sum to 0): Spearman's rho is their cosine."""
    return (2 * _average_ranks(vectors)).astype(np.int64) - (vectors.shape[1] + 1)
