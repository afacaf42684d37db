"""Bootstrap over conditions: the comparison of every candidate on resampled conditions.

Exactly rsatoolbox's ``bootstrap_sample_pattern`` + ``eval_bootstrap_pattern``: draw n
conditions with replacement; both RDMs are subsampled with the drawn conditions (repeats
included) and the pairs of a condition with itself are dropped. Such a sample is a multiset, so
pair (i, j) enters with weight ``c_i · c_j`` (``c`` = how often each condition was drawn).

- Pearson and cosine become weighted sums: with W the (samples × pairs) matrix of pair weights
  and Y the candidates' upper triangles, Σ w y, Σ w y² and Σ w x y are the matrix products
  W Yᵀ, W (Y²)ᵀ and (W ∘ x) Yᵀ: the cost grows like a matrix product over candidates.
- Spearman ranks under weights come from one sort of each vector and prefix sums of the integer
  weights, in exact integer arithmetic (ties share the mean of their weighted rank span, which
  is what scipy's ``rankdata(method='average')`` gives the repeated entries): per sample, one
  pass along each reference's sorted order, then one along each candidate's, which serves every
  reference at once.
- Kendall's τa counts weighted concordant minus discordant pairs, also exactly.

Samples with fewer than 3 distinct conditions are NaN, as in rsatoolbox. Several references
(V1's RDM and its fold RDMs, or several recordings) are compared with the same candidates on
the same draws in one call.

The work is split into fixed blocks of samples (matrix products on worker threads, BLAS held to
one thread each) or compiled loops over samples (numba, ``v1rsa._kernels``), each sample
computed by one thread in a fixed order, so results do not depend on the thread count.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from v1rsa.rsa._arrays import (
    MAX_CONDITIONS_FLOAT64_RANKS,
    MAX_CONDITIONS_INT64_RANKS,
    MIN_CONDITIONS,
    _check_candidates,
    _check_method,
    _check_rdm,
    _condition_dtype,
    _tie_group_starts,
    _upper,
)

# Bootstrap samples per block of the weighted sums (Pearson, cosine): the block's pair weights
# (and their products with each reference) are the left operand of one matrix product.
_SAMPLES_PER_BLOCK = 32
# Candidates prepared at a time for the Spearman kernel (their sorted orders: 8 bytes a pair).
_SPEARMAN_CANDIDATES_PER_CALL = 128


def draw_bootstrap_indices(n_conditions: int, n_bootstrap: int, rng) -> np.ndarray:
    """Conditions drawn with replacement: (n_bootstrap, n_conditions) int64 in [0, n)."""
    return np.random.default_rng(rng).integers(0, n_conditions, size=(n_bootstrap, n_conditions))


def _weighted_linear(xs, ys, counts, method, n_threads):
    """Pearson or cosine of bootstrap samples as weighted sums, through matrix products.

    xs: (R, m) references, ys: (K, m) candidates (upper triangles); counts: (B, n). Returns
    (B, R, K). A sample weighs pair (i, j) by w = c_i c_j; per block of samples, the weights
    W (b, m) and W ∘ x_r give Σ w y and Σ w x_r y in one product with Yᵀ, and Σ w y² in one
    with (Y²)ᵀ.
    """
    n = counts.shape[1]
    rows, cols = np.triu_indices(n, 1)
    if method == "pearson":
        # Centring by the unweighted mean (which Pearson ignores) keeps the sums small.
        xs = xs - xs.mean(axis=1, keepdims=True)
        ys = ys - ys.mean(axis=1, keepdims=True)
    n_references, m = xs.shape
    ys_squared = ys * ys
    references = np.concatenate([xs, xs * xs])  # (2R, m)
    counts = counts.astype(np.float64)
    out = np.empty((len(counts), n_references, len(ys)))

    def block(start, stop):
        c = counts[start:stop]
        b = len(c)
        left = _workspace("left", ((1 + n_references) * b, m))
        weights = left[:b]
        # (b, m); np.take gathers along a row much faster than c[:, rows]
        np.multiply(np.take(c, rows, axis=1), np.take(c, cols, axis=1), out=weights)
        for r in range(n_references):
            np.multiply(weights, xs[r], out=left[(1 + r) * b:(2 + r) * b])
        sums = left @ ys.T  # ((1 + R) b, K)
        sy, sxy = sums[:b], sums[b:].reshape(n_references, b, -1).transpose(1, 0, 2)
        syy = weights @ ys_squared.T  # (b, K)
        reference_sums = weights @ references.T  # (b, 2R)
        sx = reference_sums[:, :n_references, None]
        sxx = reference_sums[:, n_references:, None]
        sy, syy = sy[:, None, :], syy[:, None, :]
        # Samples of one condition have no pairs (weight 0): NaN here, marked later.
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "pearson":
                weight = ((n * n - np.sum(c * c, axis=1)) / 2)[:, None, None]
                mean_x, mean_y = sx / weight, sy / weight
                var_x, var_y = sxx / weight - mean_x**2, syy / weight - mean_y**2
                cov = sxy / weight - mean_x * mean_y
                # A variance at rounding level of the raw second moment is a constant sample.
                zero = (var_x <= 1e-13 * sxx / weight) | (var_y <= 1e-13 * syy / weight)
            else:
                var_x, var_y, cov = sxx, syy, sxy
                zero = (var_x <= 0) | (var_y <= 0)
            value = cov / np.sqrt(var_x * var_y)
        out[start:stop] = np.where(zero, 0.0, value)

    _run_blocks(block, len(counts), n_threads, _SAMPLES_PER_BLOCK)
    return out


_thread_buffers = threading.local()


def _workspace(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` owned by the calling thread and reused across calls (its
    contents are garbage): blocks of tens of MB, allocated afresh each time, cost more in page
    faults than the arithmetic on them."""
    buffers = getattr(_thread_buffers, "buffers", None)
    if buffers is None:
        buffers = _thread_buffers.buffers = {}
    size = int(np.prod(shape))
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = buffers[name] = np.empty(size)
    return buffer[:size].reshape(shape)


