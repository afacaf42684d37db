"""RSA inference speed, side by side: v1rsa vs rsatoolbox 0.3.2 and vs the machine's floors.

Default (the scaling table of ``bench/README.md``): 360 V1-like conditions with 2 trial folds
(``make_inputs``), 1,000 bootstrap samples, 10,000 permutations, on ``--threads`` threads:

- **candidates** 3 → 500: ``rsa_table`` (bootstrap of V1's RDM and its folds, permutations,
  noise ceiling, tests against zero and the ceiling) plus ``pairwise_from_dataset``, Pearson
  only and Pearson + Spearman;
- **pairwise tests** of 100 candidates (their bootstrap and all 4,950 pairs, Pearson);
- **recordings** 1 → 8 with 100 candidates: ``group_table`` (rsatoolbox's dual bootstrap over
  recordings and conditions with the ceiling bootstrapped, tests, pairs; Pearson); one recording
  is the bootstrap over conditions alone.

rsatoolbox does the same evaluations in its loops (``eval_bootstrap_pattern`` on V1's RDM and on
its folds, ``compare`` on each relabelled V1 RDM, ``boot_noise_ceiling``, ``eval_dual_bootstrap``);
it would take hours, so each of its per-unit costs is timed on a subset (a few samples,
permutations and candidates, single-threaded as it runs) and scaled linearly, as the notes say.
Its ``Result`` holds the pairwise variances as a (pairs × pairs) matrix product, 124,750² numbers
for 500 candidates, which it cannot run: those rows count its evaluations only.

Floors, measured in the same run: the float64 matrix-multiply rate (blocks of 128 rows times 500
candidates over all pairs, one single-threaded product per worker thread, as v1rsa runs them, on
1 and ``--threads`` threads) for the products of Pearson's
bootstrap ((2 + 3 references) × samples × pairs × candidates multiply-adds) and of the
permutation nulls (permutations × pairs × candidates, Pearson and Spearman); and, for the
Spearman bootstrap, a compiled loop that only walks each candidate's sorted pairs summing the
sample's weights (the weighted ranks, per sample and candidate), times samples × candidates.

    python bench/rsa.py [--threads 2] [--candidates-list 3 10 30 100 300 500]
                        [--recordings-list 1 2 4 8] [--skip-rsatoolbox] [--device cuda]
    python bench/rsa.py --kernels [...]   # one 3-candidate problem against rsatoolbox and
                                          # the numpy kernels of --before (see --help)

``--device cuda`` also times, in torch float64 on that device, the two matrix products that
dominate Pearson for 500 candidates (bootstrap weights × candidates, relabelled V1 × candidates)
and checks them against numpy's to 1e-10 relative.

Times are wall-clock seconds (best of ``--repeats`` for ours; rsatoolbox one round), with the
load average printed at the top and the bottom: on a shared machine the numbers are inflated,
the ratios (taken in the same run) less so.

The ``--kernels`` rows: Spearman, 360 conditions, 3 candidate RDMs:

- comparison, stimulus bootstrap (1,000 samples) and noise ceiling: rsatoolbox 0.3.2
  (``rdm.compare``, ``eval_bootstrap_pattern`` with ``ModelFixed`` models and
  ``boot_noise_ceil=False``, ``boot_noise_ceiling``) vs v1rsa. rsatoolbox's bootstrap takes about
  a minute for 1,000 samples, so it runs ``--rsatoolbox-samples`` (default 50) and its time is
  scaled to ``--bootstrap``, as the notes say. On its own indices v1rsa must agree to 1e-10.
- permutation test (10,000 relabellings) and the full inference (``rsa_table``), each on 1 and
  ``--threads`` threads: v1rsa as it is, warm, and "before": ``v1rsa/rsa.py`` as of ``--before``
  (default: the last version with numpy kernels), read with ``git show`` and run as a module.
- Kendall's τa, permutation test (``--kendall-permutations``) and bootstrap
  (``--kendall-bootstrap``): after vs before, the before on a tenth of the draws, scaled.
- first call: the full inference in a fresh process (``--first-call``), once with an empty numba
  cache and once more with the cache that run wrote.
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
from concurrent.futures import ThreadPoolExecutor
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


# ----------------------------------------------------------------------------------------------
# The scaling table: candidates 3 → 500, recordings 1 → 8


def gemm_rate(m: int, n_threads: int, repeats: int = 3) -> float:
    """float64 matrix-multiply rate (GFLOP/s) the way v1rsa runs its products: ``n_threads``
    worker threads at once, each a single-threaded product of its own block (128 rows × ``m``
    pairs times 500 candidates); the best of ``repeats``."""
    rng = np.random.default_rng(0)
    blocks = [(rng.random((128, m)), rng.random((500, m))) for _ in range(n_threads)]

    def product(block):
        left, right = block
        return left @ right.T

    best = np.inf
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(product, blocks))
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(product, blocks))
            best = min(best, time.perf_counter() - start)
    return n_threads * 2 * 128 * m * 500 / best / 1e9


def weighted_rank_floor(n: int, n_samples: int = 40, n_candidates: int = 8) -> float:
    """Seconds per (sample, candidate, pair) of a compiled loop that only walks a candidate's
    sorted pairs summing the sample's pair weights c_i c_j (the weighted ranks), one thread."""
    import numba

    @numba.njit
    def walk(counts, first, second, out):
        for b in range(counts.shape[0]):
            c = counts[b]
            for k in range(first.shape[0]):
                before = 0
                f, g = first[k], second[k]
                for s in range(f.size):
                    before += c[f[s]] * c[g[s]]
                out[b, k] = before

    rng = np.random.default_rng(0)
    rows, cols = np.triu_indices(n, 1)
    orders = np.argsort(rng.random((n_candidates, rows.size)), axis=1)
    first, second = rows[orders].astype(np.uint16), cols[orders].astype(np.uint16)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                       for _ in range(n_samples)]).astype(np.int64)
    out = np.empty((n_samples, n_candidates), dtype=np.int64)
    walk(counts[:1], first, second, out)
    start = time.perf_counter()
    walk(counts, first, second, out)
    return (time.perf_counter() - start) / (n_samples * n_candidates * rows.size)


