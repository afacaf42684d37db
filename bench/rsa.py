"""RSA inference speed, side by side: v1rsa vs rsatoolbox, Spearman, 360 conditions, 3 candidates.

Two timings:

1. The stimulus (condition) bootstrap, 1,000 samples: rsatoolbox's ``eval_bootstrap_pattern``
   with ``ModelFixed`` models (``boot_noise_ceil=False``, so it does the same work as ours) vs
   ``v1rsa.rsa.bootstrap_conditions``. rsatoolbox takes about a minute for 1,000 samples, so it
   runs ``--rsatoolbox-samples`` samples (default 50) and its time is scaled to 1,000 — the
   output says so. On the same indices the two must agree to 1e-10; the largest difference is
   printed.
2. v1rsa's full inference: ``rsa_table`` with 1,000 bootstrap samples, 10,000 permutations and
   the noise ceiling from 4 fold RDMs (the goal: under 1 s on 2 cores).

    python bench/rsa.py [--conditions 360] [--candidates 3] [--rsatoolbox-samples 50]
                        [--bootstrap 1000] [--permutations 10000] [--folds 4] [--threads 2]
                        [--repeats 3] [--skip-rsatoolbox]

Times are wall-clock seconds, the best of ``--repeats`` rounds (rsatoolbox: one round), with the
process CPU time beside them; on a shared machine the load average printed at the top says how
much the numbers may be inflated.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
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
    args = parser.parse_args()

    reference, folds, candidates = make_inputs(args.conditions, args.candidates, args.folds)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"# {args.conditions} conditions, {args.candidates} candidate RDMs, {METHOD}; "
          f"v1rsa on {args.threads} threads unless marked 1 thread")
    rows = []  # (task, rsatoolbox seconds or None, v1rsa seconds, v1rsa CPU seconds, note)

    def ours_bootstrap(n_threads):
        return rsa.bootstrap_conditions(reference, candidates, METHOD,
                                        n_bootstrap=args.bootstrap, rng=1, n_threads=n_threads)

    single = timed(lambda: ours_bootstrap(1), args.repeats)
    multi = timed(lambda: ours_bootstrap(args.threads), args.repeats)
    theirs_seconds, note = None, ""
    if not args.skip_rsatoolbox:
        with threadpool_limits(limits=1):  # rsatoolbox is single-threaded but for BLAS calls
            wall, _, (evaluations, indices) = timed(
                lambda: rsatoolbox_bootstrap(reference, candidates, args.rsatoolbox_samples, 7),
                1)
        theirs_seconds = wall * args.bootstrap / args.rsatoolbox_samples
        ours_same = rsa.compare_resampled(reference, candidates, METHOD, indices)
        difference = np.nanmax(np.abs(ours_same - evaluations))
        note = (f"rsatoolbox ran {args.rsatoolbox_samples} samples in {wall:.2f} s, scaled "
                f"×{args.bootstrap / args.rsatoolbox_samples:g}; max |v1rsa − rsatoolbox| on "
                f"its indices: {difference:.1e}")
    task = f"bootstrap {args.bootstrap} samples"
    rows.append((task + " (1 thread)", theirs_seconds, single[0], single[1], note))
    rows.append((task, theirs_seconds, multi[0], multi[1], ""))

    def ours_permutations():
        return rsa.permutation_test(reference, candidates, METHOD,
                                    n_permutations=args.permutations, rng=2,
                                    n_threads=args.threads)

    wall, cpu, _ = timed(ours_permutations, args.repeats)
    rows.append((f"permutation test {args.permutations}", None, wall, cpu, ""))
    wall, cpu, _ = timed(lambda: rsa.noise_ceiling(folds, METHOD), args.repeats)
    rows.append((f"noise ceiling {args.folds} folds", None, wall, cpu, ""))

    def full_inference():
        named = {f"candidate{j}": c for j, c in enumerate(candidates)}
        return rsa.rsa_table(reference, folds, named, [METHOD], n_bootstrap=args.bootstrap,
                             n_permutations=args.permutations, seed=0, n_threads=args.threads)

    wall, cpu, _ = timed(full_inference, args.repeats)
    rows.append(("full inference (rsa_table)", None, wall, cpu, "goal < 1 s on 2 cores"))

    print()
    print(f"{'task':<40} {'rsatoolbox s':>13} {'v1rsa s':>9} {'v1rsa CPU s':>12} {'ratio':>8}")
    for task, theirs, ours, ours_cpu, _ in rows:
        theirs_text = f"{theirs:13.2f}" if theirs is not None else f"{'—':>13}"
        ratio = f"{theirs / ours:7.0f}×" if theirs is not None else f"{'—':>8}"
        print(f"{task:<40} {theirs_text} {ours:9.3f} {ours_cpu:12.3f} {ratio}")
    for task, *_, note in rows:
        if note:
            print(f"# {task}: {note}")


if __name__ == "__main__":
    main()
