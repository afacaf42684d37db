"""The noise ceiling of the reference RDM from its own disjoint trial folds.

rsatoolbox's ``boot_noise_ceiling`` (leave one fold out), with its method-specific pooling of
fold RDMs; ``docs/science.md#noise-ceiling``.
"""

from __future__ import annotations

import numpy as np

from v1rsa.rsa._arrays import _average_ranks, _check_method, _check_rdm, _upper
from v1rsa.rsa.comparators import _comparable, _cosine, _tau_a


def _normalise_for_pooling(vectors: np.ndarray, method: str) -> np.ndarray:
    """Transform RDM vectors (f, m) as rsatoolbox's ``pool_rdm`` does before averaging them:
    z-scored for Pearson, ranked for Spearman and τa, scaled to unit root-mean-square for
    cosine."""
    if method == "pearson":
        centred = vectors - vectors.mean(axis=1, keepdims=True)
        return centred / centred.std(axis=1, keepdims=True)
    if method == "cosine":
        return vectors / np.sqrt(np.mean(vectors**2, axis=1, keepdims=True))
    return _average_ranks(vectors)


def noise_ceiling(rdm_folds, method: str) -> tuple[float, float]:
    """Lower and upper bound of the noise ceiling from RDMs of disjoint trial folds.

    rdm_folds: (n_folds, n, n), n_folds ≥ 2. Lower: mean over folds of the comparison of each
    fold's RDM with the pooled RDM of the other folds; upper: the same with the pooled RDM of all
    folds. The pooling is rsatoolbox's for the method (z-score, rank or RMS-scale each fold, then
    average), as in its ``boot_noise_ceiling``. The bounds bound the expected comparison of the
    true model with one fold's RDM.
    """
    method = _check_method(method)
    rdm_folds = np.asarray(rdm_folds, dtype=np.float64)
    if rdm_folds.ndim != 3 or rdm_folds.shape[0] < 2:
        raise ValueError(f"rdm_folds: expected (n_folds ≥ 2, n, n) fold RDMs, got shape "
                         f"{rdm_folds.shape}")
    for i, rdm in enumerate(rdm_folds):
        _check_rdm(rdm, f"rdm_folds[{i}]")
    vectors = _upper(rdm_folds)
    n_folds = len(vectors)
    # Pooling transforms each fold alone, then averages: the mean of the other folds is
    # (sum of all − own) / (n_folds − 1).
    normalised = _normalise_for_pooling(vectors, method)
    total = normalised.sum(axis=0)
    pooled = np.vstack([(total - normalised) / (n_folds - 1), total / n_folds])
    if method == "kendall_tau_a":
        lower = [_tau_a(pooled[f], vectors[f]) for f in range(n_folds)]
        upper = [_tau_a(pooled[-1], vectors[f]) for f in range(n_folds)]
    else:
        folds = _comparable(vectors, method)
        pooled = _comparable(pooled, method)
        lower = np.diag(_cosine(pooled[:-1], folds))
        upper = _cosine(pooled[-1:], folds)
    return float(np.mean(lower)), float(np.mean(upper))
