"""Calibration of the pairwise test: p-values under a null, power under alternatives.

Many small simulated data sets of n conditions (``null_data``): V1's RDM and two candidates'
are correlation RDMs of the same random tuning (cosines of the orientation and its double,
mixed into 50 units) seen through independent noise. Under the null both candidates have the
same noise, so they are equally close to V1 in expectation; under an alternative candidate B
has ``noise_ratio`` times A's noise. Each data set gets its own bootstrap over conditions and
rsatoolbox's two-sided pairwise t-test (``v1rsa.rsa.test_pairwise``). Printed: per number of
conditions and comparator, the Kolmogorov–Smirnov p of the null p-values against the uniform
distribution, the fraction below 0.05 (the type-I error), and the power (fraction below 0.05)
at each noise ratio.

    python bench/calibration.py [--datasets 300] [--bootstrap 200] [--conditions 20 60 180]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.stats

NOISE = 2.0


def correlation_rdm(patterns: np.ndarray) -> np.ndarray:
    rdm = 1 - np.corrcoef(patterns)
    rdm = (rdm + rdm.T) / 2
    np.fill_diagonal(rdm, 0)
    return rdm


def null_data(rng, n_conditions: int, noise_ratio: float = 1.0):
    """V1's RDM and the two candidates' (A: noise 2, B: noise 2 · noise_ratio), (3, n, n)."""
    angle = rng.uniform(0, 2 * np.pi, n_conditions)
    tuning = np.column_stack([np.cos(angle), np.sin(angle), np.cos(2 * angle), np.sin(2 * angle)])
    truth = tuning @ rng.normal(size=(4, 50))
    return np.stack([correlation_rdm(truth + scale * rng.normal(size=truth.shape))
                     for scale in (NOISE, NOISE, NOISE * noise_ratio)])


def pairwise_p_values(rng, n_conditions: int, n_datasets: int, n_bootstrap: int, method: str,
                      noise_ratio: float = 1.0) -> np.ndarray:
    """Two-sided p of candidate A vs B in each of ``n_datasets`` simulated data sets."""
    from v1rsa import rsa

    p = np.empty(n_datasets)
    for d in range(n_datasets):
        v1, a, b = null_data(rng, n_conditions, noise_ratio)
        candidates = np.stack([a, b])
        indices = rsa.draw_bootstrap_indices(n_conditions, n_bootstrap, rng)
        samples = rsa.BootstrapSamples.one_factor(
            rsa.compare_resampled(v1, candidates, method, indices),
            rsa.compare_many(v1, candidates, method), n_conditions)
        p[d] = rsa.test_pairwise(samples, [0], [1])["p"][0]
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=300)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--conditions", type=int, nargs="+", default=[20, 60, 180])
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.25, 1.5])
    parser.add_argument("--methods", nargs="+", default=["pearson", "spearman"])
    args = parser.parse_args()
    print(f"# {args.datasets} data sets per cell, {args.bootstrap} bootstrap samples each; "
          f"noise {NOISE} (candidate B: x ratio)")
    header = " ".join(f"{'power x' + format(r, 'g'):>11}" for r in args.ratios)
    print(f"{'conditions':>10} {'comparator':>10} {'KS p (null)':>12} {'P(p<0.05)':>10} {header}")
    start = time.perf_counter()
    for n in args.conditions:
        for method in args.methods:
            rng = np.random.default_rng(n)
            null = pairwise_p_values(rng, n, args.datasets, args.bootstrap, method)
            power = [np.mean(pairwise_p_values(rng, n, args.datasets, args.bootstrap, method,
                                               ratio) < 0.05) for ratio in args.ratios]
            ks = scipy.stats.kstest(null, "uniform").pvalue
            cells = " ".join(f"{x:11.2f}" for x in power)
            print(f"{n:>10} {method:>10} {ks:12.3g} {np.mean(null < 0.05):10.3f} {cells}")
    print(f"# {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