def rsatoolbox_unit_costs(rsa, reference, folds, candidates, method: str, *, n_samples: int = 3,
                          n_permutations: int = 20, n_models: int = 4) -> dict:
    """rsatoolbox's seconds per unit of the work of ``rsa_table``, single-threaded: per (sample,
    candidate) of ``eval_bootstrap_pattern`` on V1's RDM and on its folds, per (permutation,
    candidate) of ``compare`` with a relabelled V1 RDM, and one ``boot_noise_ceiling``."""
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs, compare

    name = rsa.RSATOOLBOX_METHODS[method]
    models = [ModelFixed(f"m{j}", c) for j, c in enumerate(candidates[:n_models])]
    costs = {}
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, data in (("bootstrap", reference[None]), ("bootstrap_folds", folds)):
            start = time.perf_counter()
            eval_bootstrap_pattern(models, RDMs(data), method=name, N=n_samples,
                                   boot_noise_ceil=False)
            costs[key] = (time.perf_counter() - start) / (n_samples * len(models))
        permutations = rsa.draw_permutations(len(reference), n_permutations, 0)
        relabelled = RDMs(np.stack([reference[p][:, p] for p in permutations]))
        start = time.perf_counter()
        compare(RDMs(candidates[:n_models]), relabelled, method=name)
        costs["permutation"] = (time.perf_counter() - start) / (n_permutations * len(models))
        start = time.perf_counter()
        boot_noise_ceiling(RDMs(folds), method=name)
        costs["ceiling"] = time.perf_counter() - start
    return costs


