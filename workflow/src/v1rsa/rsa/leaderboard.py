"""The leaderboard of many networks: task accuracy beside each layer's similarity with V1, and
each network's best layer chosen without inflating its score.

Picking a network's best layer by its similarity with V1 and then reporting that similarity
overstates it: the layer that fits the V1 RDM's noise best wins. Here the choice and the score
come from different data, V1's RDMs from disjoint trial folds (``rdms/v1.nc``, ``rdm_fold``): the
layer is chosen on one fold's RDM and scored on the others', for each fold in turn, and the scores
are averaged (:func:`cross_validated_best_layer`). Every similarity here is with one fold's RDM
(mean over folds), the quantity V1's noise ceiling bounds (:func:`v1rsa.rsa.noise_ceiling`), so
a score and the ceiling can be read side by side, and the normalised score is score / lower
bound of the ceiling (the share of what the noise in V1's data allows). docs/science.md#families.

Functions take numpy arrays and pandas tables; nothing here needs torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from v1rsa.rsa._arrays import _check_candidates, _check_method, _check_rdm
from v1rsa.rsa.ceiling import noise_ceiling
from v1rsa.rsa.comparators import compare_many

if TYPE_CHECKING:
    import xarray as xr

#: The similarity columns of each layer are named ``similarity_{layer}``.
SIMILARITY_PREFIX = "similarity_"


def fold_similarities(reference_folds, candidates, method: str) -> np.ndarray:
    """Each candidate's similarity with each fold's reference RDM: (n_folds, n_candidates).

    reference_folds: (n_folds, n, n) RDMs of disjoint trial folds; candidates: (k, n, n).
    """
    method = _check_method(method)
    reference_folds = np.asarray(reference_folds, dtype=np.float64)
    if reference_folds.ndim != 3 or reference_folds.shape[0] < 2:
        raise ValueError(f"reference_folds: expected (n_folds ≥ 2, n, n) fold RDMs, got shape "
                         f"{reference_folds.shape}")
    n = reference_folds.shape[1]
    candidates = _check_candidates(np.asarray(candidates, dtype=np.float64), n)
    return np.stack([compare_many(_check_rdm(fold, f"reference_folds[{i}]"), candidates, method)
                     for i, fold in enumerate(reference_folds)])


def cross_validated_best_layer(fold_values) -> tuple[np.ndarray, np.ndarray]:
    """Choose a layer on each fold, score it on the others.

    fold_values: (n_folds, n_layers) similarity of each layer with each fold's reference RDM.
    For fold f: the layer with the largest similarity with fold f (the first of equals), scored
    by its mean similarity with the other folds. Returns (choices (n_folds,) int layer indices,
    scores (n_folds,) float); the cross-validated score is ``scores.mean()``.
    """
    fold_values = np.asarray(fold_values, dtype=np.float64)
    if fold_values.ndim != 2 or fold_values.shape[0] < 2 or fold_values.shape[1] < 1:
        raise ValueError(f"fold_values: expected (n_folds ≥ 2, n_layers ≥ 1), got shape "
                         f"{fold_values.shape}")
    n_folds = fold_values.shape[0]
    choices = np.nanargmax(fold_values, axis=1)
    others = (fold_values.sum(axis=0, keepdims=True) - fold_values) / (n_folds - 1)
    scores = others[np.arange(n_folds), choices]
    return choices, scores


def _most_chosen(layers: Sequence[str], order: Sequence[str]) -> tuple[str, float]:
    """The layer chosen most often (ties: the shallower) and the share of choices it got."""
    counts = pd.Series(list(layers)).value_counts()
    best = min(counts[counts == counts.max()].index, key=list(order).index)
    return best, float(counts[best] / counts.sum())


def seed_rows(
    network_rdm: np.ndarray,
    layers: Sequence[str],
    reference_rdm,
    reference_folds,
    methods: Sequence[str],
) -> list[dict]:
    """One row per comparator for one trained network (one seed): each layer's similarity,
    the best layer in sample and cross-validated, and the noise ceiling.

    network_rdm: (n_layers, n, n), the network's ``rdm(layer, condition, condition_)``;
    reference_rdm: (n, n), V1's RDM of all trials; reference_folds: (n_folds, n, n), or None for
    a source without trial folds: the similarities are then with ``reference_rdm``, and the
    cross-validated columns and the noise ceiling NaN (there is nothing to choose on
    independently).
    """
    rows = []
    for method in methods:
        if reference_folds is None:
            mean = fold_similarities(np.stack([reference_rdm] * 2), network_rdm, method)[0]
            chosen, score = [], np.nan
            lower = upper = np.nan
        else:
            values = fold_similarities(reference_folds, network_rdm, method)
            choices, scores = cross_validated_best_layer(values)
            mean, score = values.mean(axis=0), float(scores.mean())
            chosen = [layers[i] for i in choices]
            lower, upper = noise_ceiling(reference_folds, method)
        best, share = _most_chosen(chosen, layers) if chosen else ("", np.nan)
        in_sample = int(np.nanargmax(mean))
        rows.append({
            "comparator": method,
            **{f"{SIMILARITY_PREFIX}{layer}": float(value)
               for layer, value in zip(layers, mean, strict=True)},
            "best_layer": best, "best_layer_share": share,
            "best_score": score,
            "best_score_normalised": score / lower if lower > 0 else np.nan,
            "in_sample_best_layer": layers[in_sample],
            "in_sample_best_score": float(mean[in_sample]),
            "noise_ceiling_lower": lower, "noise_ceiling_upper": upper,
            "chosen_layers": ",".join(chosen),
        })
    return rows


def seeds_table(network_rdms: Mapping[str, xr.Dataset], reference_rdm, reference_folds,
                methods: Sequence[str], metrics: Mapping[str, Mapping]) -> pd.DataFrame:
    """:func:`seed_rows` of every network and seed, with its task scores.

    network_rdms: ``{"{network}/seed{seed}": rdms/{network}/seed{seed}.nc}`` (``rdm(layer,
    condition, condition_)``); metrics: ``{"{network}/seed{seed}": metrics.json}`` of the
    networks trained on the tilt task (their held-out ``test_accuracy`` and ``test_loss``; NaN
    for the others). Returns one row per (network, seed, comparator).
    """
    rows = []
    for name, rdms in network_rdms.items():
        network, _, seed = name.rpartition("/seed")
        scores = metrics.get(name, {})
        for row in seed_rows(rdms["rdm"].values, [str(layer) for layer in rdms["layer"].values],
                             reference_rdm, reference_folds, methods):
            rows.append({"network": network, "seed": int(seed),
                         "test_accuracy": scores.get("test_accuracy", np.nan),
                         "test_loss": scores.get("test_loss", np.nan), **row})
    return pd.DataFrame(rows)


def _layer_columns(table: pd.DataFrame, layer_order: Sequence[str]) -> list[str]:
    columns = [c for c in table.columns if c.startswith(SIMILARITY_PREFIX)]
    rank = {f"{SIMILARITY_PREFIX}{layer}": i for i, layer in enumerate(layer_order)}
    return sorted(columns, key=lambda c: (rank.get(c, len(rank)), c))


def leaderboard_table(
    seeds: pd.DataFrame,
    networks: Mapping[str, Mapping],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leaderboard per network and per seed.

    seeds: one row per (network, seed, comparator): columns ``network``, ``seed``,
    ``comparator``, ``test_accuracy``, ``test_loss`` (NaN for a network without the tilt task)
    and those of :func:`seed_rows`. networks: ``{network: description}`` for family members
    (:meth:`v1rsa.families.Variant.describe`: family, variant, options, settings, untrained,
    layers); other networks get an empty family.

    Returns (per network, per seed). Per network: one row per (network, comparator) with the
    mean over seeds of the accuracy, of each layer's similarity and of the cross-validated best
    score (and its normalised share of the noise ceiling), their standard deviations over seeds
    (``*_sd``, ddof 1; NaN with one seed), ``n_seeds``, the layer chosen most often over seeds
    and folds, and ``rank`` within the comparator (1 = highest best score). Rows are ranked
    within each comparator, comparators in the order given. The options that any family varies
    are columns (each variant's value; NaN for other networks).
    """
    seeds = seeds.copy()
    comparators = list(dict.fromkeys(seeds["comparator"]))
    described = {name: dict(description) for name, description in networks.items()}
    option_names = list(dict.fromkeys(
        option for description in described.values() for option in description["options"]))
    similarity_columns = [c for c in seeds.columns if c.startswith(SIMILARITY_PREFIX)]
    layer_lists = [description["layers"] for description in described.values()]
    for network, rows in seeds.groupby("network", sort=False):
        if network not in described:
            layer_lists.append([c.removeprefix(SIMILARITY_PREFIX) for c in similarity_columns
                                if rows[c].notna().any()])
    # the deepest networks' order first (pool, pool2, fc before a shallower pool, fc)
    layer_order = list(dict.fromkeys(
        layer for layers in sorted(layer_lists, key=len, reverse=True) for layer in layers))
    layer_columns = _layer_columns(seeds, layer_order)

    def describe(network: str) -> dict:
        description = described.get(network)
        info = {"family": "", "variant": "", "untrained": False}
        if description:
            info = {key: description[key] for key in ("family", "variant", "untrained")}
        settings = description["settings"] if description else {}
        info.update({option: settings.get(option, np.nan) for option in option_names})
        return info

    info = pd.DataFrame([describe(network) for network in seeds["network"]], index=seeds.index)
    seeds = pd.concat([info, seeds], axis=1)
    first = ["family", "variant", "network", "seed", *option_names, "untrained",
             "test_accuracy", "test_loss", "comparator", *layer_columns]
    seeds = seeds[first + [c for c in seeds.columns if c not in first]]

    summary = []
    for _, rows in seeds.groupby(["network", "comparator"], sort=False):
        row = {key: rows.iloc[0][key] for key in ("family", "variant", "network", *option_names,
                                                  "untrained", "comparator")}
        row["n_seeds"] = len(rows)
        for column in ("test_accuracy", "test_loss", *layer_columns, "best_score",
                       "best_score_normalised", "in_sample_best_score"):
            values = rows[column].to_numpy(dtype=float)
            row[column] = float(np.mean(values)) if np.isfinite(values).any() else np.nan
            if column in ("test_accuracy", "best_score", "best_score_normalised"):
                row[f"{column}_sd"] = (float(np.std(values, ddof=1)) if len(values) > 1
                                       else np.nan)
        chosen = [layer for text in rows["chosen_layers"].fillna("") for layer in text.split(",")
                  if layer]
        order = [c.removeprefix(SIMILARITY_PREFIX) for c in layer_columns]
        row["best_layer"], row["best_layer_share"] = (_most_chosen(chosen, order) if chosen
                                                      else ("", np.nan))
        row["noise_ceiling_lower"] = rows["noise_ceiling_lower"].iloc[0]
        row["noise_ceiling_upper"] = rows["noise_ceiling_upper"].iloc[0]
        summary.append(row)
    table = pd.DataFrame(summary)
    table["comparator"] = pd.Categorical(table["comparator"], comparators, ordered=True)
    table = table.sort_values(["comparator", "best_score", "network"],
                              ascending=[True, False, True], kind="stable")
    table["comparator"] = table["comparator"].astype(str)
    table.insert(0, "rank", table.groupby("comparator").cumcount() + 1)
    settings = [description["settings"] for description in described.values()]
    return (_typed_options(table.reset_index(drop=True), option_names, settings),
            _typed_options(seeds.reset_index(drop=True), option_names, settings))


