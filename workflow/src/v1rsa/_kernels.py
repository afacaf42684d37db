"""Compiled kernels (numba) of :mod:`v1rsa.rsa` — the relabelled reference vectors of the
permutation null, the Spearman and Kendall τa bootstraps over conditions, the Kendall τa
permutation null — and of :mod:`v1rsa.encoding`, the encoding model's read-out step.

The kernels take prepared arrays (sorted orders, rank scores) and fill preallocated outputs;
the checks, the preparation and the meaning live in the modules that call them. Loops over
permutations or bootstrap samples run in parallel (``numba.prange``) under
:func:`threads`; each is computed by one thread in a fixed order, so results do not depend on the
thread count.

Compiled on first use and cached on disk (``cache=True``: in ``__pycache__`` beside this file, or
in the user's cache directory where that is not writable); where numba finds no writable cache
directory at all, the kernels are compiled in every process instead, with a warning.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import numba
import numba.extending
import numpy as np
from llvmlite import ir as llvm_ir

# numba's OpenMP threading layer (its default where OpenMP is found) shares the process's OpenMP
# runtime with torch: launching it sets the runtime's thread count to numba's pool (all cores),
# and from then on torch runs every operation on all cores, whatever OMP_NUM_THREADS (a
# Snakemake job's threads) said. Beside another job that costs a wait for a core at each of
# torch's parallel regions: the encoding model ran 5 times slower. The workqueue layer has
# threads of its own. A layer chosen in the environment (NUMBA_THREADING_LAYER) is kept.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

_cache_on_disk = True  # until numba says it has nowhere to write the cache


def _compiled(**options):
    """``numba.njit(cache=True, **options)``; without the disk cache where numba has nowhere to
    write it (it raises then, at decoration: warned once)."""

    def decorate(function):
        global _cache_on_disk
        if _cache_on_disk:
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError as error:  # "cannot cache function …: no locator available …"
                _cache_on_disk = False
                warnings.warn(f"v1rsa: numba has no writable cache directory ({error}); v1rsa's "
                              "kernels are compiled again in every process (set NUMBA_CACHE_DIR "
                              "to a writable directory to keep them)", RuntimeWarning,
                              stacklevel=2)
        return numba.njit(**options)(function)

    return decorate


@contextlib.contextmanager
def threads(n_threads: int):
    """Run the parallel kernels on ``n_threads`` threads (at most numba's pool, at least 1) inside
    the ``with`` block; the previous count is restored after it."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------
# Permutation null: the relabelled reference vectors, for a matrix product with the candidates


@_compiled(nogil=True)
def permuted_upper(matrix, permutations, out):
    """out[p] = the strict upper triangle of matrix[π][:, π] for π = permutations[p], in
    ``np.triu_indices`` order: row i of the relabelled triangle is row π_i of matrix (in L1)
    read at columns π_{i+1} … π_{n−1}.

    matrix: (n, n) symmetric; permutations: (P, n) unsigned ints; out: (P, n(n−1)/2) of
    matrix's dtype. Runs in the calling thread without holding the GIL (the callers' worker
    threads each fill their own block).
    """
    n_permutations, n = permutations.shape
    for p in range(n_permutations):
        permutation = permutations[p]
        row_out = out[p]
        position = 0
        for i in range(n - 1):
            row = matrix[permutation[i]]
            for t in range(i + 1, n):
                row_out[position] = row[permutation[t]]
                position += 1


# ----------------------------------------------------------------------------------------------
# Spearman bootstrap: weighted average ranks from prefix sums of integer weights


@numba.extending.intrinsic
def _prefetch(typingctx, array, index):
    """Ask the CPU to start loading the cache line of ``array[index]`` (a hint, for a read about
    to come: it changes no result). The candidates' walks read their table in the order of each
    candidate's ranks, one record far from the last, and wait for each; asked for a dozen
    records ahead, the loads overlap."""
    if not isinstance(array, numba.types.Array) or not isinstance(index, numba.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_pointer = llvm_ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(data, [args[1]]), byte_pointer)
        i32 = llvm_ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(  # named for the pointer type by llvmlite
            "llvm.prefetch", [byte_pointer],
            llvm_ir.FunctionType(llvm_ir.VoidType(), [byte_pointer, i32, i32, i32]))
        builder.call(prefetch, [address, i32(0), i32(3), i32(1)])  # a read, kept close, data
        return context.get_dummy_value()

    return numba.types.void(array, index), codegen


# A pair's record in a block's table: four bootstrap samples side by side — each one's weight
# w = c_i c_j, then for each of the three references the four samples' w R_x (R_x: the
# reference's doubled rank − 1 of the pair) — 16 numbers of 8 bytes, so that a candidate's walk
# reads one record per pair for four samples. The weights are integers (``counts``' type); the
# products are of the caller's exact type. Table indices are unsigned (numba then checks no
# negative index).
_SAMPLES_PER_BLOCK = 4
_RECORD = 16
_U_RECORD = np.uint64(_RECORD)
_U1, _U2, _U3 = np.uint64(1), np.uint64(2), np.uint64(3)
_U4, _U8, _U12 = np.uint64(4), np.uint64(8), np.uint64(12)
# how many pairs ahead a walk asks for its records (about a cache miss's worth of its steps)
_AHEAD = 12


@_compiled()
def _reference_products(c, first, second, pair, group_starts, tied, table, slot):
    """A reference's pass along its sorted order, for one bootstrap sample: writes w R_x of every
    pair at table[pair · _RECORD + slot] (R_x its doubled average rank − 1: a tie group's is
    2·(weight before it) + (its weight); w = c_first · c_second), and returns Σ over tie groups
    of the group weight cubed (0 where untied: the caller knows it from the counts)."""
    cubes = c[0] * 0
    before = c[0] * 0
    if not tied:
        for s in range(first.size):
            w = c[first[s]] * c[second[s]]
            table[np.uint64(pair[s]) * _U_RECORD + slot] = w * (2 * before + w)
            before += w
        return cubes
    for g in range(group_starts.size - 1):
        start, stop = group_starts[g], group_starts[g + 1]
        group_weight = c[0] * 0
        for s in range(start, stop):
            group_weight += c[first[s]] * c[second[s]]
        rank = 2 * before + group_weight
        before += group_weight
        cubes += group_weight * group_weight * group_weight
        for s in range(start, stop):
            table[np.uint64(pair[s]) * _U_RECORD + slot] = c[first[s]] * c[second[s]] * rank
    return cubes


@_compiled(fastmath={"contract"})
def _add(products, at, y, x0, x1, x2):
    """w R_x R_y of one pair in one sample (``at``: its weight), added for the three references."""
    return (x0 + products[at + _U4] * y, x1 + products[at + _U8] * y,
            x2 + products[at + _U12] * y)


@_compiled(fastmath={"contract"})
def _step(weights, products, at, zero, doubled_before, x0, x1, x2):
    """One pair of an untied candidate's walk in one sample (``at``: the sample's weight in the
    table): its doubled rank − 1 R_y from the doubled weight before it, and w R_x R_y added for
    the three references. Returns the doubled weight before the next pair and the three sums."""
    w = weights[at]
    rank = doubled_before + w
    return (rank + w,) + _add(products, at, zero + rank, x0, x1, x2)  # R_y in the products' type


@_compiled(fastmath={"contract"})
def _cross_untied(weights, products, pair, cross):
    """An untied candidate's walk along its sorted order, four samples at once: cross (12,) =
    Σ w R_x R_y of sample s and reference r at 3s + r. weights, products: the table, seen as
    the weights' and the products' types."""
    zero = products[0] * 0
    d0 = d1 = d2 = d3 = weights[0] * 0
    x00 = x01 = x02 = x10 = x11 = x12 = x20 = x21 = x22 = x30 = x31 = x32 = zero
    last = pair.size - 1
    for s in range(pair.size):
        ahead = np.uint64(pair[min(s + _AHEAD, last)]) * _U_RECORD
        _prefetch(weights, ahead)  # the record's two cache lines
        _prefetch(weights, ahead + _U8)
        at = np.uint64(pair[s]) * _U_RECORD
        d0, x00, x01, x02 = _step(weights, products, at, zero, d0, x00, x01, x02)
        d1, x10, x11, x12 = _step(weights, products, at + _U1, zero, d1, x10, x11, x12)
        d2, x20, x21, x22 = _step(weights, products, at + _U2, zero, d2, x20, x21, x22)
        d3, x30, x31, x32 = _step(weights, products, at + _U3, zero, d3, x30, x31, x32)
    cross[0], cross[1], cross[2] = x00, x01, x02
    cross[3], cross[4], cross[5] = x10, x11, x12
    cross[6], cross[7], cross[8] = x20, x21, x22
    cross[9], cross[10], cross[11] = x30, x31, x32


@_compiled()
def _close(doubled_before, group_weight, cubes):
    """A tie group's end in one sample: its shared doubled rank − 1, the doubled weight before the
    next group, and Σ T³ with its weight added."""
    rank = doubled_before + group_weight
    return rank, rank + group_weight, cubes + group_weight * group_weight * group_weight


@_compiled(fastmath={"contract"})
def _cross_tied(weights, products, pair, group_starts, cross, cubes):
    """A tied candidate's walk, tie group by tie group, four samples at once: each group's weight
    first, which gives its members' shared rank, then w R_x R_y of its members (their records
    read again, now close). cross as in :func:`_cross_untied`, cubes (4,) = Σ over its tie
    groups of the group weight cubed."""
    zero = products[0] * 0
    d0 = d1 = d2 = d3 = t0 = t1 = t2 = t3 = weights[0] * 0
    x00 = x01 = x02 = x10 = x11 = x12 = x20 = x21 = x22 = x30 = x31 = x32 = zero
    last = pair.size - 1
    for g in range(group_starts.size - 1):
        start, stop = group_starts[g], group_starts[g + 1]
        w0 = w1 = w2 = w3 = weights[0] * 0
        for s in range(start, stop):
            ahead = np.uint64(pair[min(s + _AHEAD, last)]) * _U_RECORD
            _prefetch(weights, ahead)  # the record's two cache lines
            _prefetch(weights, ahead + _U8)
            at = np.uint64(pair[s]) * _U_RECORD
            w0 += weights[at]
            w1 += weights[at + _U1]
            w2 += weights[at + _U2]
            w3 += weights[at + _U3]
        r0, d0, t0 = _close(d0, w0, t0)
        r1, d1, t1 = _close(d1, w1, t1)
        r2, d2, t2 = _close(d2, w2, t2)
        r3, d3, t3 = _close(d3, w3, t3)
        y0, y1, y2, y3 = zero + r0, zero + r1, zero + r2, zero + r3
        for s in range(start, stop):
            at = np.uint64(pair[s]) * _U_RECORD
            x00, x01, x02 = _add(products, at, y0, x00, x01, x02)
            x10, x11, x12 = _add(products, at + _U1, y1, x10, x11, x12)
            x20, x21, x22 = _add(products, at + _U2, y2, x20, x21, x22)
            x30, x31, x32 = _add(products, at + _U3, y3, x30, x31, x32)
    cross[0], cross[1], cross[2] = x00, x01, x02
    cross[3], cross[4], cross[5] = x10, x11, x12
    cross[6], cross[7], cross[8] = x20, x21, x22
    cross[9], cross[10], cross[11] = x30, x31, x32
    cubes[0], cubes[1], cubes[2], cubes[3] = t0, t1, t2, t3


@_compiled(parallel=True)
def weighted_spearman(counts, product_type, rows, cols, ref_first, ref_second, ref_pair,
                      ref_starts, ref_offsets, ref_tied, pair, starts, offsets, tied, out):
    """Spearman's rho of each bootstrap sample (pair (i, j) weighs c_i c_j) between each of up
    to three references and each candidate.

    counts: (B, n) int64 (exact) or float64; product_type: an empty array of the 8-byte type
    whose sums of w R_x R_y are exact (float64 below 2**53: up to 512 conditions; int64 up to
    1625; else float64, rounding); rows, cols: the conditions of each pair index. For the R ≤ 3
    references, each one's sorted order as the two conditions (``ref_first``, ``ref_second``:
    (R, m)) and the pair index (``ref_pair``) at each position;
    ``ref_starts[ref_offsets[r]:ref_offsets[r + 1]]`` the starts of reference r's tie groups and
    m; ``ref_tied``: whether it has ties. The same for the K candidates without the conditions
    (``pair``: (K, m), ``starts``, ``offsets``, ``tied``). out: (B, R, K).

    The samples go four at a time. For a block, each reference's pass along its sorted order
    leaves w R_x (R_x: its doubled ranks − 1) in a table by pair index, beside each pair's
    weight, the four samples of a pair in one record; each candidate's pass along its own order
    then sums w R_x R_y (R_y its own doubled rank − 1) of the four samples and three references
    from one record per pair, so that its sorted order is read once per four samples. With
    W = Σ w and W³ = 4 (Σ w R/2)² / W: rho = (Σ w R_x R_y − W³) / 4 / sqrt(S_x S_y),
    S = (W³ − Σ_groups T³) / 12 = Σ w (r − r̄)².
    """
    n_samples, n = counts.shape
    n_references, m = ref_first.shape
    k = pair.shape[0]
    for block in numba.prange((n_samples + _SAMPLES_PER_BLOCK - 1) // _SAMPLES_PER_BLOCK):
        table = np.zeros(m * _RECORD, product_type.dtype)
        weights = table.view(counts.dtype)
        w3 = np.empty(_SAMPLES_PER_BLOCK, counts.dtype)
        untied_cubes = np.empty(_SAMPLES_PER_BLOCK, counts.dtype)
        spread_x = np.zeros((_SAMPLES_PER_BLOCK, 3))
        for slot in range(_SAMPLES_PER_BLOCK):
            # a short last block repeats its last sample, whose copies are not written out
            c = counts[min(block * _SAMPLES_PER_BLOCK + slot, n_samples - 1)]
            # W = Σ_{i<j} c_i c_j and Σ_{i<j} (c_i c_j)³ (the Σ T³ of untied vectors)
            sum_squares = c[0] * 0
            cubes = c[0] * 0
            later_cubes = c[0] * 0
            for i in range(n - 1, -1, -1):
                sum_squares += c[i] * c[i]
                cube = c[i] * c[i] * c[i]
                cubes += cube * later_cubes
                later_cubes += cube
            untied_cubes[slot] = cubes
            total_weight = (n * n - sum_squares) // 2
            w3[slot] = total_weight * total_weight * total_weight
            for p in range(m):
                weights[p * _RECORD + slot] = c[rows[p]] * c[cols[p]]
            for r in range(n_references):
                cubes = _reference_products(c, ref_first[r], ref_second[r], ref_pair[r],
                                            ref_starts[ref_offsets[r]:ref_offsets[r + 1]],
                                            ref_tied[r], table,
                                            np.uint64(_SAMPLES_PER_BLOCK * (r + 1) + slot))
                spread_x[slot, r] = (w3[slot] - (cubes if ref_tied[r] else untied_cubes[slot])
                                     ) / 12
        cross = np.zeros(3 * _SAMPLES_PER_BLOCK, product_type.dtype)
        tie_cubes = np.zeros(_SAMPLES_PER_BLOCK, counts.dtype)
        for j in range(k):
            if tied[j]:
                _cross_tied(weights, table, pair[j], starts[offsets[j]:offsets[j + 1]], cross,
                            tie_cubes)
            else:
                _cross_untied(weights, table, pair[j], cross)
            for slot in range(_SAMPLES_PER_BLOCK):
                b = block * _SAMPLES_PER_BLOCK + slot
                if b >= n_samples:
                    break
                spread_y = (w3[slot] - (tie_cubes[slot] if tied[j] else untied_cubes[slot])) / 12
                for r in range(n_references):
                    if spread_x[slot, r] > 0 and spread_y > 0:
                        out[b, r, j] = ((cross[3 * slot + r] - w3[slot]) / 4
                                        / np.sqrt(spread_x[slot, r] * spread_y))
                    else:
                        out[b, r, j] = 0.0


# ----------------------------------------------------------------------------------------------
# Kendall's τa: concordant minus discordant pairs, counted along x with a Fenwick tree over y


@_compiled()
def _tau_a_numerator(keys, weights, x_starts, tree, at_key):
    """(Σ over pairs of entries of sign(Δx) · sign(Δy), the number of entries W).

    Entries in ascending order of x: keys (m,) are y's dense ranks 0 … K − 1; weights (m,) how
    often each entry repeats; x_starts: the starts of the runs of equal x, then m. Walking along
    x, an entry meets every earlier one of smaller x: those of smaller y are concordant, those of
    larger y discordant, equal ones neither. A tie group in x is first compared with what came
    before and only then inserted, so its members are not compared with each other. tree:
    (K + 1,) Fenwick tree of the inserted weights by key; at_key: (K,) the same weights plainly;
    both are overwritten. Exact in int64 (|result| ≤ W² / 2).
    """
    n_keys = at_key.size
    tree[:] = 0
    at_key[:] = 0
    zero = weights[0] * 0
    numerator = zero
    inserted = zero
    for g in range(x_starts.size - 1):
        start, stop = x_starts[g], x_starts[g + 1]
        for t in range(start, stop):
            key = keys[t]
            below = zero  # inserted weight with a smaller key: the Fenwick prefix sum up to key
            node = key
            while node > 0:
                below += tree[node]
                node -= node & -node
            above = inserted - below - at_key[key]
            numerator += weights[t] * (below - above)
        for t in range(start, stop):
            key = keys[t]
            node = key + 1
            while node <= n_keys:
                tree[node] += weights[t]
                node += node & -node
            at_key[key] += weights[t]
            inserted += weights[t]
    return numerator, inserted


@_compiled(parallel=True)
def weighted_tau_a(counts, first, second, keys, x_starts, n_keys, out):
    """Kendall's τa of each bootstrap sample (pair (i, j) repeated c_i c_j times) with each
    candidate: (C − D) / (W (W − 1) / 2) over the W entries of the sample, exact in int64.

    counts: (B, n) int64; first, second: (m,) the conditions of the pair at each position of
    the reference's sorted order; keys: (k, m) int32 each candidate's dense ranks in that order;
    x_starts: the starts of the reference's tie groups, then m; n_keys: (k,) distinct values of
    each candidate; out: (B, k) float64.
    """
    n_samples = counts.shape[0]
    k, m = keys.shape
    for b in numba.prange(n_samples):
        c = counts[b]
        weights = np.empty(m, counts.dtype)
        for t in range(m):
            weights[t] = c[first[t]] * c[second[t]]
        tree = np.empty(n_keys.max() + 1, counts.dtype)
        at_key = np.empty(n_keys.max(), counts.dtype)
        for j in range(k):
            numerator, total = _tau_a_numerator(keys[j], weights, x_starts,
                                                tree[:n_keys[j] + 1], at_key[:n_keys[j]])
            pairs = total * (total - 1) // 2
            out[b, j] = numerator / pairs if pairs > 0 else 0.0


@_compiled(parallel=True)
def permuted_tau_a(first, second, x_starts, key_matrices, n_keys, inverse_permutations, out):
    """Kendall's τa of the relabelled reference with each candidate, for every permutation.

    first, second: (m,) the conditions of the pair at each position of the reference's sorted
    order; x_starts: the starts of its tie groups, then m; key_matrices: (k, n, n) int32 each
    candidate's dense ranks as a symmetric matrix; n_keys: (k,); inverse_permutations: (P, n),
    π⁻¹ of each permutation π (the relabelled reference holds x[π_i, π_j] at (i, j), so the pair
    (a, b) at a sorted position of x lands at (π⁻¹a, π⁻¹b)); out: (P, k) float64.
    """
    n_permutations = inverse_permutations.shape[0]
    k = key_matrices.shape[0]
    m = first.size
    pairs = m * (m - 1) // 2
    for p in numba.prange(n_permutations):
        inverse = inverse_permutations[p]
        keys = np.empty(m, key_matrices.dtype)
        weights = np.ones(m, np.int64)
        tree = np.empty(n_keys.max() + 1, np.int64)
        at_key = np.empty(n_keys.max(), np.int64)
        for j in range(k):
            key_matrix = key_matrices[j]
            for t in range(m):
                keys[t] = key_matrix[inverse[first[t]], inverse[second[t]]]
            numerator, _ = _tau_a_numerator(keys, weights, x_starts, tree[:n_keys[j] + 1],
                                            at_key[:n_keys[j]])
            out[p, j] = numerator / pairs


# ----------------------------------------------------------------------------------------------
# The encoding model's read-out step


@_compiled(fastmath={"reassoc"})
def _sum_squares_and_absolutes(values):
    """(Σ v², Σ |v|) of a float64 vector, in the compiler's (vectorised) order of additions."""
    squares = 0.0
    absolutes = 0.0
    for value in values:
        squares += value * value
        absolutes += abs(value)
    return squares, absolutes


@_compiled(nogil=True)
def penalised_momentum_rows(weights, gradient, buffer, lr, momentum, l2, l1, first, squares,
                            absolutes):
    """One SGD-with-momentum step of each row of ``weights`` on ``gradient`` + 2·l2·w +
    l1·sign(w), in place (``buffer``: the momentum, overwritten when ``first``), with Σ w² and
    Σ |w| of each updated row (before rounding to ``weights``' dtype) in ``squares`` and
    ``absolutes``. The update is elementwise, so its loop vectorises and its values do not
    depend on the order; only the two sums are reassociated.

    Runs in the calling thread without holding the GIL: the encoding model calls it on a tile
    of rows from each of its threads (:class:`v1rsa.encoding._TiledReadOut`).
    """
    n_columns = weights.shape[1]
    updated = np.empty(n_columns)
    for row in range(weights.shape[0]):
        w_row, g_row, b_row = weights[row], gradient[row], buffer[row]
        if first:
            for column in range(n_columns):
                w = w_row[column]
                b = g_row[column] + 2.0 * l2 * w + l1 * np.sign(w)
                b_row[column] = b
                updated[column] = w - lr * b
                w_row[column] = updated[column]
        else:
            for column in range(n_columns):
                w = w_row[column]
                b = momentum * b_row[column] + (g_row[column] + 2.0 * l2 * w + l1 * np.sign(w))
                b_row[column] = b
                updated[column] = w - lr * b
                w_row[column] = updated[column]
        squares[row], absolutes[row] = _sum_squares_and_absolutes(updated)
