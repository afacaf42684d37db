"""RSA inference speed, side by side: v1rsa vs rsatoolbox, and v1rsa before/after its fast kernels.

Spearman, 360 conditions, 3 candidate RDMs, V1-like fold RDMs (see ``make_inputs``). Rows:

- comparison, stimulus bootstrap (1,000 samples) and noise ceiling: rsatoolbox 0.3.2
  (``rdm.compare``, ``eval_bootstrap_pattern`` with ``ModelFixed`` models and
  ``boot_noise_ceil=False``, ``boot_noise_ceiling``) vs v1rsa. rsatoolbox's bootstrap takes about
  a minute for 1,000 samples, so it runs ``--rsatoolbox-samples`` (default 50) and its time is
  scaled to ``--bootstrap``, as the notes say. On its own indices v1rsa must agree to 1e-10.
- permutation test (10,000 relabellings) and the full inference (``rsa_table``: bootstrap,
  permutations, noise ceiling; the goal is under 1 s on 2 cores), each on 1 and ``--threads``
  threads, "after" (v1rsa.rsa as it is) and "before" (the kernels v1rsa used until the speed-up,
  kept below as a reference implementation: scipy's ``rankdata``, the slotted float prefix sums of
  the weighted Spearman bootstrap, the permutation gather through flat pair indices). The notes
  check that before and after give the same p-values and the same samples and nulls (up to
  rounding).

    python bench/rsa.py [--conditions 360] [--candidates 3] [--rsatoolbox-samples 50]
                        [--bootstrap 1000] [--permutations 10000] [--folds 4] [--threads 2]
                        [--repeats 3] [--skip-rsatoolbox] [--skip-before]

Times are wall-clock seconds, the best of ``--repeats`` rounds (rsatoolbox: one round; before and
after alternate within a round, so both see the same machine), with the process CPU time of that
round beside them. On a shared machine the load average printed at the top and bottom says how
much the numbers may be inflated; CPU time is inflated less than wall time, but memory-bound code
slows down when other processes share the caches and memory bus.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time
import warnings

import numpy as np
import scipy.stats
from threadpoolctl import threadpool_limits

from v1rsa import rsa

METHOD = "spearman"


def correlation_rdm(patterns: np.ndarray) -> np.ndarray:
    rdm = 1 - np.corrcoef(patterns)
    rdm = (rdm + rdm.T) / 2
    np.fill_diagonal(rdm, 0)
    return rdm


def make_inputs(n_conditions: int, n_candidates: int, n_folds: int, seed: int = 0):
    """V1-like fold RDMs (orientation-tuned patterns + trial noise) and candidate layer RDMs."""
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 2 * np.pi, n_conditions, endpoint=False)
    tuning = np.column_stack([np.cos(angle), np.sin(angle), np.cos(2 * angle), np.sin(2 * angle)])
    truth = tuning @ rng.normal(size=(tuning.shape[1], 500))
    folds = np.stack([correlation_rdm(truth + 3 * rng.normal(size=truth.shape))
                      for _ in range(n_folds)])
    reference = folds.mean(axis=0)
    candidates = np.stack([
        correlation_rdm(tuning @ rng.normal(size=(tuning.shape[1], 200))
                        + (1 + j) * rng.normal(size=(n_conditions, 200)))
        for j in range(n_candidates)])
    return reference, folds, candidates


def timed(function, repeats: int):
    """(best wall seconds, CPU seconds of that round, result) over ``repeats`` rounds."""
    best = (np.inf, np.inf, None)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if wall < best[0]:
            best = (wall, cpu, result)
    return best


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------------------------
# Reference implementation: v1rsa.rsa's kernels before the speed-up, verbatim but for names.


class ReferenceSortedLayout:
    """The pairs of one vector sorted by value, stored for fast weighted ranks.

    Sequence position q (0 … size−1, the sorted order; positions ≥ m are padding with weight 0)
    lives at storage slot ``(q % n_rows) · n_cols + q // n_rows`` of an (n_rows, n_cols) array, so
    the prefix sum along the sequence is n_rows vectorised row additions plus one short cumsum.
    Ranks below are average ranks minus ½ (a shift that correlations ignore).
    """

    def __init__(self, values, n_conditions, n_rows):
        m = values.size
        self.n_rows, self.n_cols = n_rows, -(-m // n_rows)
        self.size = self.n_rows * self.n_cols
        order = np.argsort(values, kind="stable")
        seq = np.arange(self.size)
        slot = (seq % self.n_rows) * self.n_cols + seq // self.n_rows
        # The two conditions of the pair at each slot; padding slots name the extra condition
        # n_conditions, which is never drawn (count 0, so weight 0).
        rows, cols = np.triu_indices(n_conditions, 1)
        self.first = np.full(self.size, n_conditions, dtype=np.intp)
        self.second = np.full(self.size, n_conditions, dtype=np.intp)
        self.first[slot[:m]] = rows[order]
        self.second[slot[:m]] = cols[order]
        self.slot_of_pair = np.empty(m, dtype=np.intp)
        self.slot_of_pair[order] = slot[:m]
        ordered = values[order]
        new_group = np.r_[True, ordered[1:] != ordered[:-1]]
        self.has_ties = not new_group.all()
        if not self.has_ties:
            return
        # Tied values share the mean of their weighted rank span: (P[first − 1] + P[last]) / 2
        # (shifted by −½), P the inclusive prefix sum of the weights; slot `size` holds P[−1] = 0.
        starts = np.flatnonzero(new_group)
        lasts = np.r_[starts[1:], m] - 1
        group = np.cumsum(new_group) - 1
        self.group_before = np.where(starts > 0, slot[starts - 1], self.size)
        self.group_last = slot[lasts]
        self.before_of_slot = np.full(self.size, self.size, dtype=np.intp)
        self.last_of_slot = np.full(self.size, self.size, dtype=np.intp)
        self.before_of_slot[slot[:m]] = self.group_before[group]
        self.last_of_slot[slot[:m]] = self.group_last[group]

    def prefix_sums(self, counts, weights, prefix_ext, scratch):
        """Fill ``weights`` (size,) with c_i c_j in sorted order and ``prefix_ext[:size]`` with
        their inclusive prefix sum. counts: (n_conditions + 1,), the last one 0 (padding)."""
        np.take(counts, self.first, out=weights, mode="clip")
        np.take(counts, self.second, out=scratch, mode="clip")
        weights *= scratch
        prefix = prefix_ext[: self.size].reshape(self.n_rows, self.n_cols)
        w = weights.reshape(self.n_rows, self.n_cols)
        np.copyto(prefix[0], w[0])
        for row in range(1, self.n_rows):
            np.add(prefix[row - 1], w[row], out=prefix[row])
        column_totals = np.cumsum(prefix[-1])
        prefix[:, 1:] += column_totals[:-1]

    def ranks(self, weights, prefix_ext, ranks, scratch):
        """Fill ``ranks`` (size,) from the weights and prefix sums of :meth:`prefix_sums`."""
        if not self.has_ties:
            np.multiply(weights, -0.5, out=ranks)
            ranks += prefix_ext[: self.size]
            return
        np.take(prefix_ext, self.before_of_slot, out=ranks, mode="clip")
        np.take(prefix_ext, self.last_of_slot, out=scratch, mode="clip")
        ranks += scratch
        ranks *= 0.5

    def spread(self, total_weight, sum_cubed_weights, prefix_ext):
        """Σ w (r − r̄)² of the weighted ranks: (W³ − Σ_groups T³) / 12, T a tie group's weight.

        Exact: the ranks of W entries are 1…W with tie groups averaged, and averaging a group of
        T consecutive ranks removes (T³ − T)/12 from Σ r². Without ties, Σ T³ = Σ_pairs w³.
        """
        if self.has_ties:
            group_weight = prefix_ext[self.group_last] - prefix_ext[self.group_before]
            sum_cubed_weights = group_weight @ (group_weight * group_weight)
        return (total_weight**3 - sum_cubed_weights) / 12


def reference_weighted_spearman(x, ys):
    """Spearman's rho of bootstrap samples from weighted ranks.

    Returns a function of counts (b, n) float64 → (b, k); the sorting is done once, here.
    """
    n = rsa._n_from_pairs(x.size)
    # 16 rows of vectorised additions beat one long cumsum once vectors are long.
    n_rows = 16 if x.size >= 16 * 256 else 1
    layout_x = ReferenceSortedLayout(x, n, n_rows)
    layouts = [ReferenceSortedLayout(y, n, n_rows) for y in ys]
    # For each slot of x's layout, the slot of the same pair in y's layout.
    to_x = []
    for layout in layouts:
        index = np.zeros(layout_x.size, dtype=np.intp)
        index[layout_x.slot_of_pair] = layout.slot_of_pair
        to_x.append(index)
    size = layout_x.size

    def evaluate(counts):
        counts_ext = np.zeros(n + 1)
        wx, rx, wrx, wy, ry, ry_at_x, scratch = (np.empty(size) for _ in range(7))
        prefix_ext = np.zeros(size + 1)
        rho = np.empty((len(counts), len(layouts)))
        for b, c in enumerate(counts):
            counts_ext[:n] = c
            # W = Σ_{i<j} c_i c_j and Σ_{i<j} (c_i c_j)³, from the counts alone
            total_weight = (n * n - c @ c) / 2
            cubes = c * c * c
            sum_cubed_weights = (np.sum(cubes) ** 2 - cubes @ cubes) / 2
            centre = total_weight**3 / 4  # (Σ w r)² / W, as Σ w r = W² / 2 for shifted ranks
            layout_x.prefix_sums(counts_ext, wx, prefix_ext, scratch)
            layout_x.ranks(wx, prefix_ext, rx, scratch)
            spread_x = layout_x.spread(total_weight, sum_cubed_weights, prefix_ext)
            np.multiply(wx, rx, out=wrx)
            # A pair's weight is the same in every layout, so the −w/2 part of an untied
            # candidate's ranks contributes −½ Σ w·r_x·w to the cross product.
            half_wwr = (wrx @ wx) / 2
            for j, layout in enumerate(layouts):
                layout.prefix_sums(counts_ext, wy, prefix_ext, scratch)
                spread_y = layout.spread(total_weight, sum_cubed_weights, prefix_ext)
                if layout.has_ties:
                    layout.ranks(wy, prefix_ext, ry, scratch)
                    np.take(ry, to_x[j], out=ry_at_x, mode="clip")
                    cross = wrx @ ry_at_x
                else:
                    np.take(prefix_ext, to_x[j], out=ry_at_x, mode="clip")
                    cross = wrx @ ry_at_x - half_wwr
                if spread_x > 0 and spread_y > 0:
                    rho[b, j] = (cross - centre) / np.sqrt(spread_x * spread_y)
                else:
                    rho[b, j] = 0.0
        return rho

    return evaluate


def reference_permuted_products(matrix, permutations, directions, n_threads, block=16):
    """Σ_{i<j} matrix[π_i, π_j] · directions[:, pair(i, j)] for every permutation π.

    matrix: (n, n); permutations: (P, n); directions: (k, m). Returns (P, k): one gather of the
    permuted upper triangle per permutation, then one matrix product for all candidates.
    """
    n = matrix.shape[0]
    _, cols = np.triu_indices(n, 1)
    row_lengths = np.arange(n - 1, 0, -1)  # pairs (i, j > i) of each row i, in triu order
    flat_matrix = np.ascontiguousarray(matrix).reshape(-1)
    out = np.empty((len(permutations), len(directions)))

    def run(start, stop):
        gathered = np.empty((stop - start, cols.size))
        second = np.empty(cols.size, np.intp)
        for i, permutation in enumerate(permutations[start:stop]):
            # flat index of (π_i, π_j): π_i·n repeated along row i, plus π_j
            flat_index = np.repeat(permutation[:-1] * n, row_lengths)
            np.take(permutation, cols, out=second, mode="clip")
            flat_index += second
            np.take(flat_matrix, flat_index, out=gathered[i], mode="clip")
        out[start:stop] = gathered @ directions.T

    rsa._run_blocks(run, len(permutations), n_threads, block)
    return out


@contextlib.contextmanager
def reference_kernels():
    """Run v1rsa.rsa with the kernels it had before the speed-up."""
    saved = rsa._weighted_spearman, rsa._permuted_products, rsa._average_ranks
    rsa._weighted_spearman = reference_weighted_spearman
    rsa._permuted_products = reference_permuted_products
    rsa._average_ranks = lambda vectors: scipy.stats.rankdata(vectors, axis=1)
    try:
        yield
    finally:
        rsa._weighted_spearman, rsa._permuted_products, rsa._average_ranks = saved


# ----------------------------------------------------------------------------------------------
# rsatoolbox


def rsatoolbox_compare(reference, candidates):
    from rsatoolbox.rdm import RDMs, compare

    return np.array([compare(RDMs(c[None]), RDMs(reference[None]),
                             rsa.RSATOOLBOX_METHODS[METHOD])[0, 0] for c in candidates])


def rsatoolbox_bootstrap(reference, candidates, n_samples: int, seed: int):
    """rsatoolbox's pattern bootstrap; returns its evaluations and the indices it drew."""
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    models = [ModelFixed(f"candidate{j}", c) for j, c in enumerate(candidates)]
    n = reference.shape[0]
    np.random.seed(seed)  # noqa: NPY002 (rsatoolbox draws from numpy's global state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = eval_bootstrap_pattern(models, RDMs(reference[None]), method=METHOD,
                                        N=n_samples, boot_noise_ceil=False)
    np.random.seed(seed)  # noqa: NPY002 (replay its draws)
    indices = np.array([np.random.randint(0, n, size=n)  # noqa: NPY002
                        for _ in range(n_samples)])
    return result.evaluations, indices


