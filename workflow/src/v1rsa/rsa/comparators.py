"""Comparators of RDMs (Pearson, Spearman, Kendall's τa, cosine) and linear CKA of activations.

The four comparators equal rsatoolbox 0.3.2's ``rsatoolbox.rdm.compare`` (``tests/test_rsa.py``):

================  ==================  ====================================================
``method``        rsatoolbox          definition
================  ==================  ====================================================
``pearson``       ``corr``            Pearson correlation (the course's comparison)
``spearman``      ``spearman``        Pearson correlation of ranks (ties get average ranks)
``kendall_tau_a`` ``tau-a``           (concordant − discordant) / (number of pairs)
``cosine``        ``cosine``          cosine similarity (no centring)
================  ==================  ====================================================

As in rsatoolbox, a comparison with a constant (Pearson, Spearman) or all-zero (cosine) vector
is 0, not NaN. Definitions and sources: ``docs/science.md#rdm-comparators``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats

from v1rsa.rsa._arrays import (
    _average_ranks,
    _check_candidates,
    _check_method,
    _check_rdm,
    _upper,
)

#: the same comparators in rsatoolbox 0.3.2's names (``rsatoolbox.rdm.compare(..., method=)``)
RSATOOLBOX_METHODS = {
    "pearson": "corr",
    "spearman": "spearman",
    "kendall_tau_a": "tau-a",
    "cosine": "cosine",
}


def _cosine(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Cosines of the rows of xs (a, m) with the rows of ys (b, m): (a, b); 0 where a row has
    zero norm (rsatoolbox's convention)."""
    norm_x = np.sqrt(np.einsum("am,am->a", xs, xs))[:, None]
    norm_y = np.sqrt(np.einsum("bm,bm->b", ys, ys))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = xs @ ys.T / norm_x / norm_y
    return np.where((norm_x > 0) & (norm_y > 0), value, 0.0)


def _comparable(vectors: np.ndarray, method: str) -> np.ndarray:
    """Rows (r, m) made ready for a cosine: centred for Pearson, ranked and centred for
    Spearman, as they are for cosine."""
    if method == "spearman":
        vectors = _average_ranks(vectors)
    if method in ("pearson", "spearman"):
        vectors = vectors - vectors.mean(axis=1, keepdims=True)
    return vectors


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τa of two vectors: (concordant − discordant) / (m(m−1)/2), clipped to [−1, 1].

    scipy gives τb = (C − D) / sqrt((T − Tx)(T − Ty)); τa rescales it by the pairs tied in x
    (Tx) and in y (Ty). A vector that is all ties has C − D = 0.
    """
    size = x.size
    total = size * (size - 1) // 2
    _, counts_x = np.unique(x, return_counts=True)
    _, counts_y = np.unique(y, return_counts=True)
    untied_x = total - int((counts_x * (counts_x - 1) // 2).sum())
    untied_y = total - int((counts_y * (counts_y - 1) // 2).sum())
    if untied_x == 0 or untied_y == 0:
        return 0.0
    tau_b = scipy.stats.kendalltau(x, y, variant="b").statistic
    return float(np.clip(tau_b * np.sqrt(float(untied_x) * float(untied_y)) / total, -1.0, 1.0))


def _compare_rows(xs: np.ndarray, ys: np.ndarray, method: str) -> np.ndarray:
    """Compare each row of xs (a, m) with each row of ys (b, m) by ``method``: (a, b)."""
    if method == "kendall_tau_a":
        return np.array([[_tau_a(x, y) for y in ys] for x in xs]).reshape(len(xs), len(ys))
    return _cosine(_comparable(xs, method), _comparable(ys, method))


def _compare_rows_each(x_groups: Sequence[np.ndarray], ys: np.ndarray, method: str) -> list:
    """:func:`_compare_rows` of each xs in ``x_groups`` with the same ys, the same numbers as
    separate calls; the ys (many candidates) are made comparable, for Spearman ranked, once."""
    if method == "kendall_tau_a":
        return [_compare_rows(xs, ys, method) for xs in x_groups]
    ys = _comparable(ys, method)
    return [_cosine(_comparable(xs, method), ys) for xs in x_groups]


def compare_many(reference, candidates, method: str) -> np.ndarray:
    """Compare one reference RDM with many candidate RDMs.

    reference: (n, n) float RDM; candidates: (k, n, n). Returns (k,) float64 similarities
    (rsatoolbox's ``compare(candidate, reference, method)`` for each candidate).
    """
    method = _check_method(method)
    reference = _check_rdm(reference, "reference")
    candidates = _check_candidates(candidates, reference.shape[0])
    return _compare_rows(_upper(reference)[None], _upper(candidates), method)[0]


def compare(rdm_a, rdm_b, method: str) -> float:
    """Similarity of two (n, n) RDMs by ``method`` (see :data:`METHODS`), a float."""
    return float(compare_many(rdm_a, np.asarray(rdm_b, dtype=np.float64)[None], method)[0])


def _check_activations(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected activations (n_conditions, n_units), "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: activations hold NaN or infinite values")
    return a


def _centred_gram(a: np.ndarray) -> np.ndarray:
    """(n, n) Gram matrix of the activations (n, units) after centring each unit."""
    a = a - a.mean(axis=0)
    return a @ a.T


def _cka_from_grams(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    norm_x, norm_y = np.linalg.norm(gram_x), np.linalg.norm(gram_y)
    if norm_x == 0 or norm_y == 0:
        raise ValueError("cka: activations are constant across conditions (zero variance)")
    return float(np.sum(gram_x * gram_y) / (norm_x * norm_y))


def cka(x, y) -> float:
    """Linear centred kernel alignment between two sets of activations for the same conditions.

    x: (n_conditions, n_units_x), y: (n_conditions, n_units_y). Returns a float in [0, 1]:
    ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F) with each unit centred across conditions (Kornblith et al.
    2019), computed through the n × n Gram matrices when units outnumber conditions.
    """
    x, y = _check_activations(x, "x"), _check_activations(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} conditions but y has {y.shape[0]}")
    if max(x.shape[1], y.shape[1]) > x.shape[0]:
        return _cka_from_grams(_centred_gram(x), _centred_gram(y))
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        raise ValueError("cka: activations are constant across conditions (zero variance)")
    return float(np.linalg.norm(y.T @ x) ** 2 / (norm_x * norm_y))
