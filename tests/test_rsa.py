"""Tests of v1rsa.rsa: comparators, bootstrap, permutation test, FDR, noise ceiling, the table.

Numbers are checked against rsatoolbox 0.3.2 (comparators, its bootstrap evaluation and noise
ceiling), scipy (ranks, Spearman, FDR, Kolmogorov–Smirnov) and direct numpy formulas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from conftest import correlation_rdm
from v1rsa import rsa
from v1rsa.io import read_netcdf, write_netcdf

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import eval_bootstrap_pattern  # noqa: E402
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402
from rsatoolbox.rdm import compare as rsatoolbox_compare  # noqa: E402


def random_rdm(rng, n_conditions: int, n_units: int = 30) -> np.ndarray:
    return correlation_rdm(rng.normal(size=(n_conditions, n_units)))


def block_rdm(n_conditions: int) -> np.ndarray:
    """A two-category RDM (0 within, 1 between): almost every entry is tied."""
    category = np.arange(n_conditions) % 2
    return (category[:, None] != category[None, :]).astype(float)


def candidates_with_ties(rng, n_conditions: int) -> np.ndarray:
    """Three random RDMs and the tie-heavy block RDM, stacked (4, n, n)."""
    rdms = [random_rdm(rng, n_conditions) for _ in range(3)] + [block_rdm(n_conditions)]
    return np.stack(rdms)


def rounded(rdm: np.ndarray) -> np.ndarray:
    """rdm with values rounded to one decimal: many ties between different pairs."""
    return np.round(rdm, 1)


def relabelled(rdm: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    return rdm[permutation][:, permutation]


@pytest.fixture
def rng():
    return np.random.default_rng(20240501)


# ---------------------------------------------------------------------------------- comparators


@pytest.mark.parametrize("method", rsa.METHODS)
@pytest.mark.parametrize("ties", [False, True])
def test_compare_many_equals_rsatoolbox(rng, method, ties):
    reference = random_rdm(rng, 15)
    reference = rounded(reference) if ties else reference
    candidates = candidates_with_ties(rng, 15)
    ours = rsa.compare_many(reference, candidates, method)
    theirs = [rsatoolbox_compare(RDMs(c[None]), RDMs(reference[None]),
                                 rsa.RSATOOLBOX_METHODS[method])[0, 0] for c in candidates]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert rsa.compare(reference, candidates[0], method) == pytest.approx(theirs[0], abs=1e-10)


def test_course_pearson_on_a_tiny_example():
    # Four conditions, written out by hand; the course compares upper triangles by Pearson.
    rdm_a = np.array([[0.0, 0.2, 0.9, 1.1],
                      [0.2, 0.0, 0.7, 1.0],
                      [0.9, 0.7, 0.0, 0.3],
                      [1.1, 1.0, 0.3, 0.0]])
    rdm_b = np.array([[0.0, 0.1, 0.5, 1.4],
                      [0.1, 0.0, 0.9, 0.8],
                      [0.5, 0.9, 0.0, 0.2],
                      [1.4, 0.8, 0.2, 0.0]])
    a = np.array([0.2, 0.9, 1.1, 0.7, 1.0, 0.3])
    b = np.array([0.1, 0.5, 1.4, 0.9, 0.8, 0.2])
    direct = np.sum((a - a.mean()) * (b - b.mean())) / np.sqrt(
        np.sum((a - a.mean()) ** 2) * np.sum((b - b.mean()) ** 2))
    assert rsa.compare(rdm_a, rdm_b, "pearson") == pytest.approx(direct, abs=1e-12)
    assert direct == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_constant_candidate_compares_as_zero_like_rsatoolbox(rng):
    reference = random_rdm(rng, 8)
    constant = 1 - np.eye(8)
    for method in ("pearson", "spearman", "kendall_tau_a"):
        assert rsa.compare(reference, constant, method) == 0.0


def test_cka_equals_the_feature_space_formula(rng):
    def direct(x, y):
        x, y = x - x.mean(axis=0), y - y.mean(axis=0)
        return (np.linalg.norm(y.T @ x) ** 2
                / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))

    n_conditions = 20
    for n_units_x, n_units_y in [(5, 8), (50, 300)]:  # fewer and more units than conditions
        x = rng.normal(size=(n_conditions, n_units_x))
        y = x @ rng.normal(size=(n_units_x, n_units_y)) + rng.normal(size=(n_conditions, n_units_y))
        assert rsa.cka(x, y) == pytest.approx(direct(x, y), rel=1e-10)
    # Invariant to rotations and isotropic scaling of the units; 1 for identical activations.
    rotation, _ = np.linalg.qr(rng.normal(size=(n_units_y, n_units_y)))
    assert rsa.cka(x, 3 * y @ rotation) == pytest.approx(rsa.cka(x, y), rel=1e-10)
    assert rsa.cka(y, y) == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------------------------------------------------ bootstrap


def rsatoolbox_bootstrap_loop(reference, candidates, method, indices):
    """rsatoolbox's eval_bootstrap_pattern, one sample at a time on the given indices."""
    out = np.full((len(indices), len(candidates)), np.nan)
    for b, pattern_idx in enumerate(indices):
        if len(np.unique(pattern_idx)) < 3:
            continue
        data = RDMs(reference[None]).subsample_pattern("index", pattern_idx)
        for j, candidate in enumerate(candidates):
            model = RDMs(candidate[None]).subsample_pattern("index", pattern_idx)
            out[b, j] = np.mean(rsatoolbox_compare(model, data, rsa.RSATOOLBOX_METHODS[method]))
    return out


