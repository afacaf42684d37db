"""Bootstrap over conditions: the comparison of every candidate on resampled conditions.

Exactly rsatoolbox's ``bootstrap_sample_pattern`` + ``eval_bootstrap_pattern``: draw n
conditions with replacement; both RDMs are subsampled with the drawn conditions (repeats
included) and the pairs of a condition with itself are dropped. Such a sample is a multiset, so
pair (i, j) enters with weight ``c_i · c_j`` (``c`` = how often each condition was drawn).
Pearson and cosine become weighted sums, all samples at once as matrix products; Spearman ranks
under weights come from one sort of each vector and prefix sums of the integer weights, in exact
integer arithmetic (ties share the mean of their weighted rank span, which is what scipy's
``rankdata(method='average')`` gives the repeated entries); Kendall's τa counts weighted
concordant minus discordant pairs, also exactly. Samples with fewer than 3 distinct conditions
are NaN, as in rsatoolbox.

The loops over samples are compiled (numba, ``v1rsa._kernels``) and shared by ``n_threads``
threads; each sample is computed by one thread in a fixed order, so results do not depend on
the thread count.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from v1rsa.rsa._arrays import (
    MAX_CONDITIONS_INT64_RANKS,
    MIN_CONDITIONS,
    _check_candidates,
    _check_method,
    _check_rdm,
    _condition_dtype,
    _n_from_pairs,
    _symmetric,
    _tie_group_starts,
    _upper,
)

# Bootstrap samples per block of work (Pearson and cosine: matrix products on worker threads).
_BLOCK = 64


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
    dtype = np.int64 if n <= MAX_CONDITIONS_INT64_RANKS else np.float64
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
    samples[np.count_nonzero(counts, axis=1) < MIN_CONDITIONS] = np.nan
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
