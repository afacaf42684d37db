"""RSA inference speed, side by side: v1rsa vs rsatoolbox, and v1rsa's compiled kernels vs the
numpy kernels they replaced.

Spearman, 360 conditions, 3 candidate RDMs, V1-like fold RDMs (see ``make_inputs``). Rows:

- comparison, stimulus bootstrap (1,000 samples) and noise ceiling: rsatoolbox 0.3.2
  (``rdm.compare``, ``eval_bootstrap_pattern`` with ``ModelFixed`` models and
  ``boot_noise_ceil=False``, ``boot_noise_ceiling``) vs v1rsa. rsatoolbox's bootstrap takes about
  a minute for 1,000 samples, so it runs ``--rsatoolbox-samples`` (default 50) and its time is
  scaled to ``--bootstrap``, as the notes say. On its own indices v1rsa must agree to 1e-10.
- permutation test (10,000 relabellings) and the full inference (``rsa_table``: bootstrap,
  permutations, noise ceiling; the goal is under 1 s on 2 cores), each on 1 and ``--threads``
  threads: v1rsa as it is, warm (its kernels compiled, or loaded from numba's cache, by an
  earlier call), and "before": ``v1rsa/rsa.py`` as of ``--before`` (default: the last version
  with numpy kernels), read with ``git show`` and run as a module. The notes check that before
  and after give the same p-values, and the same bootstrap samples and nulls up to rounding.
- Kendall's τa, permutation test (``--kendall-permutations``) and bootstrap
  (``--kendall-bootstrap``): after vs before, the before on a tenth of the draws, scaled.
- first call: the full inference in a fresh process (``--first-call``), once with an empty numba
  cache (``NUMBA_CACHE_DIR`` in a temporary directory: the kernels compile) and once more with
  the cache that run wrote (they load); each row is that first call, the note has the process's
  second call (warm) and its ``import v1rsa.rsa``.

    python bench/rsa.py [--conditions 360] [--candidates 3] [--rsatoolbox-samples 50]
                        [--bootstrap 1000] [--permutations 10000] [--folds 4] [--threads 2]
                        [--repeats 3] [--kendall-permutations 1000] [--kendall-bootstrap 100]
                        [--before REVISION] [--skip-rsatoolbox] [--skip-before]

Times are wall-clock seconds, the best of ``--repeats`` rounds (rsatoolbox, Kendall's τa and the
first calls: one round; before and after alternate within a round, so both see the same
machine), with the process CPU time of that round beside them. On a shared machine the load
average printed at the top and bottom says how much the numbers may be inflated; CPU time is
inflated less than wall time, but memory-bound code slows down when other processes share the
caches and memory bus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

METHOD = "spearman"
#: the last v1rsa/rsa.py with numpy kernels (banded gathers, integer prefix sums in torch)
BEFORE_REVISION = "e0a3deaf4a93b2261ab9c1eafcd4c0e52cb43fbf"
REPOSITORY = Path(__file__).resolve().parents[1]


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


def load_before(revision: str) -> types.ModuleType:
    """``v1rsa/rsa.py`` as of a git revision, as a module of its own (it imports no v1rsa)."""
    source = subprocess.run(["git", "show", f"{revision}:workflow/src/v1rsa/rsa.py"],
                            cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"rsa_{revision[:7]}")
    exec(compile(source, f"{revision[:7]}:workflow/src/v1rsa/rsa.py", "exec"), module.__dict__)
    return module


def full_inference(module, reference, folds, candidates, args, n_threads):
    named = {f"candidate{j}": c for j, c in enumerate(candidates)}
    return module.rsa_table(reference, folds, named, [METHOD], n_bootstrap=args.bootstrap,
                            n_permutations=args.permutations, seed=0, n_threads=n_threads)


def first_call(args) -> None:
    """In this (fresh) process: import v1rsa.rsa, then the full inference twice; print seconds."""
    reference, folds, candidates = make_inputs(args.conditions, args.candidates, args.folds)
    start = time.perf_counter()
    from v1rsa import rsa

    times = {"import": time.perf_counter() - start}
    for call in ("first", "second"):
        start = time.perf_counter()
        full_inference(rsa, reference, folds, candidates, args, args.threads)
        times[call] = time.perf_counter() - start
    print(json.dumps(times))


def first_call_in_fresh_process(args, cache_dir: str) -> dict:
    command = [sys.executable, __file__, "--first-call"] + [
        f"--{name}={getattr(args, name)}"
        for name in ("conditions", "candidates", "bootstrap", "permutations", "folds", "threads")]
    result = subprocess.run(command, env={**os.environ, "NUMBA_CACHE_DIR": cache_dir},
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# rsatoolbox


def rsatoolbox_compare(rsa, reference, candidates):
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


def rsatoolbox_noise_ceiling(rsa, folds):
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
    parser.add_argument("--kendall-permutations", type=int, default=1000)
    parser.add_argument("--kendall-bootstrap", type=int, default=100)
    parser.add_argument("--before", default=BEFORE_REVISION,
                        help="git revision of workflow/src/v1rsa/rsa.py to time as 'before'")
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    parser.add_argument("--skip-before", action="store_true",
                        help="do not time the numpy kernels of --before")
    parser.add_argument("--first-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call:
        first_call(args)
        return

    from v1rsa import rsa

    reference, folds, candidates = make_inputs(args.conditions, args.candidates, args.folds)
    before = None if args.skip_before else load_before(args.before)
    if before is not None:
        import torch  # noqa: F401 (before's Spearman bootstrap imports it on first use: ~1 s)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load_average()} (1, 5, 15 min)")
    print(f"# {args.conditions} conditions, {args.candidates} candidate RDMs, {METHOD}, "
          f"{args.bootstrap} bootstrap samples, {args.permutations} permutations, "
          f"{args.folds} folds; before: v1rsa/rsa.py at {args.before[:7]}")
    rows = []  # (task, rsatoolbox seconds or None, v1rsa seconds, v1rsa CPU seconds)
    notes = []
    thread_counts = sorted({1, args.threads})

    # the first calls, in fresh processes, before this one loads the machine's caches
    with tempfile.TemporaryDirectory() as cache_dir:
        compiled = first_call_in_fresh_process(args, cache_dir)
        loaded = first_call_in_fresh_process(args, cache_dir)
    for label, times in (("compiles its kernels", compiled), ("loads them from cache", loaded)):
        rows.append((f"first call, fresh process {label}", None, times["first"], None))
        notes.append(f"fresh process that {label}: import v1rsa.rsa {times['import']:.2f} s, "
                     f"first full inference {times['first']:.2f} s, second "
                     f"{times['second']:.2f} s ({args.threads} threads)")

    # warm up: compile or load every kernel the rows below use
    full_inference(rsa, reference, folds, candidates, args, 1)
    rsa.permutation_null(reference, candidates, "kendall_tau_a",
                         rsa.draw_permutations(args.conditions, 4, 0))
    rsa.bootstrap_conditions(reference, candidates, "kendall_tau_a", n_bootstrap=4, rng=0)

    # comparison
    ours = timed(lambda: rsa.compare_many(reference, candidates, METHOD), args.repeats)
    theirs = None
    if not args.skip_rsatoolbox:
        wall, _, values = timed(lambda: rsatoolbox_compare(rsa, reference, candidates), 1)
        theirs = wall
        notes.append(f"comparison: max |v1rsa − rsatoolbox| {np.abs(ours[2] - values).max():.1e}")
    rows.append((f"comparison ({args.candidates} candidates)", theirs, ours[0], ours[1]))

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
        rows.append((f"bootstrap {args.bootstrap} samples, {n_threads} thread(s)", theirs,
                     ours[0], ours[1]))

    # noise ceiling
    ours = timed(lambda: rsa.noise_ceiling(folds, METHOD), args.repeats)
    theirs = None
    if not args.skip_rsatoolbox:
        with threadpool_limits(limits=1):
            wall, _, values = timed(lambda: rsatoolbox_noise_ceiling(rsa, folds), 1)
        theirs = wall
        notes.append(f"noise ceiling: max |v1rsa − rsatoolbox| "
                     f"{np.abs(np.subtract(ours[2], values)).max():.1e}")
    rows.append((f"noise ceiling ({args.folds} folds)", theirs, ours[0], ours[1]))

    # permutation test and full inference, after and before, alternating within each round
    def permutation_test(module, n_threads):
        return module.permutation_test(reference, candidates, METHOD,
                                       n_permutations=args.permutations, rng=2,
                                       n_threads=n_threads)

    def inference(module, n_threads):
        return full_inference(module, reference, folds, candidates, args, n_threads)

    versions = {"after": rsa} if before is None else {"after": rsa, "before": before}
    tasks = [(f"permutation test {args.permutations}", permutation_test),
             ("full inference (rsa_table), warm", inference)]
    best = {}  # (task, version, threads) -> (wall, cpu, result)
    for _ in range(args.repeats):
        for task, function in tasks:
            for n_threads in thread_counts:
                for version, module in versions.items():
                    result = timed(lambda f=function, m=module, t=n_threads: f(m, t), 1)
                    key = (task, version, n_threads)
                    if key not in best or result[0] < best[key][0]:
                        best[key] = result
    speedups = []
    for task, _ in tasks:
        for n_threads in thread_counts:
            after = best[(task, "after", n_threads)]
            rows.append((f"{task}, {n_threads} thread(s)", None, after[0], after[1]))
            if before is not None:
                old = best[(task, "before", n_threads)]
                rows.append(("  before: numpy kernels", None, old[0], old[1]))
                speedups.append(f"{task}, {n_threads} thread(s): before/after "
                                f"{old[0] / after[0]:.2f}× wall, {old[1] / after[1]:.2f}× CPU")
    if before is not None:
        after = best[("full inference (rsa_table), warm", "after", 1)][2][1]
        old = best[("full inference (rsa_table), warm", "before", 1)][2][1]
        same_p = np.array_equal(after["p"].values, old["p"].values)
        same_bootstrap = np.array_equal(after["bootstrap"].values, old["bootstrap"].values,
                                        equal_nan=True)
        null = np.abs(after["null"].values - old["null"].values).max()
        notes.append(f"full inference, before vs after: p identical: {same_p}; bootstrap "
                     f"samples identical: {same_bootstrap}; max |Δ null| {null:.1e}")
    if len(thread_counts) > 1:
        one = best[("full inference (rsa_table), warm", "after", 1)][2][1]
        many = best[("full inference (rsa_table), warm", "after", args.threads)][2][1]
        notes.append(f"full inference, 1 vs {args.threads} threads: identical datasets: "
                     f"{one.identical(many)}")

    # Kendall's τa (before: a tenth of the draws, scaled)
    permutations = rsa.draw_permutations(args.conditions, args.kendall_permutations, 3)
    indices = rsa.draw_bootstrap_indices(args.conditions, args.kendall_bootstrap, 4)
    kendall = [
        (f"Kendall τa permutation test {args.kendall_permutations}", permutations,
         lambda module, draws: module.permutation_null(reference, candidates, "kendall_tau_a",
                                                       draws, n_threads=args.threads)),
        (f"Kendall τa bootstrap {args.kendall_bootstrap} samples", indices,
         lambda module, draws: module.compare_resampled(reference, candidates, "kendall_tau_a",
                                                        draws, n_threads=args.threads)),
    ]
    for task, draws, function in kendall:
        after = timed(lambda f=function, d=draws: f(rsa, d), 1)
        rows.append((f"{task}, {args.threads} thread(s)", None, after[0], after[1]))
        if before is not None:
            tenth = max(1, len(draws) // 10)
            old = timed(lambda f=function, d=draws[:tenth]: f(before, d), 1)
            scale = len(draws) / tenth
            rows.append((f"  before: numpy, {tenth} scaled ×{scale:g}", None, old[0] * scale,
                         old[1] * scale))
            difference = np.nanmax(np.abs(after[2][:tenth] - old[2]))
            notes.append(f"{task}: before/after {old[0] * scale / after[0]:.1f}× wall; max "
                         f"|Δ| on the shared draws {difference:.1e}")

    print()
    print(f"{'task':<50} {'rsatoolbox s':>13} {'v1rsa s':>9} {'v1rsa CPU s':>12} {'ratio':>8}")
    for task, theirs, ours_wall, ours_cpu in rows:
        theirs_text = f"{theirs:13.3f}" if theirs is not None else f"{'—':>13}"
        cpu_text = f"{ours_cpu:12.3f}" if ours_cpu is not None else f"{'—':>12}"
        ratio = f"{theirs / ours_wall:7.0f}×" if theirs is not None else f"{'—':>8}"
        print(f"{task:<50} {theirs_text} {ours_wall:9.3f} {cpu_text} {ratio}")
    for line in speedups + notes:
        print(f"# {line}")
    print(f"# full inference goal: under 1 s on 2 cores; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