def rsatoolbox_noise_ceiling(folds):
    from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    return boot_noise_ceiling(RDMs(folds), method=rsa.RSATOOLBOX_METHODS[METHOD])


# ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conditions", type=int, default=360)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--rsatoolbox-samples", type=int, default=50,
                        help="bootstrap samples rsatoolbox runs; its time is scaled to --bootstrap")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    parser.add_argument("--skip-before", action="store_true",
                        help="do not time the reference (before) kernels")
    args = parser.parse_args()

    import torch  # noqa: F401 (the Spearman bootstrap imports it on first use: ~1 s, once)

    reference, folds, candidates = make_inputs(args.conditions, args.candidates, args.folds)
    named = {f"candidate{j}": c for j, c in enumerate(candidates)}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load_average()} (1, 5, 15 min)")
    print(f"# {args.conditions} conditions, {args.candidates} candidate RDMs, {METHOD}, "
          f"{args.bootstrap} bootstrap samples, {args.permutations} permutations, "
          f"{args.folds} folds")
    rows = []  # (task, rsatoolbox seconds or None, v1rsa seconds, v1rsa CPU seconds)
    notes = []
    thread_counts = sorted({1, args.threads})

    def ratio_row(task, theirs, ours):
        rows.append((task, theirs, ours[0], ours[1]))

    # comparison
    ours = timed(lambda: rsa.compare_many(reference, candidates, METHOD), args.repeats)
    theirs = None
    if not args.skip_rsatoolbox:
        wall, _, values = timed(lambda: rsatoolbox_compare(reference, candidates), 1)
        theirs = wall
        notes.append(f"comparison: max |v1rsa − rsatoolbox| {np.abs(ours[2] - values).max():.1e}")
    ratio_row(f"comparison ({args.candidates} candidates)", theirs, ours)

    # bootstrap
    theirs = None
    if not args.skip_rsatoolbox:
        with threadpool_limits(limits=1):  # rsatoolbox is single-threaded but for BLAS calls
            wall, _, (evaluations, indices) = timed(
                lambda: rsatoolbox_bootstrap(reference, candidates, args.rsatoolbox_samples, 7),
                1)
        theirs = wall * args.bootstrap / args.rsatoolbox_samples
        ours_same = rsa.compare_resampled(reference, candidates, METHOD, indices)
        notes.append(f"bootstrap: rsatoolbox ran {args.rsatoolbox_samples} samples in "
                     f"{wall:.2f} s, scaled ×{args.bootstrap / args.rsatoolbox_samples:g}; "
                     f"max |v1rsa − rsatoolbox| on its indices: "
                     f"{np.nanmax(np.abs(ours_same - evaluations)):.1e}")
    for n_threads in thread_counts:
        ours = timed(lambda n_threads=n_threads: rsa.bootstrap_conditions(
            reference, candidates, METHOD, n_bootstrap=args.bootstrap, rng=1,
            n_threads=n_threads), args.repeats)
        ratio_row(f"bootstrap {args.bootstrap} samples, {n_threads} thread(s)", theirs, ours)

    # noise ceiling
    ours = timed(lambda: rsa.noise_ceiling(folds, METHOD), args.repeats)
    theirs = None
    if not args.skip_rsatoolbox:
        with threadpool_limits(limits=1):
            wall, _, values = timed(lambda: rsatoolbox_noise_ceiling(folds), 1)
        theirs = wall
        notes.append(f"noise ceiling: max |v1rsa − rsatoolbox| "
                     f"{np.abs(np.subtract(ours[2], values)).max():.1e}")
    ratio_row(f"noise ceiling ({args.folds} folds)", theirs, ours)

    # permutation test and full inference, after and before, alternating within each round
    def permutation_test(n_threads):
        return rsa.permutation_test(reference, candidates, METHOD,
                                    n_permutations=args.permutations, rng=2,
                                    n_threads=n_threads)

    def full_inference(n_threads):
        return rsa.rsa_table(reference, folds, named, [METHOD], n_bootstrap=args.bootstrap,
                             n_permutations=args.permutations, seed=0, n_threads=n_threads)

    versions = ["after"] if args.skip_before else ["after", "before"]
    tasks = [(f"permutation test {args.permutations}", permutation_test),
             ("full inference (rsa_table)", full_inference)]
    best = {}  # (task, version, threads) -> (wall, cpu, result)
    for _ in range(args.repeats):
        for task, function in tasks:
            for n_threads in thread_counts:
                for version in versions:
                    context = reference_kernels() if version == "before" \
                        else contextlib.nullcontext()
                    with context:
                        result = timed(lambda f=function, t=n_threads: f(t), 1)
                    key = (task, version, n_threads)
                    if key not in best or result[0] < best[key][0]:
                        best[key] = result
    speedups = []
    for task, _ in tasks:
        for n_threads in thread_counts:
            after = best[(task, "after", n_threads)]
            rows.append((f"{task}, {n_threads} thread(s)", None, after[0], after[1]))
            if "before" in versions:
                before = best[(task, "before", n_threads)]
                rows.append(("  before: reference kernels", None, before[0], before[1]))
                speedups.append(f"{task}, {n_threads} thread(s): before/after "
                                f"{before[0] / after[0]:.2f}× wall, "
                                f"{before[1] / after[1]:.2f}× CPU")
    if "before" in versions:
        after = best[("full inference (rsa_table)", "after", 1)][2][1]
        before = best[("full inference (rsa_table)", "before", 1)][2][1]
        same_p = np.array_equal(after["p"].values, before["p"].values)
        bootstrap = np.nanmax(np.abs(after["bootstrap"].values - before["bootstrap"].values))
        null = np.abs(after["null"].values - before["null"].values).max()
        notes.append(f"full inference, before vs after: p identical: {same_p}; max |Δ| "
                     f"bootstrap {bootstrap:.1e}, null {null:.1e}")
    if len(thread_counts) > 1:
        one = best[("full inference (rsa_table)", "after", 1)][2][1]
        many = best[("full inference (rsa_table)", "after", args.threads)][2][1]
        notes.append(f"full inference, 1 vs {args.threads} threads: identical datasets: "
                     f"{one.identical(many)}")

    print()
    print(f"{'task':<44} {'rsatoolbox s':>13} {'v1rsa s':>9} {'v1rsa CPU s':>12} {'ratio':>8}")
    for task, theirs, ours_wall, ours_cpu in rows:
        theirs_text = f"{theirs:13.3f}" if theirs is not None else f"{'—':>13}"
        ratio = f"{theirs / ours_wall:7.0f}×" if theirs is not None else f"{'—':>8}"
        print(f"{task:<44} {theirs_text} {ours_wall:9.3f} {ours_cpu:12.3f} {ratio}")
    for line in speedups + notes:
        print(f"# {line}")
    print(f"# full inference goal: under 1 s on 2 cores; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
