"""Correlation RDM speed, side by side: v1rsa vs rsatoolbox vs the matrix-multiply floor.

Shapes are those of the Stringer recording (23,589 neurons): (a) 360 conditions (the 1°-binned
NMA file) and (b) 4,598 single trials. The floor is a bare ``x @ x.T`` of the same shape in
float64, the one operation every correlation RDM needs. rsatoolbox on (b) takes minutes
(255 s on a 16-core machine): skip it with ``--skip-rsatoolbox-large``.

    python bench/rdm.py [--skip-rsatoolbox-large] [--units 23589] [--conditions 360]
                        [--trials 4598] [--repeats 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info

from v1rsa.rdm import correlation_distance


def best_times(functions: dict, repeats: int) -> tuple[dict, dict]:
    """Shortest wall time (seconds) of each function over ``repeats`` rounds, and its result.

    The functions take turns within each round, so that load from other users of a shared
    machine falls on all of them alike.
    """
    times = {label: [] for label in functions}
    results = {}
    for _ in range(repeats):
        for label, function in functions.items():
            start = time.perf_counter()
            results[label] = function()
            times[label].append(time.perf_counter() - start)
    return {label: min(seconds) for label, seconds in times.items()}, results


def rsatoolbox_correlation(x: np.ndarray) -> np.ndarray:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return calc_rdm(Dataset(x), method="correlation").get_matrices()[0]


def bench_shape(name, n_rows, n_units, *, repeats, run_rsatoolbox, device, seed):
    print(f"\n({name}) {n_rows} × {n_units}")
    rng = np.random.default_rng(seed)
    # float32, as responses are stored in trials.nc / conditions.nc
    x = rng.standard_normal((n_rows, n_units), dtype=np.float32)
    x64 = x.astype(np.float64)
    floor, ours = "matmul floor x @ x.T (float64)", "v1rsa correlation_distance"
    functions = {floor: lambda: x64 @ x64.T, ours: lambda: correlation_distance(x)}
    if device:
        correlation_distance(x, device=device)  # warm-up: CUDA context, kernels
        functions[f"v1rsa correlation_distance on {device}"] = (
            lambda: correlation_distance(x, device=device))
    seconds, results = best_times(functions, repeats)
    for label, result in results.items():
        if label not in (floor, ours):
            print(f"  max |{label} − cpu| = {np.abs(result - results[ours]).max():.2e}")
    if run_rsatoolbox:
        # float64 input, so that both compute at the same precision; one run, as it is slow
        label = "rsatoolbox calc_rdm('correlation')"
        rsatoolbox_seconds, rsatoolbox_results = best_times(
            {label: lambda: rsatoolbox_correlation(x64)}, 1)
        seconds.update(rsatoolbox_seconds)
        difference = np.abs(rsatoolbox_results[label] - results[ours]).max()
        print(f"  max |v1rsa − rsatoolbox| = {difference:.2e}")
    print(f"  {'method':<42} {'seconds':>10} {'/ floor':>9} {'/ v1rsa':>9}")
    for label, value in seconds.items():
        print(f"  {label:<42} {value:>10.3f} {value / seconds[floor]:>9.2f} "
              f"{value / seconds[ours]:>9.2f}")
    if not run_rsatoolbox:
        print("  rsatoolbox calc_rdm('correlation')          skipped")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=23589)
    parser.add_argument("--conditions", type=int, default=360, help="rows of shape (a)")
    parser.add_argument("--trials", type=int, default=4598, help="rows of shape (b); 0 skips (b)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-rsatoolbox-large", action="store_true",
                        help="do not run rsatoolbox on (b) (minutes)")
    parser.add_argument("--device", default=None,
                        help="also time v1rsa on this torch device, e.g. cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    blas = [f"{info.get('internal_api')} {info.get('version')} × {info.get('num_threads')} threads"
            for info in threadpool_info() if info.get("user_api") == "blas"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"numpy {np.__version__}; BLAS: {'; '.join(blas) or 'unknown'}")
    bench_shape("a", args.conditions, args.units, repeats=args.repeats, run_rsatoolbox=True,
                device=args.device, seed=args.seed)
    if args.trials:
        bench_shape("b", args.trials, args.units, repeats=args.repeats,
                    run_rsatoolbox=not args.skip_rsatoolbox_large, device=args.device,
                    seed=args.seed)


if __name__ == "__main__":
    main()