def rsatoolbox_pairwise_seconds(n_candidates: int, n_bootstrap: int) -> float:
    """rsatoolbox's ``Result`` of bootstrap evaluations and its ``test_pairwise``, timed whole
    (it builds the pairwise variances as a (pairs × candidates) contrast products)."""
    from rsatoolbox.inference.result import Result
    from rsatoolbox.model import ModelFixed

    rng = np.random.default_rng(0)
    evaluations = rng.random((n_bootstrap, n_candidates))
    models = [ModelFixed(f"m{j}", np.zeros(3)) for j in range(n_candidates)]
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        result = Result(models, evaluations, "corr", "bootstrap_pattern", np.zeros(2),
                        variances=np.cov(evaluations.T), dof=359, n_pattern=360)
        result.test_pairwise()
    return time.perf_counter() - start


def rsatoolbox_dual_seconds(rsa, references, candidates, *, n_bootstrap: int,
                            n_candidates: int) -> tuple[float, str]:
    """rsatoolbox's ``eval_dual_bootstrap`` (Pearson) for ``n_candidates`` models and
    ``n_bootstrap`` draws, from per-draw times with 1 and 4 models on 2 draws each (a draw costs
    a + b · models), single-threaded."""
    from rsatoolbox.inference import eval_dual_bootstrap
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    per_draw = {}
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_models in (1, 4):
            models = [ModelFixed(f"m{j}", c) for j, c in enumerate(candidates[:n_models])]
            np.random.seed(0)  # noqa: NPY002 (rsatoolbox draws from numpy's global state)
            start = time.perf_counter()
            eval_dual_bootstrap(models, RDMs(references), method="corr", N=2)
            per_draw[n_models] = (time.perf_counter() - start) / 2
    slope = (per_draw[4] - per_draw[1]) / 3
    base = per_draw[1] - slope
    seconds = n_bootstrap * (base + n_candidates * slope)
    return seconds, (f"{len(references)} recordings: a draw costs {base:.3f} s + "
                     f"{slope:.3f} s per model")


def group_inputs(n_recordings: int, n_candidates: int, n_conditions: int):
    """V1-like RDMs of several recordings (independent noise, the same truth) and shared
    candidates."""
    references = []
    for r in range(n_recordings):
        reference, folds, candidates = make_inputs(n_conditions, n_candidates, 2, seed=0)
        rng = np.random.default_rng(100 + r)
        noisy = reference + 0.02 * np.abs(rng.normal(size=reference.shape))
        noisy = (noisy + noisy.T) / 2
        np.fill_diagonal(noisy, 0)
        references.append((noisy, folds))
    return references, candidates