def _sorted_orders(vectors, n, *, conditions=True):
    """Each vector's sorted order as the two conditions (with ``conditions``) and the pair index
    at each position, the starts of its tie groups (concatenated, with offsets) and whether it
    has ties."""
    m = vectors.shape[1]
    orders = np.argsort(vectors, axis=1)
    starts = [_tie_group_starts(v[order]) for v, order in zip(vectors, orders, strict=True)]
    sorted_orders = (orders.astype(np.uint32), np.concatenate(starts),
                     np.cumsum([0] + [s.size for s in starts]).astype(np.int64),
                     np.array([s.size <= m for s in starts]))  # fewer groups than pairs: ties
    if not conditions:
        return sorted_orders
    rows, cols = np.triu_indices(n, 1)
    condition = _condition_dtype(n)
    return (rows[orders].astype(condition), cols[orders].astype(condition), *sorted_orders)


def _weighted_spearman(xs, ys, counts, n_threads):
    """Spearman's rho of bootstrap samples from weighted ranks, in exact integer arithmetic.

    xs: (R, m) references, ys: (K, m) candidates (upper triangles); counts: (B, n) int.
    Returns (B, R, K) float64. Each vector is sorted once, here (candidates a few at a time, to
    bound the memory of their orders); the kernel (``_kernels.weighted_spearman``, up to three
    references at a time) walks each sorted order summing the weights of four samples at once:
    doubled average ranks (ties share their weighted span), and Σ w (2r_x)(2r_y), W and
    Σ_groups T³, all exact integers, give rho. The sums Σ w (2r_x)(2r_y) are integers below
    2**53 up to 512 conditions and are summed in float64 (exactly, and faster than in int64);
    in int64 beyond (see ``MAX_CONDITIONS_FLOAT64_RANKS``).
    """
    from v1rsa import _kernels  # numba: imported on first use, so that `import v1rsa.rsa` is light

    n = counts.shape[1]
    counts = np.ascontiguousarray(
        counts, dtype=np.int64 if n <= MAX_CONDITIONS_INT64_RANKS else np.float64)
    # the sums of w R_x R_y: exact in float64 (the fastest) below 2**53, else in int64
    product_type = np.empty(0, dtype=np.int64 if MAX_CONDITIONS_FLOAT64_RANKS < n
                            <= MAX_CONDITIONS_INT64_RANKS else np.float64)
    condition = _condition_dtype(n)
    rows, cols = (index.astype(condition) for index in np.triu_indices(n, 1))
    # the references three at a time, each three sorted once
    references = [(first, min(first + 3, len(xs)), _sorted_orders(xs[first:first + 3], n))
                  for first in range(0, len(xs), 3)]
    out = np.empty((len(counts), len(xs), len(ys)))
    with _kernels.threads(n_threads):
        for start in range(0, len(ys), _SPEARMAN_CANDIDATES_PER_CALL):
            stop = min(start + _SPEARMAN_CANDIDATES_PER_CALL, len(ys))
            candidates = _sorted_orders(ys[start:stop], n, conditions=False)
            for first, last, orders in references:
                part = np.empty((len(counts), last - first, stop - start))
                _kernels.weighted_spearman(counts, product_type, rows, cols, *orders, *candidates,
                                           part)
                out[:, first:last, start:stop] = part
    return out


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


