"""v1rsa.rsa.leaderboard: the best layer chosen on one fold and scored on another, the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

from v1rsa import rsa
from v1rsa.rsa import leaderboard

N = 24  # conditions


def rdm_of(vector: np.ndarray) -> np.ndarray:
    """A symmetric (N, N) RDM with zero diagonal from its strict upper triangle."""
    rdm = np.zeros((N, N))
    rdm[np.triu_indices(N, 1)] = vector
    return rdm + rdm.T


def upper(rdm: np.ndarray) -> np.ndarray:
    return rdm[np.triu_indices(N, 1)]


@pytest.fixture(scope="module")
def noisy_v1():
    """V1's RDM from two trial folds, each the truth plus as much noise again."""
    rng = np.random.default_rng(0)
    n_pairs = N * (N - 1) // 2
    truth = rng.normal(size=n_pairs)
    folds = np.stack([rdm_of(truth + rng.normal(size=n_pairs)) for _ in range(2)])
    return rdm_of(truth), folds


def test_the_layer_is_chosen_on_one_fold_and_scored_on_the_other():
    # layer 0 fits fold 0 best, layer 1 fold 1; in sample, layer 1 wins (0.55 > 0.5)
    values = np.array([[0.9, 0.5], [0.1, 0.6]])
    choices, scores = leaderboard.cross_validated_best_layer(values)
    assert choices.tolist() == [0, 1]
    np.testing.assert_allclose(scores, [0.1, 0.5])  # each scored on the fold not chosen on
    assert scores.mean() == pytest.approx(0.3)  # in-sample selection would report 0.55
    three = np.array([[0.2, 0.8], [0.4, 0.1], [0.6, 0.3]])
    choices, scores = leaderboard.cross_validated_best_layer(three)
    assert choices.tolist() == [1, 0, 0]
    np.testing.assert_allclose(scores, [(0.1 + 0.3) / 2, (0.2 + 0.6) / 2, (0.2 + 0.4) / 2])


def test_a_layer_that_fits_one_folds_noise_wins_in_sample_but_not_cross_validated(noisy_v1):
    truth, folds = noisy_v1
    layers = np.stack([folds[0], truth])  # "overfit": fold 0 itself; "true": V1's mean RDM
    [row] = leaderboard.seed_rows(layers, ["overfit", "true"], folds.mean(axis=0), folds,
                                  ["pearson"])
    r = {(f, layer): scipy.stats.pearsonr(upper(folds[f]), upper(layers[i])).statistic
         for f in range(2) for i, layer in enumerate(["overfit", "true"])}
    assert r[0, "overfit"] == pytest.approx(1.0)
    assert row["similarity_overfit"] == pytest.approx((r[0, "overfit"] + r[1, "overfit"]) / 2)
    assert row["similarity_true"] == pytest.approx((r[0, "true"] + r[1, "true"]) / 2)
    assert row["in_sample_best_layer"] == "overfit"
    assert row["in_sample_best_score"] == pytest.approx(row["similarity_overfit"])
    # fold 0 picks "overfit" (r = 1), scored on fold 1; fold 1 picks "true", scored on fold 0
    assert row["chosen_layers"] == "overfit,true"
    assert row["best_score"] == pytest.approx((r[1, "overfit"] + r[0, "true"]) / 2)
    assert row["best_score"] < row["in_sample_best_score"] - 0.1
    lower, upper_bound = rsa.noise_ceiling(folds, "pearson")
    assert (row["noise_ceiling_lower"], row["noise_ceiling_upper"]) == (lower, upper_bound)
    assert row["best_score_normalised"] == pytest.approx(row["best_score"] / lower)
    assert row["best_layer"] == "overfit" and row["best_layer_share"] == 0.5  # tie: shallower


def test_fold_similarities_equal_scipy(noisy_v1):
    truth, folds = noisy_v1
    rng = np.random.default_rng(1)
    candidates = np.stack([rdm_of(upper(truth) + rng.normal(size=upper(truth).size))
                           for _ in range(3)])
    for method, reference in (("pearson", scipy.stats.pearsonr),
                              ("spearman", scipy.stats.spearmanr)):
        values = leaderboard.fold_similarities(folds, candidates, method)
        expected = [[reference(upper(fold), upper(c)).statistic for c in candidates]
                    for fold in folds]
        np.testing.assert_allclose(values, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="n_folds ≥ 2"):
        leaderboard.fold_similarities(folds[:1], candidates, "pearson")


def network(layers, rdms):
    return xr.Dataset({"rdm": (("layer", "condition", "condition_"), np.stack(rdms))},
                      coords={"layer": layers})