@pytest.mark.parametrize("method", rsa.METHODS)
def test_bootstrap_equals_rsatoolbox_on_the_same_indices(rng, method):
    n = 14
    reference = rounded(random_rdm(rng, n))  # ties between pairs, plus the repeats
    candidates = candidates_with_ties(rng, n)
    indices = rng.integers(0, n, size=(25, n))
    indices[0] = 3  # one condition only: no pairs
    indices[1] = [0, 1] * (n // 2)  # two conditions: NaN in rsatoolbox
    indices[2] = [0, 1, 2] + [0] * (n - 3)  # three conditions, heavily repeated
    indices[3] = [0, 2, 4, 6] * 3 + [8, 8]  # one category only: the block RDM is constant (0)
    ours = rsa.compare_resampled(reference, candidates, method, indices)
    theirs = rsatoolbox_bootstrap_loop(reference, candidates, method, indices)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[:2]).all()
    assert ours[3, 3] == 0.0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_bootstrap_equals_rsatoolbox_eval_bootstrap_pattern(rng, method):
    # rsatoolbox draws from numpy's global state: seeding it and replaying its calls gives the
    # very indices its eval_bootstrap_pattern used.
    n, n_samples = 12, 15
    reference = random_rdm(rng, n)
    candidates = candidates_with_ties(rng, n)
    models = [ModelFixed(f"candidate{j}", c) for j, c in enumerate(candidates)]
    np.random.seed(7)  # noqa: NPY002 (rsatoolbox draws from the global state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = eval_bootstrap_pattern(models, RDMs(reference[None]),
                                        method=rsa.RSATOOLBOX_METHODS[method], N=n_samples,
                                        boot_noise_ceil=False)
    np.random.seed(7)  # noqa: NPY002
    indices = np.array([np.random.randint(0, n, size=n)  # noqa: NPY002
                        for _ in range(n_samples)])
    ours = rsa.compare_resampled(reference, candidates, method, indices)
    np.testing.assert_allclose(ours, result.evaluations, rtol=0, atol=1e-10)


def test_weighted_spearman_equals_ranking_the_repeated_entries(rng):
    # 120 conditions: long vectors with many tie groups (the rounded reference).
    n = 120
    reference = rounded(random_rdm(rng, n))
    candidates = np.stack([random_rdm(rng, n), rounded(random_rdm(rng, n)), block_rdm(n)])
    indices = rng.integers(0, n, size=(4, n))
    ours = rsa.compare_resampled(reference, candidates, "spearman", indices)
    for b, sample in enumerate(indices):
        x, ys = repeated_entries(sample, reference, candidates)
        for j, y in enumerate(ys):
            assert ours[b, j] == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-10)