def cuda_products(device: str, n_conditions: int, n_candidates: int, n_bootstrap: int,
                  n_permutations: int) -> list[str]:
    """The two products that dominate Pearson, in torch float64 on ``device`` and in numpy:
    bootstrap pair weights (n_bootstrap × pairs) and relabelled V1 vectors (n_permutations ×
    pairs, in blocks of 1,000) times the candidates (pairs × n_candidates)."""
    import torch

    rng = np.random.default_rng(0)
    m = n_conditions * (n_conditions - 1) // 2
    candidates = rng.random((n_candidates, m))
    weights = rng.random((n_bootstrap, m))
    relabelled = rng.random((1000, m))
    lines = []
    on_device = torch.from_numpy(candidates).to(device)

    def synchronize():
        if on_device.is_cuda:
            torch.cuda.synchronize(on_device.device)

    for name, left, repeat in (("bootstrap weights × candidates", weights, 1),
                               (f"relabelled V1 × candidates ({n_permutations // 1000} blocks)",
                                relabelled, n_permutations // 1000)):
        left_device = torch.from_numpy(left).to(device)
        torch.matmul(left_device, on_device.T)
        synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            product = torch.matmul(left_device, on_device.T)
        synchronize()
        gpu = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(repeat):
            expected = left @ candidates.T
        cpu = time.perf_counter() - start
        error = float(np.max(np.abs(product.cpu().numpy() - expected) / np.abs(expected)))
        lines.append(f"{device}: {name}: {gpu:.3f} s on the device, {cpu:.3f} s with numpy on "
                     f"the CPU, max relative difference {error:.1e}")
    return lines


def scaling_main(args) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's progress bars
    from v1rsa import rsa
    from v1rsa.rsa import groups

    n = args.conditions
    m = n * (n - 1) // 2
    b, p, t = args.bootstrap, args.permutations, args.threads
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load_average()} (1, 5, 15 min)")
    print(f"# {n} conditions, 2 folds, {b} bootstrap samples, {p} permutations, {t} threads")
    rate_1, rate_t = gemm_rate(m, 1), gemm_rate(m, t)
    step = weighted_rank_floor(n)
    print(f"# floors: float64 matrix product {rate_1:.0f} GFLOP/s on 1 thread, {rate_t:.0f} on "
          f"{t}; weighted ranks {step * 1e9:.2f} ns per sample, candidate and pair (1 thread)")
    largest = max(args.candidates_list)
    reference, folds, candidates = make_inputs(n, max(largest, args.group_candidates), 2)
    rows = []  # (task, rsatoolbox s or None, v1rsa s, floor s or None)
    notes = []
    costs = {}
    if not args.skip_rsatoolbox:
        for method in ("pearson", "spearman"):
            costs[method] = rsatoolbox_unit_costs(rsa, reference, folds, candidates, method)
            notes.append(f"rsatoolbox {method}: " + ", ".join(
                f"{key} {value * 1e3:.2f} ms" for key, value in costs[method].items())
                + " (per sample or permutation and candidate; ceiling once)")

    def rsatoolbox_table(k, methods):
        if not costs:
            return None
        return sum(b * k * (costs[m_]["bootstrap"] + costs[m_]["bootstrap_folds"])
                   + p * k * costs[m_]["permutation"] + costs[m_]["ceiling"] for m_ in methods)

    rsa.rsa_table(reference, folds, {"a/seed0/x": candidates[0], "a/seed0/y": candidates[1],
                                     "a/seed0/z": candidates[2]}, ["pearson", "spearman"],
                  n_bootstrap=64, n_permutations=64, seed=0)  # compile or load the kernels
    for k in args.candidates_list:
        named = {f"net{j}/seed0/layer": candidates[j] for j in range(k)}
        for methods in (["pearson"], ["pearson", "spearman"]):
            start = time.perf_counter()
            _, dataset = rsa.rsa_table(reference, folds, named, methods, n_bootstrap=b,
                                       n_permutations=p, seed=0, n_threads=t)
            rsa.pairwise_from_dataset(dataset, max_all_pairs=20)
            ours = time.perf_counter() - start
            floor = ((2 + 3) * b * m * k * 2 + p * m * k * 2) / (rate_t * 1e9)
            if "spearman" in methods:
                floor += p * m * k * 2 / (rate_t * 1e9) + b * k * m * step / t
            rows.append((f"rsa_table + pairwise, {k} candidates, {' + '.join(methods)}",
                         rsatoolbox_table(k, methods), ours, floor))
            del dataset
    notes.append("rsa_table floor: Pearson (2 + 3 references) x samples x pairs x candidates "
                 "and permutations x pairs x candidates multiply-adds at the matrix-product rate; "
                 "Spearman adds its permutation product and samples x candidates x pairs "
                 "weighted-rank steps")

    k = args.pairwise_candidates
    indices = rsa.draw_bootstrap_indices(n, b, 1)
    start = time.perf_counter()
    samples = rsa.compare_resampled(reference, candidates[:k], "pearson", indices, n_threads=t)
    one = rsa.BootstrapSamples.one_factor(samples, rsa.compare_many(reference, candidates[:k],
                                                                     "pearson"), n)
    names = [f"net{j}/seed0/best" for j in range(k)]
    rsa.pairwise_table(one, names, one.means(),
                       rsa.comparison_pairs(names, one.means(), max_all_pairs=k),
                       ci_level=0.95)
    ours = time.perf_counter() - start
    theirs = None
    if costs:
        theirs = b * k * costs["pearson"]["bootstrap"] + rsatoolbox_pairwise_seconds(k, b)
    rows.append((f"pairwise tests, {k} candidates ({k * (k - 1) // 2} pairs), Pearson", theirs,
                 ours, 3 * b * m * k * 2 / (rate_t * 1e9)))

    k = args.group_candidates
    for r in args.recordings_list:
        inputs, shared = group_inputs(r, k, n)
        start = time.perf_counter()
        if r == 1:
            samples = rsa.compare_resampled(inputs[0][0], shared, "pearson", indices, n_threads=t)
            one = rsa.BootstrapSamples.one_factor(samples, rsa.compare_many(
                inputs[0][0], shared, "pearson"), n)
            rsa.test_zero(one)
            names = [f"net{j}/seed0/best" for j in range(k)]
            rsa.pairwise_table(one, names, one.means(), rsa.comparison_pairs(
                names, one.means(), max_all_pairs=k), ci_level=0.95)
        else:
            recordings = {f"mouse{i}": {"rdm": rdm, "folds": f, "candidates": {
                name: shared[j] for j, name in enumerate(f"net{j}/seed0/best" for j in range(k))}}
                for i, (rdm, f) in enumerate(inputs)}
            groups.group_table(recordings, ["pearson"], n_bootstrap=b, seed=0,
                               max_all_pairs=k, n_threads=t)
        ours = time.perf_counter() - start
        theirs = None
        if not args.skip_rsatoolbox:
            if r == 1:
                theirs = b * k * costs["pearson"]["bootstrap"] + rsatoolbox_pairwise_seconds(k, b)
            else:
                theirs, note = rsatoolbox_dual_seconds(
                    rsa, np.stack([rdm for rdm, _ in inputs]), shared, n_bootstrap=b,
                    n_candidates=k)
                notes.append(f"rsatoolbox eval_dual_bootstrap, {note}")
        floor = (2 + r) * b * m * k * 2 / (rate_t * 1e9)
        kind = "bootstrap over conditions" if r == 1 else "dual bootstrap"
        rows.append((f"group: {r} recording(s) x {k} candidates, {kind}, Pearson", theirs,
                     ours, floor))

    print()
    print(f"{'task':<66} {'rsatoolbox s':>13} {'v1rsa s':>9} {'floor s':>8} "
          f"{'v1rsa/floor':>11} {'rsatoolbox/v1rsa':>16}")
    for task, theirs, ours, floor in rows:
        theirs_text = f"{theirs:13.1f}" if theirs is not None else f"{'—':>13}"
        ratio = f"{theirs / ours:15.0f}×" if theirs is not None else f"{'—':>16}"
        print(f"{task:<66} {theirs_text} {ours:9.2f} {floor:8.2f} {ours / floor:10.1f}× {ratio}")
    for line in notes:
        print(f"# {line}")
    if args.device != "cpu":
        for line in cuda_products(args.device, n, largest, b, p):
            print(f"# {line}")
    print(f"# rsatoolbox: extrapolated from subsets, single-threaded as it runs; load average at "
          f"the end {load_average()}")


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
    parser.add_argument("--kernels", action="store_true",
                        help="the 3-candidate rows against rsatoolbox and --before, not the "
                             "scaling table")
    parser.add_argument("--candidates-list", type=int, nargs="+",
                        default=[3, 10, 30, 100, 300, 500])
    parser.add_argument("--recordings-list", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--pairwise-candidates", type=int, default=100)
    parser.add_argument("--group-candidates", type=int, default=100)
    parser.add_argument("--device", default="cpu",
                        help="cuda (or cuda:N): also time the dominant products there")
    args = parser.parse_args()
    if args.first_call:
        first_call(args)
        return
    if not args.kernels:
        scaling_main(args)
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