def test_the_table_averages_seeds_ranks_networks_and_names_their_options(noisy_v1):
    truth, folds = noisy_v1
    rng = np.random.default_rng(2)

    def near(scale):
        return rdm_of(upper(truth) + scale * rng.normal(size=upper(truth).size))

    rdms = {
        "fam-base/seed0": network(["pool", "fc"], [near(0.5), near(3.0)]),
        "fam-base/seed1": network(["pool", "fc"], [near(0.5), near(3.0)]),
        "fam-blocks2/seed0": network(["pool", "pool2", "fc"], [near(9.0), near(0.1), near(9.0)]),
        "encoder/seed0": network(["conv", "fc"], [near(5.0), near(5.0)]),
    }
    metrics = {"fam-base/seed0": {"test_accuracy": 0.9, "test_loss": 0.3},
               "fam-base/seed1": {"test_accuracy": 0.8, "test_loss": 0.4},
               "fam-blocks2/seed0": {"test_accuracy": 0.7, "test_loss": 0.5}}
    seeds = leaderboard.seeds_table(rdms, folds.mean(axis=0), folds, ["pearson", "spearman"],
                                    metrics)
    described = {
        "fam-base": {"family": "fam", "variant": "base", "options": {}, "untrained": False,
                     "settings": {"n_blocks": 1, "lr": 0.1}, "layers": ["pool", "fc"]},
        "fam-blocks2": {"family": "fam", "variant": "blocks2", "options": {"n_blocks": 2},
                        "untrained": False, "settings": {"n_blocks": 2, "lr": 0.1},
                        "layers": ["pool", "pool2", "fc"]},
    }
    table, per_seed = leaderboard.leaderboard_table(seeds, described)
    assert len(per_seed) == 8 and len(table) == 6
    assert list(per_seed.columns[:11]) == [
        "family", "variant", "network", "seed", "n_blocks", "untrained", "test_accuracy",
        "test_loss", "comparator", "similarity_pool", "similarity_pool2"]
    pearson = table[table["comparator"] == "pearson"].set_index("network")
    assert list(pearson.index) == ["fam-blocks2", "fam-base", "encoder"]  # by best score
    assert pearson["rank"].tolist() == [1, 2, 3]
    assert table["comparator"].tolist() == ["pearson"] * 3 + ["spearman"] * 3
    base = per_seed[(per_seed["network"] == "fam-base") & (per_seed["comparator"] == "pearson")]
    assert pearson.loc["fam-base", "test_accuracy"] == pytest.approx(0.85)
    assert pearson.loc["fam-base", "test_accuracy_sd"] == pytest.approx(np.std([0.9, 0.8],
                                                                               ddof=1))
    assert pearson.loc["fam-base", "best_score"] == pytest.approx(base["best_score"].mean())
    assert pearson.loc["fam-base", "best_score_sd"] == pytest.approx(
        base["best_score"].std(ddof=1))
    assert pearson.loc["fam-base", "n_seeds"] == 2
    assert np.isnan(pearson.loc["fam-blocks2", "best_score_sd"])  # one seed
    assert pearson.loc["fam-blocks2", "best_layer"] == "pool2"
    assert pearson.loc["fam-blocks2", "n_blocks"] == 2 and pearson.loc["fam-base", "n_blocks"] == 1
    assert str(pearson["n_blocks"].dtype) == "Int64"  # written as 2, not 2.0
    assert np.isnan(pearson.loc["fam-base", "similarity_pool2"])
    assert pearson.loc["encoder", "family"] == "" and pd.isna(pearson.loc["encoder", "n_blocks"])
    assert np.isnan(pearson.loc["encoder", "test_accuracy"])


def test_without_trial_folds_there_is_no_cross_validated_score(noisy_v1):
    truth, _ = noisy_v1
    seeds = leaderboard.seeds_table({"net/seed0": network(["a", "b"], [truth, truth * 0 + 1])},
                                    truth, None, ["pearson"], {})
    assert np.isnan(seeds["best_score"].iloc[0]) and seeds["best_layer"].iloc[0] == ""
    assert seeds["in_sample_best_layer"].iloc[0] == "a"
    table, _ = leaderboard.leaderboard_table(seeds, {})
    assert table["best_layer"].iloc[0] == "" and np.isnan(table["best_score"].iloc[0])


def test_the_rank_correlation_is_spearmans_with_a_bootstrap_interval_over_variants():
    rng = np.random.default_rng(3)
    accuracy = rng.uniform(0.5, 1.0, 30)
    similarity = accuracy + rng.normal(scale=0.1, size=30)
    result = leaderboard.rank_correlation(accuracy, similarity, seed=4)
    assert result["rho"] == pytest.approx(scipy.stats.spearmanr(accuracy, similarity).statistic)
    assert result["ci_low"] < result["rho"] < result["ci_high"] and result["n"] == 30
    assert leaderboard.rank_correlation(accuracy, similarity, seed=4) == result
    assert leaderboard.rank_correlation(accuracy, similarity, seed=5) != result
    assert np.isnan(leaderboard.rank_correlation([1.0, 2.0], [1.0, 3.0])["rho"])
    assert isinstance(pd.Series(result), pd.Series)
