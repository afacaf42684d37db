"""Representational similarity analysis: compare candidate RDMs with the V1 RDM, with statistics.

Every comparison uses the strict upper triangle of the (n, n) RDMs, in ``np.triu_indices(n, 1)``
order. The four comparators equal rsatoolbox 0.3.2's ``rsatoolbox.rdm.compare`` (checked in
``tests/test_rsa.py``):

================  ==================  ====================================================
``method``        rsatoolbox          definition
================  ==================  ====================================================
``pearson``       ``corr``            Pearson correlation (the course's comparison)
``spearman``      ``spearman``        Pearson correlation of ranks (ties get average ranks)
``kendall_tau_a`` ``tau-a``           (concordant − discordant) / (number of pairs)
``cosine``        ``cosine``          cosine similarity (no centring)
================  ==================  ====================================================

As in rsatoolbox, a comparison with a constant (Pearson, Spearman) or all-zero (cosine) vector
is 0, not NaN.

Statistics (all resampling draws come from a seed or a ``numpy.random.Generator``):

- Bootstrap over conditions, exactly rsatoolbox's ``bootstrap_sample_pattern`` +
  ``eval_bootstrap_pattern``: draw n conditions with replacement; both RDMs are subsampled with
  the drawn conditions (repeats included) and the pairs of a condition with itself are dropped.
  Such a sample is a multiset, so pair (i, j) enters with weight ``c_i · c_j`` (``c`` = how often
  each condition was drawn). Pearson and cosine become weighted sums, all samples at once as
  matrix products; Spearman ranks under weights come from one sort of each vector and prefix
  sums of the integer weights, in exact integer arithmetic (ties share the mean of their weighted
  rank span, which is what scipy's ``rankdata(method='average')`` gives the repeated entries);
  Kendall's τa counts weighted concordant minus discordant pairs, also exactly.
  Samples with fewer than 3 distinct conditions are NaN, as in rsatoolbox.
- Permutation test: the reference's condition labels are permuted (rows and columns together);
  one-sided, ``p = (1 + #{null ≥ observed}) / (1 + n_permutations)``, so p is never 0. A null
  value counts as ≥ when it is within 1e-12 of the observed value (floating-point ties).
- Noise ceiling from the data's own folds: rsatoolbox's ``boot_noise_ceiling`` (leave one fold
  out), with its method-specific pooling of fold RDMs.

Speed: the loops over bootstrap samples and permutations are compiled (numba, in
``v1rsa._kernels``) and run in parallel on ``n_threads`` threads; each sample or permutation is
computed by one thread in a fixed order, so results do not depend on the thread count.
Relabelling moves values without changing them, so ranks, means and norms are computed once and
a permutation changes only the cross product Σ x_π y: per permutation the kernel reads the
relabelled upper triangle row by row (a row of the reference stays in L1) and multiplies it with
every candidate. For Spearman it sums products of integer ranks (2r − m − 1) in int64, exactly.
The Spearman bootstrap walks each vector's sorted order once per sample, summing the integer
weights into ranks (exact, as above); Kendall's τa (bootstrap and permutations) walks the
reference's sorted order with a Fenwick tree over the candidate's ranks, O(m log m) per sample or
permutation; the Pearson and cosine bootstraps are matrix products on ``n_threads`` worker threads
with BLAS held to one thread. With 360 conditions and 3 candidates on 2 cores the full Spearman
inference (1,000 samples, 10,000 permutations, noise ceiling) takes about 0.5 s (the numpy
kernels before these took 2.4 s; rsatoolbox's bootstrap alone takes 33 s), and Kendall's τa
about 20 s for 10,000 permutations (5 minutes before). The kernels compile on first use (about
3 s) and numba caches them on disk (``__pycache__`` beside ``_kernels.py``, or the user's cache
directory), so a later process loads them in about 0.3 s. ``bench/rsa.py`` times all of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr
from threadpoolctl import threadpool_limits

#: comparators, in our names
METHODS = ("pearson", "spearman", "kendall_tau_a", "cosine")
#: the same comparators in rsatoolbox 0.3.2's names (``rsatoolbox.rdm.compare(..., method=)``)
RSATOOLBOX_METHODS = {
    "pearson": "corr",
    "spearman": "spearman",
    "kendall_tau_a": "tau-a",
    "cosine": "cosine",
}

# A null value within this distance of the observed value counts as reaching it: the null and the
# observed value come from different floating-point paths, and an exact tie must not be lost.
_TIE_TOLERANCE = 1e-12
# Conditions a bootstrap sample must hold for its comparison to be defined (rsatoolbox's rule).
_MIN_DISTINCT_CONDITIONS = 3
# Bootstrap samples per block of work (Pearson and cosine: matrix products on worker threads).
_BLOCK = 64
# Spearman in exact integers: the bootstrap sums w (2r_x)(2r_y) ≤ 4 W³ ≤ n⁶ / 2 over pairs, and
# the permutation null Σ (2r_x − m − 1)(2r_y − m − 1) ≤ (m³ − m) / 3 over the m pairs; both fit
# int64 up to 1625 conditions. Beyond, float64 holds the ranks exactly (up to 2**53) and the sums
# round.
_MAX_CONDITIONS_INT64_RANKS = 1625


# ----------------------------------------------------------------------------------------------
# Input checks


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
    if rdm.shape[0] < _MIN_DISTINCT_CONDITIONS:
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


# ----------------------------------------------------------------------------------------------
# Comparators


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


# ----------------------------------------------------------------------------------------------
# Bootstrap over conditions


def draw_bootstrap_indices(n_conditions: int, n_bootstrap: int, rng) -> np.ndarray:
    """Conditions drawn with replacement: (n_bootstrap, n_conditions) int64 in [0, n)."""
    return np.random.default_rng(rng).integers(0, n_conditions, size=(n_bootstrap, n_conditions))


def _weighted_linear(x, ys, method):
    """Pearson or cosine of bootstrap samples as weighted sums, through matrix products.

    Returns a function of counts (b, n) float64 → (b, k). A multiset sample weighs pair (i, j)
    by c_i c_j, so a weighted sum over pairs Σ c_i c_j A_ij is the quadratic form ½ cᵀ A c of
    the symmetric, zero-diagonal A.
    """
    n = _n_from_pairs(x.size)
    if method == "pearson":
        # Centring by the unweighted mean (which Pearson ignores) keeps the sums small.
        x = x - x.mean()
        ys = ys - ys.mean(axis=1, keepdims=True)
    matrices = [_symmetric(x, n), _symmetric(x * x, n)]
    for y in ys:
        matrices += [_symmetric(y, n), _symmetric(y * y, n), _symmetric(x * y, n)]
    stacked = np.concatenate(matrices, axis=1)  # (n, q·n)

    def evaluate(counts):
        products = (counts @ stacked).reshape(len(counts), -1, n)
        sums = np.einsum("bqn,bn->bq", products, counts) / 2
        sx, sxx = sums[:, :1], sums[:, 1:2]
        sy, syy, sxy = sums[:, 2::3], sums[:, 3::3], sums[:, 4::3]
        # Samples of one condition have no pairs (weight 0): NaN here, marked later.
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "pearson":
                weight = ((n * n - np.sum(counts * counts, axis=1)) / 2)[:, None]
                mean_x, mean_y = sx / weight, sy / weight
                var_x, var_y = sxx / weight - mean_x**2, syy / weight - mean_y**2
                cov = sxy / weight - mean_x * mean_y
                # A variance at rounding level of the raw second moment is a constant sample.
                zero = (var_x <= 1e-13 * sxx / weight) | (var_y <= 1e-13 * syy / weight)
            else:
                var_x, var_y, cov = sxx, syy, sxy
                zero = (var_x <= 0) | (var_y <= 0)
            value = cov / np.sqrt(var_x * var_y)
        return np.where(zero, 0.0, value)

    return evaluate


def _n_from_pairs(n_pairs: int) -> int:
    return int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))


def _condition_dtype(n_conditions: int):
    """The smallest unsigned integer type that holds condition indices (compact kernel inputs)."""
    return np.uint16 if n_conditions <= 1 << 16 else np.uint32


def _tie_group_starts(ordered: np.ndarray) -> np.ndarray:
    """Starts of the runs of equal values in a sorted vector (m,), then m: (g + 1,) int64."""
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    return np.r_[np.flatnonzero(new_group), ordered.size].astype(np.int64)


def _weighted_spearman(x, ys, counts, n_threads):
    """Spearman's rho of bootstrap samples from weighted ranks, in exact integer arithmetic.

    x: (m,), ys: (k, m) upper triangles; counts: (b, n) int. Returns (b, k) float64. Pair (i, j)
    weighs w = c_i c_j. Each vector is sorted once, here; per sample the kernel
    (``_kernels.weighted_spearman``) walks each sorted order summing the weights: doubled
    average ranks (ties share their weighted span), and Σ w (2r_x)(2r_y), W and Σ_groups T³,
    all exact integers, give rho.
    """
    from v1rsa import _kernels  # numba: imported on first use, so that `import v1rsa.rsa` is light

    m, n = x.size, counts.shape[1]
    rows, cols = np.triu_indices(n, 1)
    vectors = [x, *ys]
    orders = [np.argsort(v) for v in vectors]
    starts = [_tie_group_starts(v[order]) for v, order in zip(vectors, orders, strict=True)]
    position_x = np.empty(m, dtype=np.intp)
    position_x[orders[0]] = np.arange(m)
    condition = _condition_dtype(n)
    dtype = np.int64 if n <= _MAX_CONDITIONS_INT64_RANKS else np.float64
    rho = np.empty((len(counts), len(ys)))
    with _kernels.threads(n_threads):
        _kernels.weighted_spearman(
            np.ascontiguousarray(counts, dtype=dtype),
            np.stack([rows[order] for order in orders]).astype(condition),
            np.stack([cols[order] for order in orders]).astype(condition),
            np.concatenate(starts),
            np.cumsum([0] + [s.size for s in starts]),
            np.array([s.size <= m for s in starts]),  # fewer groups than pairs: ties
            np.stack([position_x[order] for order in orders[1:]]).astype(np.uint32),
            rho,
        )
    return rho


def _weighted_tau_a(x, ys, counts, n_threads):
    """Kendall's τa of bootstrap samples, exact: each multiset sample as weights, not expanded.

    x: (m,), ys: (k, m); counts: (b, n) int. Returns (b, k) float64. The reference is sorted
    once; per sample and candidate the kernel (``_kernels.weighted_tau_a``) walks that order and
    counts weighted concordant minus discordant pairs with a Fenwick tree over y's ranks.
    """
    from v1rsa import _kernels

    n = counts.shape[1]
    rows, cols = np.triu_indices(n, 1)
    order = np.argsort(x)
    keys, n_keys = [], []
    for y in ys:
        distinct, key = np.unique(y, return_inverse=True)
        keys.append(key[order])
        n_keys.append(distinct.size)
    condition = _condition_dtype(n)
    tau = np.empty((len(counts), len(ys)))
    with _kernels.threads(n_threads):
        _kernels.weighted_tau_a(np.ascontiguousarray(counts, dtype=np.int64),
                                rows[order].astype(condition), cols[order].astype(condition),
                                np.stack(keys).astype(np.int32), _tie_group_starts(x[order]),
                                np.array(n_keys, dtype=np.int64), tau)
    return tau


def _run_blocks(function, n_items: int, n_threads: int, block: int = _BLOCK) -> None:
    """Call ``function(start, stop)`` over blocks of items, on ``n_threads`` threads.

    Each block writes its own slice of the output, so the result does not depend on n_threads.
    BLAS is held to one thread per worker: its own threads would fight ours (and other users
    of a shared machine) over the many small products here.
    """
    spans = [(start, min(start + block, n_items)) for start in range(0, n_items, block)]
    with threadpool_limits(limits=1, user_api="blas"):
        if n_threads <= 1 or len(spans) == 1:
            for span in spans:
                function(*span)
            return
        with ThreadPoolExecutor(n_threads) as pool:
            for future in [pool.submit(function, *span) for span in spans]:
                future.result()


def compare_resampled(reference, candidates, method: str, indices, *, n_threads: int = 1):
    """Comparisons on bootstrap samples of conditions given the drawn ``indices``.

    reference: (n, n); candidates: (k, n, n); indices: (n_bootstrap, n) int conditions drawn
    with replacement. Returns (n_bootstrap, k) float64: for each sample, the comparison of the
    subsampled RDMs without self-pairs (rsatoolbox's ``eval_bootstrap_pattern``); NaN where a
    sample has fewer than 3 distinct conditions. n_threads: worker threads.
    """
    method = _check_method(method)
    reference = _check_rdm(reference, "reference")
    n = reference.shape[0]
    candidates = _check_candidates(candidates, n)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != n or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices: expected integer draws of shape (n_bootstrap, {n}), got "
                         f"{indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices: conditions must lie in [0, {n})")
    x, ys = _upper(reference), _upper(candidates)
    offsets = n * np.arange(len(indices))[:, None]
    counts = np.bincount((indices + offsets).ravel(), minlength=len(indices) * n)
    counts = counts.reshape(len(indices), n)

    if not len(ys):
        samples = np.empty((len(indices), 0))
    elif method == "spearman":
        samples = _weighted_spearman(x, ys, counts, n_threads)
    elif method == "kendall_tau_a":
        samples = _weighted_tau_a(x, ys, counts, n_threads)
    else:
        samples = np.empty((len(indices), len(ys)))
        evaluate = _weighted_linear(x, ys, method)
        counts_float = counts.astype(np.float64)

        def block(start, stop):
            samples[start:stop] = evaluate(counts_float[start:stop])

        _run_blocks(block, len(indices), n_threads)
    samples[np.count_nonzero(counts, axis=1) < _MIN_DISTINCT_CONDITIONS] = np.nan
    return samples


def bootstrap_conditions(reference, candidates, method: str, *, n_bootstrap: int = 1000, rng,
                         n_threads: int = 1) -> dict:
    """Bootstrap the comparisons over conditions (stimuli), all candidates on the same draws.

    reference: (n, n); candidates: (k, n, n); rng: seed or ``numpy.random.Generator``.
    Returns ``samples`` (n_bootstrap, k) float64 and ``indices`` (n_bootstrap, n) int64 (the
    conditions of each sample, in drawing order). See :func:`compare_resampled`.
    """
    n = np.shape(reference)[0]
    indices = draw_bootstrap_indices(n, n_bootstrap, rng)
    samples = compare_resampled(reference, candidates, method, indices, n_threads=n_threads)
    return {"samples": samples, "indices": indices}


def confidence_interval(samples, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap samples (n_bootstrap, k) → (low (k,), high (k,)).

    NaN samples (too few distinct conditions) are left out.
    """
    if not 0 < level < 1:
        raise ValueError(f"level: expected a confidence level in (0, 1), got {level}")
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(np.asarray(samples, dtype=np.float64), [tail, 100 - tail],
                                 axis=0)
    return low, high


# ----------------------------------------------------------------------------------------------
# Permutation test


def draw_permutations(n_conditions: int, n_permutations: int, rng) -> np.ndarray:
    """Random relabellings of conditions: (n_permutations, n_conditions) int64, each a
    permutation of 0 … n−1."""
    rng = np.random.default_rng(rng)
    return rng.permuted(np.tile(np.arange(n_conditions), (n_permutations, 1)), axis=1)


def _permuted_products(matrix, permutations, directions, n_threads):
    """Σ_{i<j} matrix[π_i, π_j] · directions[:, pair(i, j)] for every permutation π.

    matrix: (n, n) symmetric, int (exact: int64 sums) or float; permutations: (P, n);
    directions: (k, m) in triu order. Returns (P, k) int64 or float64 (``_kernels.permuted_cross``:
    per permutation, the relabelled upper triangle row by row, each row multiplied with every
    candidate while it is in cache).
    """
    from v1rsa import _kernels

    exact = np.issubdtype(matrix.dtype, np.integer)
    storage = np.int32 if exact else np.float64
    out = np.zeros((len(permutations), len(directions)), np.int64 if exact else np.float64)
    with _kernels.threads(n_threads):
        _kernels.permuted_cross(np.ascontiguousarray(matrix, dtype=storage),
                                permutations.astype(_condition_dtype(matrix.shape[0])),
                                np.ascontiguousarray(directions, dtype=storage), out)
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


def _doubled_centred_ranks(vectors: np.ndarray) -> np.ndarray:
    """2 · average rank − (m + 1) of each row of vectors (r, m): (r, m) int64. Integers (average
    ranks are halves), centred (they sum to 0): Spearman's rho is their cosine."""
    return (2 * _average_ranks(vectors)).astype(np.int64) - (vectors.shape[1] + 1)


def permutation_null(reference, candidates, method: str, permutations, *, n_threads: int = 1):
    """Comparisons of the candidates with the reference under relabelled conditions.

    reference: (n, n); candidates: (k, n, n); permutations: (P, n), each a permutation of the
    reference's conditions (rows and columns move together). Returns (P, k) float64.
    Relabelling moves values without changing them, so ranks, means and norms are computed once;
    per permutation only the cross products Σ x_π · y change (``_permuted_products``). Spearman's
    are sums of integers (doubled centred ranks), exact; Kendall's τa counts inversions by merge
    sort, exact (``_permuted_tau_a``).
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
    if method == "spearman":
        x = _doubled_centred_ranks(x[None])[0]
        ys = _doubled_centred_ranks(ys)
        if n > _MAX_CONDITIONS_INT64_RANKS:  # int64 sums could overflow: float64, rounded
            x, ys = x.astype(np.float64), ys.astype(np.float64)
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


# ----------------------------------------------------------------------------------------------
# Noise ceiling


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


# ----------------------------------------------------------------------------------------------
# The table


def rsa_table(
    reference_rdm,
    reference_folds,
    candidates: Mapping[str, np.ndarray],
    methods: Sequence[str],
    *,
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    ci_level: float = 0.95,
    reference_name: str = "V1",
    n_threads: int = 1,
) -> tuple[pd.DataFrame, xr.Dataset]:
    """Compare candidate RDMs with the reference RDM by each method, with CI, p, q, noise ceiling.

    reference_rdm: (n, n); reference_folds: (n_folds, n, n) fold RDMs, or None when the source has
    no folds (noise ceiling NaN); candidates: name → (n, n) RDM; methods: names in
    :data:`METHODS`. Random draws: ``SeedSequence(seed).spawn(2)`` gives one generator for the
    bootstrap indices and one for the permutations, both shared by all candidates and methods,
    so adding a candidate or a method changes no other draw.

    Returns a tidy table with one row per (reference, candidate, comparator) — columns
    reference, candidate, comparator, value, ci_low, ci_high, p (one-sided permutation), q (BH
    across candidates within a comparator), noise_ceiling_lower, noise_ceiling_upper,
    value_fold_mean (mean comparison with each fold's RDM: what the ceiling bounds), n_conditions,
    n_bootstrap, n_permutations, seed, ci_level — and a Dataset holding the same numbers plus the
    bootstrap samples, the permutation nulls and the drawn indices.
    """
    methods = [_check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods: expected at least one comparison method")
    if not candidates:
        raise ValueError("candidates: expected at least one candidate RDM")
    reference_rdm = _check_rdm(reference_rdm, "reference_rdm")
    n = reference_rdm.shape[0]
    names = [str(name) for name in candidates]
    stack = np.stack([np.asarray(candidates[name], dtype=np.float64) for name in candidates])
    stack = _check_candidates(stack, n, "candidates")
    if reference_folds is not None:
        reference_folds = np.asarray(reference_folds, dtype=np.float64)
        if reference_folds.ndim != 3 or reference_folds.shape[1:] != (n, n):
            raise ValueError(f"reference_folds: expected (n_folds, {n}, {n}), got shape "
                             f"{reference_folds.shape}")
    bootstrap_seed, permutation_seed = np.random.SeedSequence(seed).spawn(2)
    indices = draw_bootstrap_indices(n, n_bootstrap, np.random.default_rng(bootstrap_seed))
    permutations = draw_permutations(n, n_permutations, np.random.default_rng(permutation_seed))

    k, n_methods = len(names), len(methods)
    per_method = {key: np.full((n_methods, k), np.nan) for key in
                  ("value", "ci_low", "ci_high", "p", "q", "value_fold_mean")}
    ceiling = np.full((n_methods, 2), np.nan)
    samples = np.empty((n_methods, n_bootstrap, k))
    nulls = np.empty((n_methods, n_permutations, k))
    for i, method in enumerate(methods):
        value = compare_many(reference_rdm, stack, method)
        samples[i] = compare_resampled(reference_rdm, stack, method, indices, n_threads=n_threads)
        nulls[i] = permutation_null(reference_rdm, stack, method, permutations,
                                    n_threads=n_threads)
        per_method["value"][i] = value
        if n_bootstrap:
            per_method["ci_low"][i], per_method["ci_high"][i] = confidence_interval(samples[i],
                                                                                    ci_level)
        if n_permutations:
            per_method["p"][i] = permutation_p_value(value, nulls[i])
            per_method["q"][i] = fdr_bh(per_method["p"][i])
        if reference_folds is not None:
            ceiling[i] = noise_ceiling(reference_folds, method)
            per_method["value_fold_mean"][i] = _compare_rows(
                _upper(reference_folds), _upper(stack), method).mean(axis=0)

    rows = []
    for i, method in enumerate(methods):
        for j, name in enumerate(names):
            rows.append({
                "reference": reference_name,
                "candidate": name,
                "comparator": method,
                "value": per_method["value"][i, j],
                "ci_low": per_method["ci_low"][i, j],
                "ci_high": per_method["ci_high"][i, j],
                "p": per_method["p"][i, j],
                "q": per_method["q"][i, j],
                "noise_ceiling_lower": ceiling[i, 0],
                "noise_ceiling_upper": ceiling[i, 1],
                "value_fold_mean": per_method["value_fold_mean"][i, j],
                "n_conditions": n,
                "n_bootstrap": n_bootstrap,
                "n_permutations": n_permutations,
                "seed": seed,
                "ci_level": ci_level,
            })
    table = pd.DataFrame(rows)

    comparator_candidate = ("comparator", "candidate")
    dataset = xr.Dataset(
        {
            **{key: (comparator_candidate, values) for key, values in per_method.items()},
            "noise_ceiling_lower": ("comparator", ceiling[:, 0]),
            "noise_ceiling_upper": ("comparator", ceiling[:, 1]),
            "bootstrap": (("comparator", "sample", "candidate"), samples),
            "null": (("comparator", "permutation", "candidate"), nulls),
            "bootstrap_index": (("sample", "draw"), indices.astype(np.int32)),
            "permutation_index": (("permutation", "condition"), permutations.astype(np.int32)),
        },
        coords={
            "comparator": list(methods),
            "candidate": names,
            "sample": np.arange(n_bootstrap),
            "permutation": np.arange(n_permutations),
            "draw": np.arange(n),
            "condition": np.arange(n),
        },
        attrs={
            "reference": reference_name,
            "seed": int(seed),
            "n_bootstrap": int(n_bootstrap),
            "n_permutations": int(n_permutations),
            "n_conditions": int(n),
            "ci_level": float(ci_level),
            "ci": "percentile interval of the bootstrap over conditions",
            "bootstrap": "conditions drawn with replacement (bootstrap_index); self-pairs "
                         "dropped, as rsatoolbox's eval_bootstrap_pattern",
            "p": "one-sided permutation test: (1 + #{null >= value}) / (1 + n_permutations); "
                 "reference conditions relabelled by permutation_index",
            "q": "Benjamini-Hochberg across candidates within a comparator",
            "noise_ceiling": "rsatoolbox boot_noise_ceiling over the reference's folds "
                             "(leave one fold out)",
            "random_draws": "numpy SeedSequence(seed).spawn(2): bootstrap, permutations",
        },
    )
    return table, dataset


def network_candidates(network_rdms: Mapping[str, xr.Dataset]) -> dict[str, np.ndarray]:
    """Candidate RDMs named ``{network}/seed{seed}/{layer}`` from the RDM files of networks.

    network_rdms: ``{"{network}/seed{seed}": rdms/{network}/seed{seed}.nc}``, each with
    ``rdm(layer, condition, condition_)``.
    """
    candidates = {}
    for name, rdms in network_rdms.items():
        for layer in rdms["layer"].values:
            candidates[f"{name}/{layer}"] = rdms["rdm"].sel(layer=layer).values
    return candidates


def cka_table(v1_response, network_activations: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Linear CKA between V1 and each recorded layer: one row per candidate.

    v1_response: (n_conditions, n_neurons) trial averages of the same conditions the networks
    saw; network_activations: ``{"{network}/seed{seed}": activations/{network}/seed{seed}.nc}``.
    """
    v1_gram = _centred_gram(_check_activations(v1_response, "v1_response"))
    rows = []
    for name, activations in network_activations.items():
        for layer in activations.data_vars:
            layer_gram = _centred_gram(_check_activations(activations[layer].values, layer))
            if layer_gram.shape != v1_gram.shape:
                raise ValueError(f"{name}/{layer} has {layer_gram.shape[0]} conditions but V1 has "
                                 f"{v1_gram.shape[0]}")
            rows.append({"reference": "V1", "candidate": f"{name}/{layer}", "comparator": "cka",
                         "value": _cka_from_grams(v1_gram, layer_gram)})
    return pd.DataFrame(rows)


def split_candidate_names(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``network``, ``network_seed`` and ``layer`` columns from the candidate names
    ``{network}/seed{seed}/{layer}``."""
    parts = table["candidate"].str.split("/", expand=True)
    return table.assign(network=parts[0],
                        network_seed=parts[1].str.removeprefix("seed").astype(int),
                        layer=parts[2])
