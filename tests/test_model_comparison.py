"""Tests of model comparison: pairwise tests, tests against zero and the noise ceiling, seeds as a
source of variance, and groups of recordings (v1rsa.rsa.model_comparison, .seeds, .groups).

The numbers are checked against rsatoolbox 0.3.2's inference on the very draws it made
(``eval_bootstrap_pattern``, ``eval_dual_bootstrap``, ``Result.test_pairwise``, ``test_zero``,
``test_noise``, ``boot_noise_ceiling``), and against scipy's t distribution.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import correlation_rdm
from v1rsa import config_checks, rsa
from v1rsa.rsa import groups
from v1rsa.rsa.model_comparison import contrast_variances

rsatoolbox = pytest.importorskip("rsatoolbox")
import rsatoolbox.inference.evaluate as rsatoolbox_evaluate  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402


def noisy_rdms(rng, truth, noise, count):
    return np.stack([correlation_rdm(truth + noise * rng.normal(size=truth.shape))
                     for _ in range(count)])


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def record_draws(monkeypatch, name):
    """Wrap rsatoolbox's sampler ``name`` in its evaluate module to record what it drew."""
    draws = []
    original = getattr(rsatoolbox_evaluate, name)

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        draws.append(tuple(np.array(x) for x in out[1:]))
        return out

    monkeypatch.setattr(rsatoolbox_evaluate, name, recording)
    return draws


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm, and tau's "averaged ranks" warning
        return function(*args, **kwargs)


# ------------------------------------------------------------------------------ one factor