def repeated_entries(sample, reference, candidates):
    """A bootstrap sample's upper-triangle entries as a multiset: pair (i, j) repeated c_i c_j
    times (c: how often each condition was drawn), for the reference and each candidate."""
    rows, cols = np.triu_indices(len(reference), 1)
    counts = np.bincount(sample, minlength=len(reference))
    repeats = counts[rows] * counts[cols]
    return (np.repeat(reference[rows, cols], repeats),
            [np.repeat(candidate[rows, cols], repeats) for candidate in candidates])


def test_weighted_spearman_of_several_references_equals_ranking_each_alone(rng):
    # The kernel takes the references three at a time and the samples four at a time: five
    # references (tied and untied) and seven samples leave a short group and a short block.
    n = 40
    references = np.stack([rounded(random_rdm(rng, n)), random_rdm(rng, n), block_rdm(n),
                           random_rdm(rng, n), rounded(random_rdm(rng, n))])
    candidates = np.concatenate([candidates_with_ties(rng, n), rounded(random_rdm(rng, n))[None]])
    indices = rng.integers(0, n, size=(7, n))
    ours = rsa.compare_resampled(references, candidates, "spearman", indices)
    assert ours.shape == (7, 5, 5)
    for r, reference in enumerate(references):
        np.testing.assert_array_equal(
            ours[:, r], rsa.compare_resampled(reference, candidates, "spearman", indices))
        for b, sample in enumerate(indices):
            x, ys = repeated_entries(sample, reference, candidates)
            expected = [scipy.stats.spearmanr(x, y).statistic for y in ys]
            np.testing.assert_allclose(ours[b, r], expected, rtol=0, atol=1e-10)


def test_weighted_spearman_float_path_equals_the_integer_path(rng, monkeypatch):
    # Beyond 1625 conditions the integer sums could overflow int64 and the ranks are held in
    # float64 instead; forced here on a small problem, it must give the same values.
    n = 30
    reference = rounded(random_rdm(rng, n))
    candidates = candidates_with_ties(rng, n)
    indices = rng.integers(0, n, size=(12, n))
    integer = rsa.compare_resampled(reference, candidates, "spearman", indices)
    monkeypatch.setattr(rsa.bootstrap, "MAX_CONDITIONS_INT64_RANKS", 0)
    floating = rsa.compare_resampled(reference, candidates, "spearman", indices)
    np.testing.assert_allclose(floating, integer, rtol=0, atol=1e-12)
    np.testing.assert_allclose(floating, rsatoolbox_bootstrap_loop(reference, candidates,
                                                                   "spearman", indices),
                               rtol=0, atol=1e-10)