def _typed_options(table: pd.DataFrame, option_names: Sequence[str],
                   settings: Sequence[Mapping]) -> pd.DataFrame:
    """Option columns as integers or booleans where every family sets them so (empty for
    networks outside families), so that the table reads ``2``, not ``2.0``."""
    for option in option_names:
        values = [s[option] for s in settings if option in s]
        if values and all(isinstance(v, bool) for v in values):
            table[option] = table[option].astype("boolean")
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[option] = table[option].astype("Int64")
    return table


def rank_correlation(x, y, *, n_bootstrap: int = 2000, ci_level: float = 0.95,
                     seed: int = 0) -> dict:
    """Spearman's rank correlation of x and y (n,) over variants, with a percentile bootstrap
    interval over variants (pairs resampled together, scipy.stats.bootstrap).

    Returns ``{"rho", "ci_low", "ci_high", "n"}``: rho NaN with fewer than 3 finite pairs or
    constant values; the interval NaN when resamples of tied values (no rank correlation) are
    among the draws, as happens with few variants.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    result = {"rho": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": int(len(x))}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return result
    result["rho"] = float(scipy.stats.spearmanr(x, y).statistic)

    def statistic(a, b):
        return scipy.stats.spearmanr(a, b).statistic

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # a resample of tied values has no rank correlation (NaN): it widens nothing
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        interval = scipy.stats.bootstrap(
            (x, y), statistic, paired=True, vectorized=False, n_resamples=n_bootstrap,
            confidence_level=ci_level, method="percentile", rng=np.random.default_rng(seed),
        ).confidence_interval
    result["ci_low"], result["ci_high"] = float(interval.low), float(interval.high)
    return result