@pytest.mark.parametrize("method", rsa.METHODS)
def test_one_factor_tests_equal_rsatoolbox_eval_bootstrap_pattern(rng, monkeypatch, method):
    n, n_candidates = 14, 4
    truth = rng.normal(size=(n, 25))
    folds = noisy_rdms(rng, truth, 1.0, 3)
    candidates = noisy_rdms(rng, truth, 1.5, n_candidates)
    draws = record_draws(monkeypatch, "bootstrap_sample_pattern")
    np.random.seed(5)  # noqa: NPY002 (rsatoolbox draws from the global state)
    models = [ModelFixed(f"m{j}", c) for j, c in enumerate(candidates)]
    result = quietly(rsatoolbox_evaluate.eval_bootstrap_pattern, models, RDMs(folds),
                     method=rsa.RSATOOLBOX_METHODS[method], N=60, boot_noise_ceil=False)
    indices = np.array([d[0] for d in draws])
    # The data are the fold RDMs: the evaluation is the mean over folds.
    samples = np.mean([rsa.compare_resampled(fold, candidates, method, indices)
                       for fold in folds], axis=0)
    np.testing.assert_allclose(samples, result.evaluations, rtol=0, atol=1e-10)
    observed = np.mean([rsa.compare_many(fold, candidates, method) for fold in folds], axis=0)
    ours = rsa.BootstrapSamples.one_factor(samples, observed, n)
    a, b = np.triu_indices(n_candidates, 1)
    pairwise = rsa.test_pairwise(ours, a, b)
    np.testing.assert_allclose(pairwise["p"], result.test_pairwise()[a, b], rtol=0, atol=1e-10)
    np.testing.assert_allclose(pairwise["variance"], result.diff_var, rtol=0, atol=1e-12)
    zero = rsa.test_zero(ours)
    np.testing.assert_allclose(zero["p"], result.test_zero(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(zero["variance"], result.model_var, rtol=0, atol=1e-12)
    np.testing.assert_allclose(zero["mean"], result.get_means(), rtol=0, atol=1e-12)
    lower = rsa.noise_ceiling(folds, method)[0]
    np.testing.assert_allclose(lower, np.asarray(result.noise_ceiling)[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(rsa.test_noise(ours, lower)["p"], result.test_noise(), rtol=0,
                               atol=1e-10)


def test_p_values_keep_their_size_where_rsatoolbox_rounds_them_to_zero(rng, monkeypatch):
    # rsatoolbox computes p = 2 (1 − cdf(|t|)): beyond |t| ≈ 8 the cdf rounds to 1 and p to
    # exactly 0, so the strongest differences tie at p = 0 and lose their order. We take
    # 2 · sf(|t|), the same to 1e-10 but never 0. Two candidates far apart on 60 conditions:
    n = 60
    truth = rng.normal(size=(n, 40))
    reference = correlation_rdm(truth + 0.3 * rng.normal(size=truth.shape))
    candidates = np.stack([correlation_rdm(truth), correlation_rdm(rng.normal(size=truth.shape)),
                           correlation_rdm(truth + 2.0 * rng.normal(size=truth.shape))])
    draws = record_draws(monkeypatch, "bootstrap_sample_pattern")
    np.random.seed(1)  # noqa: NPY002
    result = quietly(rsatoolbox_evaluate.eval_bootstrap_pattern,
                     [ModelFixed(f"m{j}", c) for j, c in enumerate(candidates)],
                     RDMs(reference[None]), method="corr", N=200, boot_noise_ceil=False)
    samples = rsa.compare_resampled(reference, candidates, "pearson",
                                    np.array([d[0] for d in draws]))
    ours = rsa.test_pairwise(rsa.BootstrapSamples.one_factor(
        samples, rsa.compare_many(reference, candidates, "pearson"), n), [0, 0, 1], [1, 2, 2])
    theirs = result.test_pairwise()[[0, 0, 1], [1, 2, 2]]
    assert theirs[0] == 0.0 and theirs[1] == 0.0  # rsatoolbox: two ties at zero
    assert 0 < ours["p"][0] < ours["p"][1] < 1e-15  # ours: both tiny, and ordered
    np.testing.assert_allclose(ours["p"], theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours["p"], 2 * scipy.stats.t.sf(np.abs(ours["t"]), n - 1),
                               rtol=1e-12)


# ------------------------------------------------------------------------------ two factors


@pytest.mark.parametrize("method", rsa.METHODS)
def test_dual_bootstrap_equals_rsatoolbox_eval_dual_bootstrap(rng, monkeypatch, method):
    n, n_recordings, n_candidates = 11, 4, 3
    truth = rng.normal(size=(n, 20))
    references = noisy_rdms(rng, truth, 1.0, n_recordings)
    candidates = np.stack([correlation_rdm(truth + s * rng.normal(size=truth.shape))
                           for s in (0.5, 1.0, 2.0)])
    draws = record_draws(monkeypatch, "bootstrap_sample")
    np.random.seed(3)  # noqa: NPY002
    result = quietly(rsatoolbox_evaluate.eval_dual_bootstrap,
                     [ModelFixed(f"m{j}", c) for j, c in enumerate(candidates)],
                     RDMs(references), method=rsa.RSATOOLBOX_METHODS[method], N=50)
    recording_indices = np.array([d[0] for d in draws])
    condition_indices = np.array([d[1] for d in draws])
    assert (np.count_nonzero(np.diff(np.sort(recording_indices), axis=1), axis=1) == 0).any(), \
        "some draw should hold a single distinct recording (lower = upper bound)"
    ours = groups.dual_bootstrap(references, candidates, method, recording_indices,
                                 condition_indices)
    samples = ours["samples"]
    for kind, theirs in zip(groups.KINDS, np.moveaxis(result.evaluations[:, :, 0, 0], -1, 0),
                            strict=True):
        np.testing.assert_array_equal(np.isnan(getattr(samples, kind)), np.isnan(theirs))
        np.testing.assert_allclose(getattr(samples, kind), theirs, rtol=0, atol=1e-10)
    ceilings = np.moveaxis(result.noise_ceiling[:, :, 0], -1, 0)  # (kind, bound, sample)
    np.testing.assert_allclose(ours["ceiling"], np.swapaxes(ceilings, 1, 2), rtol=0, atol=1e-10)
    a, b = np.triu_indices(n_candidates, 1)
    np.testing.assert_allclose(samples.means(), result.get_means(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(contrast_variances(samples, np.arange(n_candidates)),
                               result.model_var, rtol=0, atol=1e-12)
    np.testing.assert_allclose(contrast_variances(samples, a, b), result.diff_var, rtol=0,
                               atol=1e-12)
    lower_samples = ours["ceiling"][:, :, 0]
    np.testing.assert_allclose(
        contrast_variances(samples, np.arange(n_candidates), ceiling=lower_samples),
        result.noise_ceil_var[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rsa.test_pairwise(samples, a, b)["p"],
                               result.test_pairwise()[a, b], rtol=0, atol=1e-10)
    np.testing.assert_allclose(rsa.test_zero(samples)["p"], result.test_zero(), rtol=0,
                               atol=1e-10)
    noise = rsa.test_noise(samples, np.nan, ceiling_samples=lower_samples)
    np.testing.assert_allclose(noise["p"], result.test_noise(), rtol=0, atol=1e-10)
    # the multi-subject noise ceiling on all the data
    np.testing.assert_allclose(
        rsa.noise_ceiling(references, method),
        quietly(rsatoolbox.inference.boot_noise_ceiling, RDMs(references),
                method=rsa.RSATOOLBOX_METHODS[method]), rtol=0, atol=1e-10)


def test_dual_bootstrap_variance_is_rsatoolbox_small_sample_formula():
    from rsatoolbox.util.inference_util import _dual_bootstrap

    rng = np.random.default_rng(0)
    variances = rng.uniform(0.01, 1.0, size=(3, 50))
    ours = rsa.dual_bootstrap_variance(*variances, 6, 40)
    np.testing.assert_allclose(ours, _dual_bootstrap(variances, 6, 40), rtol=1e-14)
    # one recording (or seed): the one-factor estimate n/(n − 1) · v_pattern
    np.testing.assert_allclose(rsa.dual_bootstrap_variance(*variances, 1, 40),
                               40 / 39 * variances[2], rtol=1e-14)


# -------------------------------------------------------------------------------------- seeds


def test_seed_mean_is_rsatoolbox_dual_bootstrap_with_seeds_as_subjects(rng, monkeypatch):
    # A layer's mean over seeds, compared with V1: Pearson is symmetric, so rsatoolbox's dual
    # bootstrap with V1 as the fixed model and the seeds' RDMs as the "subjects" draws the same
    # samples; its variance and test against zero must be ours.
    n, n_seeds = 16, 4
    truth = rng.normal(size=(n, 30))
    reference = correlation_rdm(truth + rng.normal(size=truth.shape))
    seed_rdms = noisy_rdms(rng, truth, 1.2, n_seeds)
    draws = record_draws(monkeypatch, "bootstrap_sample")
    np.random.seed(2)  # noqa: NPY002
    result = quietly(rsatoolbox_evaluate.eval_dual_bootstrap, [ModelFixed("v1", reference)],
                     RDMs(seed_rdms), method="corr", N=80)
    seed_indices = np.array([d[0] for d in draws])
    condition_indices = np.array([d[1] for d in draws])
    names = [f"net/seed{s}/pool" for s in range(n_seeds)]
    units = rsa.units_of(names)
    assert units.names == ["net/pool"] and units.networks == ["net"]
    samples = rsa.compare_resampled(reference, seed_rdms, "pearson", condition_indices)
    ours, observed = rsa.seeds.unit_samples(units, samples,
                                            rsa.compare_many(reference, seed_rdms, "pearson"),
                                            {"net": seed_indices}, n)
    for kind, theirs in zip(groups.KINDS, np.moveaxis(result.evaluations[:, :, 0, 0], -1, 0),
                            strict=True):
        np.testing.assert_allclose(getattr(ours, kind), theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rsa.test_zero(ours)["variance"], result.model_var, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(rsa.test_zero(ours)["p"], result.test_zero(), rtol=0, atol=1e-10)
    assert observed[0] == pytest.approx(np.mean(rsa.compare_many(reference, seed_rdms,
                                                                 "pearson")))


def test_seeds_spread_widens_the_uncertainty_of_an_architecture(rng):
    # Two layers of a network with 5 seeds: where the seeds agree the seed mean is as certain
    # as one seed; where they scatter, its variance adds the seeds' spread to the conditions'.
    n = 30
    truth = rng.normal(size=(n, 30))
    reference = correlation_rdm(truth + rng.normal(size=truth.shape))
    agree = np.stack([correlation_rdm(truth + 1.0 * rng.normal(size=truth.shape))] * 5)
    scatter = np.stack([correlation_rdm(truth + s * rng.normal(size=truth.shape))
                        for s in (0.3, 0.8, 1.5, 2.5, 4.0)])
    candidates = {f"net/seed{s}/{layer}": rdms[s] for s in range(5)
                  for layer, rdms in (("agree", agree), ("scatter", scatter))}
    candidates["single/seed0/only"] = agree[0]
    table, dataset = rsa.rsa_table(reference, None, candidates, ["pearson"], n_bootstrap=400,
                                   n_permutations=9, seed=0)
    means = table[table["n_seeds"] > 1].set_index("candidate")
    assert list(means.index) == ["net/agree", "net/scatter"]
    assert (means["n_seeds"] == 5).all()
    single = table.set_index("candidate").loc["single/seed0/only"]
    units, unit, _ = rsa.table.comparison_units(dataset, "pearson")
    variance = dict(zip(units.names, contrast_variances(unit, np.arange(len(units.names))),
                        strict=True))
    assert variance["net/agree"] == pytest.approx(variance["single/seed0/only"], rel=0.05)
    scatter_unit = units.names.index("net/scatter")
    conditions_only = contrast_variances(rsa.BootstrapSamples.one_factor(
        unit.pattern[:, [scatter_unit]], 0.0, n), [0])[0]
    values = [rsa.compare(reference, scatter[s], "pearson") for s in range(5)]
    seeds_only = np.var(values, ddof=1) / 5
    assert variance["net/scatter"] > conditions_only + 0.5 * seeds_only
    assert means.loc["net/scatter", "value"] == pytest.approx(np.mean(values), abs=1e-12)
    assert single["n_seeds"] == 1 and not np.isnan(single["p_zero"])


def test_seed_draws_are_per_network_and_stable():
    names = [f"{net}/seed{s}/{layer}" for net in ("a", "b") for s in (1, 2, 3)
             for layer in ("x", "y")]
    units = rsa.units_of(names)
    draws = rsa.seeds.draw_seeds(units, 50, seed=7)
    assert set(draws) == {"a", "b"} and draws["a"].shape == (50, 3)
    assert not np.array_equal(draws["a"], draws["b"])
    more = rsa.seeds.draw_seeds(rsa.units_of(names + ["c/seed0/x", "c/seed1/x"]), 50, seed=7)
    np.testing.assert_array_equal(more["a"], draws["a"])  # adding a network changes no draw
    with pytest.raises(ValueError, match="a/y has no RDM for seed"):
        rsa.units_of([n for n in names if n != "a/seed2/y"])


# ------------------------------------------------------------------------------ pair choice


def test_comparison_pairs_all_or_best_and_neighbours():
    names = ["n/seed0/conv", "n/seed0/pool", "n/seed0/fc", "m/seed0/conv", "m/seed0/fc"]
    values = np.array([0.2, 0.7, 0.5, 0.9, 0.1])
    every = rsa.comparison_pairs(names, values, max_all_pairs=5,
                                 instances=[n.rsplit("/", 1)[0] for n in names])
    assert len(every) == 10 and set(every["kind"]) == {"all_pairs"}
    chosen = rsa.comparison_pairs(names, values, max_all_pairs=4,
                                  instances=[n.rsplit("/", 1)[0] for n in names])
    pairs = {(names[a], names[b]): kind for a, b, kind in chosen.itertuples(index=False)}
    best = "m/seed0/conv"
    assert {p for p, k in pairs.items() if "vs_best" in k} == {(best, n) for n in names
                                                              if n != best}
    assert pairs[("n/seed0/conv", "n/seed0/pool")] == "neighbour_layers"
    assert pairs[("n/seed0/pool", "n/seed0/fc")] == "neighbour_layers"
    assert pairs[(best, "m/seed0/fc")] == "vs_best+neighbour_layers"
    assert len(pairs) == 4 + 2


def test_pairwise_table_of_an_rsa_run(rng):
    n = 20
    truth = rng.normal(size=(n, 30))
    folds = noisy_rdms(rng, truth, 1.0, 2)
    reference = folds.mean(axis=0)
    candidates = {f"net/seed{s}/{layer}": correlation_rdm(truth + noise * rng.normal(
        size=truth.shape)) for s in (1, 2, 3) for layer, noise in (("good", 0.5), ("bad", 3.0))}
    table, dataset = rsa.rsa_table(reference, folds, candidates, ["pearson", "spearman"],
                                   n_bootstrap=200, n_permutations=19, seed=1)
    pairwise = rsa.pairwise_from_dataset(dataset, max_all_pairs=20)
    assert list(pairwise["comparator"]) == ["pearson", "spearman"]
    row = pairwise.iloc[0]
    assert (row["candidate_a"], row["candidate_b"]) == ("net/good", "net/bad")
    assert row["n_seeds_a"] == 3 and row["dof"] == 2
    means = table[table["n_seeds"] == 3].set_index(["comparator", "candidate"])
    assert row["difference"] == pytest.approx(means.loc[("pearson", "net/good"), "value"]
                                              - means.loc[("pearson", "net/bad"), "value"])
    # three seeds: t with 2 degrees of freedom (rsatoolbox's min(R, n) − 1), so a clear
    # difference still has a modest p
    assert row["ci_low"] > 0 and row["t"] > 2
    assert row["p"] == pytest.approx(2 * scipy.stats.t.sf(row["t"], 2))
    assert row["q"] == row["p"]  # one comparison per comparator


# ------------------------------------------------------------------------------ groups


def group_recordings(rng, n=12, n_recordings=4, noise=(0.8, 1.0, 1.2, 1.5)):
    truth = rng.normal(size=(n, 25))
    candidates = {"net/seed0/a": correlation_rdm(truth + 0.7 * rng.normal(size=truth.shape)),
                  "net/seed0/b": correlation_rdm(truth + 2.0 * rng.normal(size=truth.shape))}
    recordings = {}
    for r in range(n_recordings):
        folds = noisy_rdms(rng, truth, noise[r] * 1.4, 2)
        recordings[f"mouse{r}"] = {"rdm": folds.mean(axis=0), "folds": folds,
                                   "candidates": candidates}
    return recordings


def test_group_table_rows_and_ceilings(rng):
    recordings = group_recordings(rng)
    table, per_recording, pairwise, dataset = groups.group_table(
        recordings, ["pearson", "spearman"], n_bootstrap=100, seed=0)
    assert len(table) == 4 and len(per_recording) == 16 and len(pairwise) == 2
    references = np.stack([r["rdm"] for r in recordings.values()])
    for method in ("pearson", "spearman"):
        rows = table[table["comparator"] == method].set_index("candidate")
        dots = per_recording[per_recording["comparator"] == method]
        for name in ("net/seed0/a", "net/seed0/b"):
            values = [rsa.compare(r["rdm"], r["candidates"][name], method)
                      for r in recordings.values()]
            assert rows.loc[name, "value"] == pytest.approx(np.mean(values), abs=1e-12)
            np.testing.assert_allclose(dots[dots["candidate"] == name]["value"], values)
        lower, upper = rsa.noise_ceiling(references, method)
        assert rows["noise_ceiling_lower"].iloc[0] == pytest.approx(lower)
        assert rows["noise_ceiling_upper"].iloc[0] == pytest.approx(upper)
        folds = [rsa.noise_ceiling(r["folds"], method) for r in recordings.values()]
        assert rows["fold_ceiling_lower"].iloc[0] == pytest.approx(np.mean(folds, axis=0)[0])
    assert dataset["bootstrap"].dims == ("comparator", "kind", "sample", "candidate")
    assert set(pairwise["n_recordings_a"]) == {4}


def test_group_needs_two_recordings_with_the_same_candidates(rng):
    recordings = group_recordings(rng)
    one = dict(list(recordings.items())[:1])
    with pytest.raises(ValueError, match="at least 2 recordings"):
        groups.group_table(one, ["pearson"], n_bootstrap=10, seed=0)
    broken = {**recordings, "mouse3": {**recordings["mouse3"], "candidates": {
        "net/seed0/a": recordings["mouse3"]["candidates"]["net/seed0/a"]}}}
    with pytest.raises(ValueError, match=r"mouse3: candidates differ .* missing \['net/seed0/b'\]"):
        groups.group_table(broken, ["pearson"], n_bootstrap=10, seed=0)
    smaller = {**recordings, "mouse2": {**recordings["mouse2"],
                                        "rdm": recordings["mouse2"]["rdm"][:10, :10]}}
    with pytest.raises(ValueError, match="mouse2: V1 RDM has 10 conditions"):
        groups.group_table(smaller, ["pearson"], n_bootstrap=10, seed=0)
    with pytest.raises(ValueError, match="different conditions"):
        groups.check_same_conditions({"a": {"orientation": np.arange(5.0)},
                                      "b": {"orientation": np.arange(6.0)}})


def test_group_per_recording_candidates_and_reproducible_draws(rng):
    recordings = group_recordings(rng)
    # A network trained per recording has its own RDM in each.
    own = {name: {**r, "candidates": {k: v + 0.01 * i for k, v in r["candidates"].items()}}
           for i, (name, r) in enumerate(recordings.items())}
    table, _, _, dataset = groups.group_table(own, ["pearson"], n_bootstrap=60, seed=4)
    again = groups.group_table(own, ["pearson"], n_bootstrap=60, seed=4, n_threads=2)
    pd.testing.assert_frame_equal(table, again[0])
    np.testing.assert_array_equal(dataset["bootstrap"], again[3]["bootstrap"])
    values = [rsa.compare(r["rdm"], r["candidates"]["net/seed0/b"], "pearson")
              for r in own.values()]
    assert table.set_index("candidate").loc["net/seed0/b", "value"] == pytest.approx(
        np.mean(values))


def groups_config(**groups):
    config = {"binning": {"bin_width_deg": 6},
              "datasets": {"a": {"layout": "raw"}, "b": {"layout": "raw_hdf5"},
                           "c": {"layout": "oribinned1"}, "d": {"layout": "oribinned6_split"}},
              "groups": groups}
    return config


@pytest.mark.parametrize(("group", "message"), [
    ({"datasets": ["a"]}, r"groups.g.datasets: a group needs at least two recordings"),
    ({"datasets": ["a", "x"]}, r"groups.g.datasets: \['x'\] are not keys of datasets"),
    ({"datasets": ["a", "c"]},
     r"groups.g.datasets: the recordings of a group must share their stimulus conditions, but "
     r"they are binned differently \(a: raw in 6° bins, c: oribinned1 in 1° bins\)"),
    ({"datasets": ["a", "b"], "networks": ["normative", "resnet"]},
     r"groups.g.networks: \['resnet'\] are not networks of this workflow"),
], ids=["one recording", "unknown dataset", "different conditions", "unknown network"])
def test_bad_groups_are_refused_naming_the_key(group, message):
    with pytest.raises(ValueError, match=r"^config: " + message):
        config_checks.check_groups_config(groups_config(g=group), ["normative", "encoder"])
    # single trials binned like a course file of the same bins make a valid group
    config_checks.check_groups_config(groups_config(g={"datasets": ["a", "b", "d"]}), ["normative"])


# ------------------------------------------------------------------------------ calibration


def null_data(rng, n_conditions, noise_ratio=1.0, noise=2.0):
    """V1's RDM and two candidates' from the same random orientation tuning through independent
    noise; candidate B has noise_ratio times A's (1: equally close to V1 in expectation)."""
    angle = rng.uniform(0, 2 * np.pi, n_conditions)
    tuning = np.column_stack([np.cos(angle), np.sin(angle), np.cos(2 * angle), np.sin(2 * angle)])
    truth = tuning @ rng.normal(size=(4, 50))
    return [correlation_rdm(truth + scale * rng.normal(size=truth.shape))
            for scale in (noise, noise, noise * noise_ratio)]


def pairwise_p(rng, n_conditions, n_datasets, noise_ratio=1.0, n_bootstrap=100):
    p = []
    for _ in range(n_datasets):
        v1, a, b = null_data(rng, n_conditions, noise_ratio)
        candidates = np.stack([a, b])
        indices = rsa.draw_bootstrap_indices(n_conditions, n_bootstrap, rng)
        samples = rsa.BootstrapSamples.one_factor(
            rsa.compare_resampled(v1, candidates, "pearson", indices),
            rsa.compare_many(v1, candidates, "pearson"), n_conditions)
        p.append(rsa.test_pairwise(samples, [0], [1])["p"][0])
    return np.array(p)


def test_pairwise_p_values_are_uniform_under_the_null_and_the_test_has_power():
    # 180 conditions, as the default config's 0…180° in 1° bins: many small null data sets.
    # (bench/calibration.py prints the same for more data sets, conditions and comparators.)
    rng = np.random.default_rng(7)
    null = pairwise_p(rng, 180, 150)
    assert scipy.stats.kstest(null, "uniform").pvalue > 0.01
    assert 0.005 <= np.mean(null < 0.05) <= 0.1  # binomial 99 % range around 0.05
    # B 25 % noisier than A: found nearly always at this size
    assert np.mean(pairwise_p(rng, 180, 30, noise_ratio=1.25) < 0.05) >= 0.8


def test_pairwise_test_is_conservative_with_few_conditions():
    # With few conditions the bootstrap over conditions overestimates the variance of a pairwise
    # statistic: p-values pile up towards 1, never below their nominal rate.
    rng = np.random.default_rng(8)
    null = pairwise_p(rng, 20, 150)
    assert np.mean(null < 0.05) <= 0.05
    assert np.mean(null) > 0.55


def test_too_few_valid_samples_give_nan_not_warnings(rng):
    samples = rsa.BootstrapSamples.one_factor(np.array([[0.5, 0.4], [np.nan, np.nan]]),
                                              [0.5, 0.4], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(rsa.test_pairwise(samples, [0], [1])["p"]).all()
        assert np.isnan(rsa.test_zero(samples)["p"]).all()