def test_weighted_spearman_int64_sums_equal_the_float64_sums(rng, monkeypatch):
    # Up to 512 conditions the bootstrap's sums of w R_x R_y are integers below 2**53 (4W³ with
    # W ≤ n(n − 1)/2) and are summed in float64; from 513 conditions in int64. Both exact: forced
    # here on a small problem, the two paths agree bit for bit.
    bound = rsa.bootstrap.MAX_CONDITIONS_FLOAT64_RANKS
    assert 4 * (bound * (bound - 1) // 2) ** 3 < 2**53 <= 4 * ((bound + 1) * bound // 2) ** 3
    n = 30
    references = np.stack([rounded(random_rdm(rng, n)), random_rdm(rng, n)])
    candidates = candidates_with_ties(rng, n)
    indices = rng.integers(0, n, size=(9, n))
    in_float64 = rsa.compare_resampled(references, candidates, "spearman", indices)
    monkeypatch.setattr(rsa.bootstrap, "MAX_CONDITIONS_FLOAT64_RANKS", 0)
    in_int64 = rsa.compare_resampled(references, candidates, "spearman", indices)
    np.testing.assert_array_equal(in_int64, in_float64)


def test_spearman_permutation_null_is_exact_integer_arithmetic(rng):
    # The null's cross products are sums of products of integer rank scores, computed as a
    # float64 matrix product: exact below 2**53, so equal bit for bit to the same sums in int64,
    # and to the comparison of each relabelled reference.
    n = 30
    reference = rounded(random_rdm(rng, n))
    candidates = candidates_with_ties(rng, n)
    permutations = rsa.draw_permutations(n, 20, rng)
    null = rsa.permutation_null(reference, candidates, "spearman", permutations)
    rows, cols = np.triu_indices(n, 1)
    x = scipy.stats.rankdata(reference[rows, cols]) * 2 - (rows.size + 1)
    ys = scipy.stats.rankdata(candidates[:, rows, cols], axis=1) * 2 - (rows.size + 1)
    x, ys = x.astype(np.int64), ys.astype(np.int64)
    relabelled_x = np.stack([relabelled_upper(x, p, n) for p in permutations])
    exact = (relabelled_x @ ys.T) / np.sqrt(float(x @ x)) / np.sqrt((ys * ys).sum(axis=1) * 1.0)
    np.testing.assert_array_equal(null, exact)
    direct = [rsa.compare_many(relabelled(reference, p), candidates, "spearman")
              for p in permutations]
    np.testing.assert_allclose(null, direct, rtol=0, atol=1e-12)


def relabelled_upper(vector, permutation, n):
    """The upper triangle of the symmetric matrix of ``vector`` with conditions relabelled."""
    rows, cols = np.triu_indices(n, 1)
    matrix = np.zeros((n, n), dtype=vector.dtype)
    matrix[rows, cols] = vector
    matrix[cols, rows] = vector
    return matrix[permutation][:, permutation][rows, cols]


def kendall_tau_a_by_definition(x, y):
    """Σ_{s<t} sign(x_s − x_t) sign(y_s − y_t) / (N (N − 1) / 2), over all N² pairs at once."""
    concordance = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    return concordance.sum() / 2 / (x.size * (x.size - 1) / 2)


def test_kendall_tau_a_bootstrap_equals_the_definition_on_the_repeated_entries(rng):
    # Each sample as a multiset (pairs repeated c_i c_j times), τa by its definition.
    n = 24
    reference = rounded(random_rdm(rng, n))
    candidates = np.stack([random_rdm(rng, n), rounded(random_rdm(rng, n)), block_rdm(n)])
    indices = rng.integers(0, n, size=(5, n))
    ours = rsa.compare_resampled(reference, candidates, "kendall_tau_a", indices)
    for b, sample in enumerate(indices):
        x, ys = repeated_entries(sample, reference, candidates)
        for j, y in enumerate(ys):
            assert ours[b, j] == pytest.approx(kendall_tau_a_by_definition(x, y), abs=1e-12)
    threaded = rsa.compare_resampled(reference, candidates, "kendall_tau_a", indices,
                                     n_threads=2)
    np.testing.assert_array_equal(threaded, ours)


def test_bootstrap_conditions_is_reproducible_and_thread_independent(rng):
    n = 40
    reference = random_rdm(rng, n)
    candidates = candidates_with_ties(rng, n)
    first = rsa.bootstrap_conditions(reference, candidates, "spearman", n_bootstrap=150, rng=5)
    again = rsa.bootstrap_conditions(reference, candidates, "spearman", n_bootstrap=150,
                                     rng=np.random.default_rng(5), n_threads=2)
    np.testing.assert_array_equal(first["indices"], again["indices"])
    np.testing.assert_array_equal(first["samples"], again["samples"])
    assert first["samples"].shape == (150, 4)
    assert first["indices"].shape == (150, n)
    np.testing.assert_array_equal(
        first["indices"], np.random.default_rng(5).integers(0, n, size=(150, n)))


@pytest.mark.parametrize("method", rsa.METHODS)
def test_several_references_on_the_same_draws_and_threads(rng, method):
    # V1's RDM and its folds in one call equal one call each; 70 samples span several blocks,
    # and two threads give the same bits as one.
    n = 16
    references = np.stack([rounded(random_rdm(rng, n)) for _ in range(3)])
    candidates = candidates_with_ties(rng, n)
    indices = rng.integers(0, n, size=(70, n))
    together = rsa.compare_resampled(references, candidates, method, indices)
    assert together.shape == (70, 3, 4)
    for r, reference in enumerate(references):
        np.testing.assert_allclose(together[:, r],
                                   rsa.compare_resampled(reference, candidates, method, indices),
                                   rtol=0, atol=1e-13)
    threaded = rsa.compare_resampled(references, candidates, method, indices, n_threads=2)
    np.testing.assert_array_equal(threaded, together)


def test_confidence_interval_is_the_percentile_interval(rng):
    samples = rng.normal(size=(1000, 3))
    samples[::50, 1] = np.nan
    low, high = rsa.confidence_interval(samples, level=0.9)
    for j in range(3):
        finite = samples[~np.isnan(samples[:, j]), j]
        assert low[j] == pytest.approx(np.percentile(finite, 5))
        assert high[j] == pytest.approx(np.percentile(finite, 95))


# ---------------------------------------------------------------------------- permutation test


def permutation_null_and_direct(rng, method, n, n_permutations):
    """The permutation null of a tied reference against candidates with ties, and the same
    comparisons made directly on each relabelled reference."""
    reference = rounded(random_rdm(rng, n))
    candidates = candidates_with_ties(rng, n)
    permutations = rsa.draw_permutations(n, n_permutations, rng)
    null = rsa.permutation_null(reference, candidates, method, permutations)
    direct = [rsa.compare_many(relabelled(reference, p), candidates, method)
              for p in permutations]
    return null, direct, (reference, candidates, permutations)


@pytest.mark.parametrize("method", rsa.METHODS)
def test_permutation_null_compares_the_relabelled_reference(rng, method):
    null, direct, _ = permutation_null_and_direct(rng, method, n=10, n_permutations=30)
    np.testing.assert_allclose(null, direct, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", rsa.METHODS)
def test_permutation_null_over_several_blocks_and_threads(rng, method):
    # 53 conditions, 21 permutations: more than one block of permutations (the last one short).
    null, direct, (reference, candidates, permutations) = permutation_null_and_direct(
        rng, method, n=53, n_permutations=21)
    np.testing.assert_allclose(null, direct, rtol=0, atol=1e-12)
    threaded = rsa.permutation_null(reference, candidates, method, permutations, n_threads=2)
    np.testing.assert_array_equal(threaded, null)


def test_permutation_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(11)
    n_datasets, n_conditions, n_permutations = 200, 12, 199
    p = {"pearson": [], "spearman": []}
    for _ in range(n_datasets):
        reference = random_rdm(rng, n_conditions, 5)
        candidate = random_rdm(rng, n_conditions, 5)[None]
        for method in p:
            result = rsa.permutation_test(reference, candidate, method,
                                          n_permutations=n_permutations, rng=rng)
            p[method].append(result["p"][0])
    for method, values in p.items():
        values = np.array(values)
        assert scipy.stats.kstest(values, "uniform").pvalue > 0.01, method
        # p takes values in {1, …, 200} / 200; about 5 % of them ≤ 0.05 (binomial 99.9 % range)
        assert 1 <= np.sum(values <= 0.05) <= 22, method


def test_a_real_effect_is_significant(rng):
    n, n_permutations = 20, 999
    patterns = rng.normal(size=(n, 30))
    reference = correlation_rdm(patterns)
    noisy = correlation_rdm(patterns + 0.5 * rng.normal(size=patterns.shape))
    reversed_order = noisy.max() - noisy  # dissimilar where the reference is similar
    np.fill_diagonal(reversed_order, 0)
    for method in ("pearson", "spearman"):
        result = rsa.permutation_test(reference, np.stack([noisy, reversed_order]), method,
                                      n_permutations=n_permutations, rng=3)
        # No relabelling comes close: p is the smallest value the test can give.
        assert result["p"][0] == pytest.approx(1 / (n_permutations + 1))
        assert result["null"].shape == (n_permutations, 2)
        assert result["null"][:, 0].max() < result["observed"][0]
        # One-sided: a strong negative relation is not evidence of similarity.
        assert result["observed"][1] < -0.5
        assert result["p"][1] == 1.0


def test_shuffled_conditions_give_about_zero_and_no_significance(rng):
    n = 60
    # A smooth structure over conditions (like orientation), so the RDM is far from random.
    angle = np.linspace(0, np.pi, n, endpoint=False)
    patterns = np.column_stack([np.cos(2 * angle), np.sin(2 * angle)]) @ rng.normal(size=(2, 40))
    reference = correlation_rdm(patterns + 0.3 * rng.normal(size=patterns.shape))
    shuffled = relabelled(reference, rng.permutation(n))[None]
    for method in ("pearson", "spearman"):
        result = rsa.permutation_test(reference, shuffled, method, n_permutations=999, rng=4)
        null_sd = result["null"][:, 0].std()
        assert abs(result["observed"][0]) < 3 * null_sd
        assert result["p"][0] > 0.05


def test_fdr_bh_equals_the_definition_and_scipy(rng):
    p = rng.uniform(size=30) ** 3
    p[[4, 17]] = np.nan
    q = rsa.fdr_bh(p)
    tested = ~np.isnan(p)
    assert np.isnan(q[~tested]).all()
    # q_i = min over p_j ≥ p_i of m p_j / rank_j, capped at 1 (Benjamini & Hochberg 1995)
    finite = p[tested]
    m = finite.size
    ranks = scipy.stats.rankdata(finite, method="max")
    definition = [min(1.0, min(m * finite[j] / ranks[j] for j in range(m)
                               if finite[j] >= finite[i])) for i in range(m)]
    np.testing.assert_allclose(q[tested], definition, rtol=1e-12)
    np.testing.assert_allclose(q[tested], scipy.stats.false_discovery_control(finite),
                               rtol=1e-12)


# -------------------------------------------------------------------------------- noise ceiling


def fold_rdms(rng, n_conditions, n_folds, noise):
    """RDMs of the same true patterns seen through independent noise in each fold."""
    truth = rng.normal(size=(n_conditions, 50))
    folds = [correlation_rdm(truth + noise * rng.normal(size=truth.shape))
             for _ in range(n_folds)]
    return correlation_rdm(truth), np.stack(folds)


@pytest.mark.parametrize("method", rsa.METHODS)
def test_noise_ceiling_equals_rsatoolbox(rng, method):
    _, folds = fold_rdms(rng, 15, 4, noise=1.0)
    ours = rsa.noise_ceiling(folds, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns about tau's averaged ranks
        theirs = boot_noise_ceiling(RDMs(folds), method=rsa.RSATOOLBOX_METHODS[method])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_the_true_rdm_reaches_the_noise_ceiling(rng, method):
    truth, folds = fold_rdms(rng, 40, 5, noise=1.5)
    lower, upper = rsa.noise_ceiling(folds, method)
    assert 0 < lower < upper < 1

    def fold_mean(candidate):
        return np.mean([rsa.compare(fold, candidate, method) for fold in folds])

    assert lower <= fold_mean(truth) <= upper
    assert fold_mean(random_rdm(rng, 40)) < lower / 2


# ----------------------------------------------------------------------------- compiled kernels


def test_kernel_threads_are_set_inside_the_block_and_restored_after():
    numba = pytest.importorskip("numba")
    from v1rsa import _kernels

    before = numba.get_num_threads()
    with _kernels.threads(1):
        assert numba.get_num_threads() == 1
    with _kernels.threads(10_000):  # more than the pool holds: the whole pool
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert numba.get_num_threads() == before


def test_kernels_run_without_a_writable_cache_directory(tmp_path):
    # numba raises when it finds nowhere to write its cache; the kernels must still compile
    # (once per process), with one warning, and give the same numbers.
    script = """
import warnings
import json
import numba.core.caching
numba.core.caching.CacheImpl._locator_classes = []  # as if no directory were writable
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from v1rsa import _kernels, rsa
assert [str(w.message) for w in caught if "cache" in str(w.message)] == [
    str(w.message) for w in caught], caught
print(len(caught))
reference = np.load("reference.npy")
print(json.dumps(rsa.permutation_null(reference, reference[None] ** 2, "spearman",
                                      rsa.draw_permutations(9, 4, 0)).tolist()))
"""
    rng = np.random.default_rng(3)
    reference = random_rdm(rng, 9)
    np.save(tmp_path / "reference.npy", reference)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    n_warnings, null = result.stdout.strip().split("\n")
    assert n_warnings == "1"
    expected = rsa.permutation_null(reference, reference[None] ** 2, "spearman",
                                    rsa.draw_permutations(9, 4, 0))
    np.testing.assert_array_equal(np.array(json.loads(null)), expected)


# ------------------------------------------------------------------------------------ the table


def small_problem(rng, n=12):
    truth, folds = fold_rdms(rng, n, 3, noise=0.8)
    reference = np.mean(folds, axis=0)  # stands for the RDM of all trials
    candidates = {"truth": truth, "random": random_rdm(rng, n), "blocks": block_rdm(n)}
    return reference, folds, candidates


def test_rsa_table_rows_columns_and_dataset(rng, tmp_path):
    reference, folds, candidates = small_problem(rng)
    methods = ["pearson", "spearman"]
    table, dataset = rsa.rsa_table(reference, folds, candidates, methods, n_bootstrap=60,
                                   n_permutations=99, seed=1, ci_level=0.9)
    assert list(table.columns) == [
        "reference", "candidate", "comparator", "value", "ci_low", "ci_high", "p", "q", "p_zero",
        "noise_ceiling_lower", "noise_ceiling_upper", "value_fold_mean", "p_noise", "n_seeds",
        "n_conditions", "n_bootstrap", "n_permutations", "seed", "ci_level"]
    assert len(table) == 6
    assert set(table["reference"]) == {"V1"}
    for method in methods:
        rows = table[table["comparator"] == method]
        assert list(rows["candidate"]) == list(candidates)
        np.testing.assert_allclose(rows["value"], rsa.compare_many(
            reference, np.stack(list(candidates.values())), method))
        np.testing.assert_allclose(rows["q"], rsa.fdr_bh(rows["p"].to_numpy()))
        assert (rows["noise_ceiling_lower"] == rsa.noise_ceiling(folds, method)[0]).all()
        assert (rows["ci_low"] < rows["ci_high"]).all()
    truth = table[table["candidate"] == "truth"]
    assert (truth["p"] == 1 / 100).all()
    assert (truth["ci_low"] > 0.3).all()

    assert dataset["bootstrap"].dims == ("comparator", "sample", "candidate")
    assert dataset["bootstrap"].shape == (2, 60, 3)
    assert dataset["null"].dims == ("comparator", "permutation", "candidate")
    assert dataset["bootstrap_index"].dims == ("sample", "draw")
    assert dataset["permutation_index"].dims == ("permutation", "condition")
    np.testing.assert_array_equal(dataset["p"].sel(comparator="spearman"),
                                  table[table["comparator"] == "spearman"]["p"])
    # The recorded indices reproduce the recorded samples.
    redo = rsa.compare_resampled(reference, np.stack(list(candidates.values())), "pearson",
                                 dataset["bootstrap_index"].values)
    np.testing.assert_allclose(redo, dataset["bootstrap"].sel(comparator="pearson"))
    path = tmp_path / "rsa.nc"
    write_netcdf(dataset, path)
    back = read_netcdf(path, ["bootstrap", "null", "bootstrap_index"])
    xr.testing.assert_identical(back, dataset)


def test_rsa_table_same_seed_same_output_and_draws_shared(rng):
    reference, folds, candidates = small_problem(rng)
    kwargs = dict(n_bootstrap=40, n_permutations=49, seed=3)
    table, dataset = rsa.rsa_table(reference, folds, candidates, ["spearman"], **kwargs)
    table2, dataset2 = rsa.rsa_table(reference, folds, candidates, ["spearman"], **kwargs,
                                     n_threads=2)
    assert table.equals(table2)
    xr.testing.assert_identical(dataset, dataset2)
    # Adding a candidate or a method changes no other draw.
    more = {**candidates, "extra": random_rdm(rng, 12)}
    _, bigger = rsa.rsa_table(reference, folds, more, ["pearson", "spearman"], **kwargs)
    xr.testing.assert_identical(bigger["bootstrap_index"], dataset["bootstrap_index"])
    xr.testing.assert_identical(bigger["permutation_index"], dataset["permutation_index"])
    xr.testing.assert_identical(
        bigger["bootstrap"].sel(comparator=["spearman"], candidate=list(candidates)),
        dataset["bootstrap"])
    # Another seed, other draws.
    _, other = rsa.rsa_table(reference, folds, candidates, ["spearman"],
                             **{**kwargs, "seed": 4})
    assert not np.array_equal(other["bootstrap_index"], dataset["bootstrap_index"])


def test_rsa_table_without_folds_has_no_noise_ceiling(rng):
    reference, _, candidates = small_problem(rng)
    table, _ = rsa.rsa_table(reference, None, candidates, ["pearson"], n_bootstrap=10,
                             n_permutations=9, seed=0)
    assert table["noise_ceiling_lower"].isna().all()
    assert table["value_fold_mean"].isna().all()


# ---------------------------------------------------------------------------------- bad input


def test_rsa_table_refuses_fewer_conditions_than_it_can_test(rng):
    # 3 conditions: every bootstrap sample holds the same 3 pairs, so the CI would be the value
    for n in (3, 4):
        reference = random_rdm(rng, n)
        with pytest.raises(ValueError, match=f"{n} conditions; an RSA needs at least 5"):
            rsa.rsa_table(reference, None, {"c": random_rdm(rng, n)}, ["pearson"],
                          n_bootstrap=10, n_permutations=9, seed=0)
    reference = random_rdm(rng, rsa.MIN_RSA_CONDITIONS)
    table, _ = rsa.rsa_table(reference, None, {"c": random_rdm(rng, 5)}, ["pearson"],
                             n_bootstrap=200, n_permutations=9, seed=0)
    assert table["ci_low"].iloc[0] < table["ci_high"].iloc[0]


def test_bad_input_raises_a_clear_error(rng):
    reference = random_rdm(rng, 6)
    candidates = np.stack([random_rdm(rng, 6)])
    with pytest.raises(ValueError, match="unknown RDM comparison method"):
        rsa.compare_many(reference, candidates, "euclid")
    with pytest.raises(ValueError, match=r"reference: expected a square"):
        rsa.compare_many(reference[:5], candidates, "pearson")
    with pytest.raises(ValueError, match="not symmetric"):
        rsa.compare_many(reference + np.triu(np.ones((6, 6)), 1), candidates, "pearson")
    with pytest.raises(ValueError, match=r"candidates: RDMs of shape \(5, 5\)"):
        rsa.compare_many(reference, candidates[:, :5, :5], "pearson")
    with pytest.raises(ValueError, match="NaN"):
        rsa.compare_many(np.where(np.eye(6) > 0, np.nan, reference), candidates, "pearson")
    with pytest.raises(ValueError, match="n_folds ≥ 2"):
        rsa.noise_ceiling(reference[None], "pearson")
    with pytest.raises(ValueError, match="indices"):
        rsa.compare_resampled(reference, candidates, "pearson", np.full((3, 6), 6))
    with pytest.raises(ValueError, match="permutations"):
        rsa.permutation_null(reference, candidates, "pearson", np.zeros((2, 6), int))
    with pytest.raises(ValueError, match="x has 6 conditions but y has 5"):
        rsa.cka(np.ones((6, 2)), np.ones((5, 2)))


def test_cka_table_has_one_row_per_layer_equal_to_cka(rng):
    v1 = rng.normal(size=(12, 40))
    activations = {"net/seed0": xr.Dataset({"conv": (("condition", "conv_unit"),
                                                     rng.normal(size=(12, 50))),
                                            "out": (("condition", "out_unit"),
                                                    rng.normal(size=(12, 3)))})}
    table = rsa.cka_table(v1, activations)
    assert list(table["candidate"]) == ["net/seed0/conv", "net/seed0/out"]
    assert set(table["comparator"]) == {"cka"} and set(table["reference"]) == {"V1"}
    for row in table.itertuples():
        layer = row.candidate.split("/")[-1]
        assert row.value == pytest.approx(rsa.cka(v1, activations["net/seed0"][layer].values),
                                          rel=1e-12)
    with pytest.raises(ValueError, match="conditions"):
        rsa.cka_table(v1[:10], activations)


def test_a_layer_that_is_the_same_for_every_condition_has_no_cka(rng):
    """A network whose ReLUs never fire (it happens in a family sweep) must not stop the RSA."""
    v1 = rng.normal(size=(12, 40))
    dead = {"net/seed0": xr.Dataset({"out": (("condition", "out_unit"), np.full((12, 1), 0.2)),
                                     "fc": (("condition", "fc_unit"), rng.normal(size=(12, 4)))})}
    table = rsa.cka_table(v1, dead).set_index("candidate")["value"]
    assert np.isnan(table["net/seed0/out"]) and np.isfinite(table["net/seed0/fc"])