def _run_blocks(function, n_items: int, n_threads: int, block: int) -> None:
    """Call ``function(start, stop)`` over blocks of items, on ``n_threads`` threads.

    Each block writes its own slice of the output, so the result does not depend on n_threads.
    BLAS is held to one thread per worker: its own threads would fight ours (and other users
    of a shared machine) over the many small products here.
    """
    spans = [(start, min(start + block, n_items)) for start in range(0, n_items, block)]
    with _blas_controller().limit(limits=1, user_api="blas"):
        if n_threads <= 1 or len(spans) == 1:
            try:
                for span in spans:
                    function(*span)
            finally:
                _thread_buffers.__dict__.clear()  # the workers' go with their threads
            return
        with ThreadPoolExecutor(n_threads) as pool:
            for future in [pool.submit(function, *span) for span in spans]:
                future.result()


_controller: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS, found once (a scan of the loaded libraries
    costs a few ms, more than a small bootstrap)."""
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0]


def compare_resampled(reference, candidates, method: str, indices, *, n_threads: int = 1):
    """Comparisons on bootstrap samples of conditions given the drawn ``indices``.

    reference: (n, n), or (R, n, n) several references compared with the same candidates on the
    same draws; candidates: (k, n, n); indices: (n_bootstrap, n) int conditions drawn with
    replacement. Returns (n_bootstrap, k) float64, or (n_bootstrap, R, k) for several
    references: for each sample, the comparison of the subsampled RDMs without self-pairs
    (rsatoolbox's ``eval_bootstrap_pattern``); NaN where a sample has fewer than 3 distinct
    conditions. n_threads: worker threads.
    """
    method = _check_method(method)
    references = np.asarray(reference, dtype=np.float64)
    single = references.ndim == 2
    if single:
        references = references[None]
    if references.ndim != 3 or references.shape[0] < 1:
        raise ValueError(f"reference: expected an (n, n) RDM or (R, n, n) RDMs, got shape "
                         f"{references.shape}")
    for i, rdm in enumerate(references):
        _check_rdm(rdm, "reference" if single else f"reference[{i}]")
    n = references.shape[1]
    candidates = _check_candidates(candidates, n)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != n or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices: expected integer draws of shape (n_bootstrap, {n}), got "
                         f"{indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices: conditions must lie in [0, {n})")
    xs, ys = _upper(references), _upper(candidates)
    offsets = n * np.arange(len(indices))[:, None]
    counts = np.bincount((indices + offsets).ravel(), minlength=len(indices) * n)
    counts = counts.reshape(len(indices), n)

    if not len(ys) or not len(indices):
        samples = np.empty((len(indices), len(xs), len(ys)))
    elif method == "spearman":
        samples = _weighted_spearman(xs, ys, counts, n_threads)
    elif method == "kendall_tau_a":
        samples = np.stack([_weighted_tau_a(x, ys, counts, n_threads) for x in xs], axis=1)
    else:
        samples = _weighted_linear(xs, ys, counts, method, n_threads)
    samples[np.count_nonzero(counts, axis=1) < MIN_CONDITIONS] = np.nan
    return samples[:, 0] if single else samples


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
