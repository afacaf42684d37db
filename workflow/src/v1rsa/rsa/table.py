"""The RSA table: every candidate against the reference, per comparator, with statistics."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from v1rsa.rsa._arrays import _check_candidates, _check_method, _check_rdm, _upper
from v1rsa.rsa.bootstrap import compare_resampled, confidence_interval, draw_bootstrap_indices
from v1rsa.rsa.ceiling import noise_ceiling
from v1rsa.rsa.comparators import (
    _centred_gram,
    _check_activations,
    _cka_from_grams,
    _compare_rows_each,
)
from v1rsa.rsa.model_comparison import (
    BootstrapSamples,
    comparison_pairs,
    pairwise_table,
    test_noise,
    test_zero,
)
from v1rsa.rsa.permutation import draw_permutations, fdr_bh, permutation_null, permutation_p_value
from v1rsa.rsa.seeds import draw_seeds, unit_samples, units_of

#: fewest conditions an RSA gives a meaningful answer on: with 3, every bootstrap sample of
#: conditions holds the same 3 pairs (the CI collapses to the value), and 4 conditions have
#: 4! = 24 orderings, too few for the permutation test to reach p < 0.05
MIN_RSA_CONDITIONS = 5

log = logging.getLogger(__name__)


def rsa_table(
    reference_rdm,
    reference_folds,
    candidates: Mapping[str, np.ndarray],
    methods: Sequence[str],
    *,
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    ci_level: float = 0.95,
    reference_name: str = "V1",
    n_threads: int = 1,
) -> tuple[pd.DataFrame, xr.Dataset]:
    """Compare candidate RDMs with the reference RDM by each method, with CI, p, q, tests against
    zero and the noise ceiling, and seed means.

    reference_rdm: (n, n); reference_folds: (n_folds, n, n) fold RDMs, or None when the source has
    no folds (noise ceiling NaN); candidates: name → (n, n) RDM; methods: names in
    :data:`METHODS`. Random draws: ``SeedSequence(seed).spawn(2)`` gives one generator for the
    bootstrap indices and one for the permutations, both shared by all candidates and methods,
    and each network with several seeds draws its seeds from its own stream
    (:func:`v1rsa.rsa.seeds.draw_seeds`), so adding a candidate or a method changes no other draw.

    Returns a tidy table with one row per (reference, candidate, comparator) — columns
    reference, candidate, comparator, value, ci_low, ci_high, p (one-sided permutation), q (BH
    across candidates within a comparator), p_zero (rsatoolbox's ``test_zero`` on the bootstrap
    of ``value``), noise_ceiling_lower, noise_ceiling_upper, value_fold_mean (mean comparison
    with each fold's RDM: what the ceiling bounds), p_noise (rsatoolbox's ``test_noise`` of
    ``value_fold_mean`` against the lower bound, on its own bootstrap, the ceiling held fixed),
    n_seeds, n_conditions, n_bootstrap, n_permutations, seed, ci_level. Networks with several
    seeds add a row per layer, ``{network}/{layer}``, for the mean over seeds, its uncertainty
    from seeds and conditions resampled together (:mod:`v1rsa.rsa.seeds`); its p tests the
    seeds' mean null, and q corrects across these rows. The Dataset holds the same numbers plus
    the bootstrap samples, the permutation nulls and the drawn indices and seeds.
    """
    methods = [_check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods: expected at least one comparison method")
    if not candidates:
        raise ValueError("candidates: expected at least one candidate RDM")
    reference_rdm = _check_rdm(reference_rdm, "reference_rdm")
    n = reference_rdm.shape[0]
    if n < MIN_RSA_CONDITIONS:
        raise ValueError(f"reference_rdm: {n} conditions; an RSA needs at least "
                         f"{MIN_RSA_CONDITIONS} (fewer give no bootstrap spread and no permutation "
                         "p below 0.05): keep more conditions or use narrower bins")
    names = [str(name) for name in candidates]
    stack = np.stack([np.asarray(candidates[name], dtype=np.float64) for name in candidates])
    stack = _check_candidates(stack, n, "candidates")
    ys = _upper(stack)
    if reference_folds is not None:
        reference_folds = np.asarray(reference_folds, dtype=np.float64)
        if reference_folds.ndim != 3 or reference_folds.shape[1:] != (n, n):
            raise ValueError(f"reference_folds: expected (n_folds, {n}, {n}), got shape "
                             f"{reference_folds.shape}")
    references = reference_rdm[None] if reference_folds is None else np.concatenate(
        [reference_rdm[None], reference_folds])
    bootstrap_seed, permutation_seed = np.random.SeedSequence(seed).spawn(2)
    indices = draw_bootstrap_indices(n, n_bootstrap, np.random.default_rng(bootstrap_seed))
    permutations = draw_permutations(n, n_permutations, np.random.default_rng(permutation_seed))
    units = units_of(names)
    seed_draws = draw_seeds(units, n_bootstrap, seed)
    seed_means = units.seed_means()

    k, n_methods = len(names), len(methods)
    per_method = {key: np.full((n_methods, k), np.nan) for key in
                  ("value", "ci_low", "ci_high", "p", "q", "p_zero", "value_fold_mean",
                   "p_noise")}
    per_seed_mean = {key: np.full((n_methods, len(seed_means)), np.nan) for key in per_method}
    ceiling = np.full((n_methods, 2), np.nan)
    samples = np.empty((n_methods, n_bootstrap, k))
    fold_samples = np.full((n_methods, n_bootstrap, k), np.nan)
    nulls = np.empty((n_methods, n_permutations, k))
    for i, method in enumerate(methods):
        # the value and each fold's, from the candidates ranked (for Spearman) once
        value, *fold_values = _compare_rows_each(
            [_upper(reference_rdm)[None]] + ([] if reference_folds is None
                                             else [_upper(reference_folds)]), ys, method)
        value = value[0]
        # V1's RDM and its fold RDMs on the same draws, in one pass over the candidates
        resampled = compare_resampled(references, stack, method, indices, n_threads=n_threads)
        samples[i] = resampled[:, 0]
        nulls[i] = permutation_null(reference_rdm, stack, method, permutations,
                                    n_threads=n_threads)
        per_method["value"][i] = value
        if reference_folds is not None:
            ceiling[i] = noise_ceiling(reference_folds, method)
            per_method["value_fold_mean"][i] = fold_values[0].mean(axis=0)
            fold_samples[i] = resampled[:, 1:].mean(axis=1)
        rows = _statistics(BootstrapSamples.one_factor(samples[i], value, n),
                           BootstrapSamples.one_factor(fold_samples[i],
                                                       per_method["value_fold_mean"][i], n),
                           value, nulls[i], ceiling[i, 0], ci_level)
        for key, values in rows.items():
            per_method[key][i] = values
        if len(seed_means):
            unit, unit_value = unit_samples(units, samples[i], value, seed_draws, n)
            fold_unit, fold_unit_value = unit_samples(
                units, fold_samples[i], per_method["value_fold_mean"][i], seed_draws, n)
            unit_nulls = np.stack([nulls[i][:, members].mean(axis=1)
                                   for members in units.members], axis=1)
            rows = _statistics(unit.take(seed_means), fold_unit.take(seed_means),
                               unit_value[seed_means], unit_nulls[:, seed_means],
                               ceiling[i, 0], ci_level)
            rows["value_fold_mean"] = fold_unit_value[seed_means]
            for key, values in rows.items():
                per_seed_mean[key][i] = values

    comparator_candidate = ("comparator", "candidate")
    draw_networks = list(seed_draws)
    max_seeds = max((draws.shape[1] for draws in seed_draws.values()), default=0)
    seed_draw = np.full((len(draw_networks), n_bootstrap, max_seeds), -1, dtype=np.int32)
    for j, network in enumerate(draw_networks):
        seed_draw[j, :, :seed_draws[network].shape[1]] = seed_draws[network]
    dataset = xr.Dataset(
        {
            **{key: (comparator_candidate, values) for key, values in per_method.items()},
            **{f"seed_mean_{key}": (("comparator", "seed_mean"), values)
               for key, values in per_seed_mean.items()},
            "seed_mean_n_seeds": ("seed_mean", units.n_seeds[seed_means]),
            "noise_ceiling_lower": ("comparator", ceiling[:, 0]),
            "noise_ceiling_upper": ("comparator", ceiling[:, 1]),
            "bootstrap": (("comparator", "sample", "candidate"), samples),
            "bootstrap_fold": (("comparator", "sample", "candidate"), fold_samples),
            "null": (("comparator", "permutation", "candidate"), nulls),
            "bootstrap_index": (("sample", "draw"), indices.astype(np.int32)),
            "permutation_index": (("permutation", "condition"), permutations.astype(np.int32)),
            "seed_draw": (("seed_network", "sample", "seed_slot"), seed_draw),
        },
        coords={
            "comparator": list(methods),
            "candidate": names,
            "seed_mean": [units.names[u] for u in seed_means],
            "seed_network": draw_networks,
            "sample": np.arange(n_bootstrap),
            "permutation": np.arange(n_permutations),
            "draw": np.arange(n),
            "condition": np.arange(n),
        },
        attrs={
            "reference": reference_name,
            "seed": int(seed),
            "n_bootstrap": int(n_bootstrap),
            "n_permutations": int(n_permutations),
            "n_conditions": int(n),
            "ci_level": float(ci_level),
            "ci": "percentile interval of the bootstrap over conditions",
            "bootstrap": "conditions drawn with replacement (bootstrap_index); self-pairs "
                         "dropped, as rsatoolbox's eval_bootstrap_pattern",
            "bootstrap_fold": "the same draws, the comparison averaged over the reference's "
                              "fold RDMs (what the noise ceiling bounds)",
            "p": "one-sided permutation test: (1 + #{null >= value}) / (1 + n_permutations); "
                 "reference conditions relabelled by permutation_index",
            "q": "Benjamini-Hochberg across candidates within a comparator",
            "p_zero": "rsatoolbox test_zero (t-test, one-sided) on the bootstrap of value",
            "p_noise": "rsatoolbox test_noise (t-test, two-sided) of value_fold_mean against "
                       "noise_ceiling_lower, on bootstrap_fold, the ceiling held fixed",
            "noise_ceiling": "rsatoolbox boot_noise_ceiling over the reference's folds "
                             "(leave one fold out)",
            "seed_mean": "networks with several seeds: each layer's mean over seeds; seeds "
                         "drawn with replacement in every bootstrap sample (seed_draw, indices "
                         "into the network's seeds in order, -1 beyond its count), two-factor "
                         "variance of rsatoolbox's eval_dual_bootstrap",
            "random_draws": "numpy SeedSequence(seed).spawn(2): bootstrap, permutations; "
                            "seeds: SeedSequence(seed, spawn_key=(2, crc32(network)))",
        },
    )
    return tidy_table(dataset), dataset


def _statistics(samples: BootstrapSamples, fold_samples: BootstrapSamples, value, null,
                ceiling_lower: float, ci_level: float) -> dict[str, np.ndarray]:
    """CI, permutation p and q, and the tests against zero and the noise ceiling of K units."""
    rows = {"value": np.asarray(value, dtype=np.float64)}
    k = len(rows["value"])
    for key in ("ci_low", "ci_high", "p", "q", "p_zero", "p_noise"):
        rows[key] = np.full(k, np.nan)
    if samples.valid.any():
        rows["ci_low"], rows["ci_high"] = confidence_interval(samples.both, ci_level)
    if samples.valid.sum() > 1:
        rows["p_zero"] = test_zero(samples)["p"]
    if fold_samples.valid.sum() > 1 and np.isfinite(ceiling_lower):
        rows["p_noise"] = test_noise(fold_samples, ceiling_lower)["p"]
    if len(null):
        rows["p"] = permutation_p_value(value, null)
        rows["q"] = fdr_bh(rows["p"])
    return rows


def tidy_table(dataset: xr.Dataset) -> pd.DataFrame:
    """The tidy table of :func:`rsa_table`'s Dataset: one row per (reference, candidate,
    comparator), comparators in order, candidates in order within each, then the seed means."""
    columns = ["value", "ci_low", "ci_high", "p", "q", "p_zero", "noise_ceiling_lower",
               "noise_ceiling_upper", "value_fold_mean", "p_noise"]
    candidate_columns = [c for c in columns if not c.startswith("noise_ceiling")]
    tables = []
    for comparator in dataset["comparator"].values:
        chosen = dataset.sel(comparator=comparator)
        part = pd.DataFrame({"candidate": dataset["candidate"].values,
                             **{c: chosen[c].values for c in candidate_columns},
                             "n_seeds": 1})
        means = pd.DataFrame({"candidate": dataset["seed_mean"].values,
                              **{c: chosen[f"seed_mean_{c}"].values for c in candidate_columns},
                              "n_seeds": dataset["seed_mean_n_seeds"].values})
        part = pd.concat([part, means], ignore_index=True) if len(means) else part
        part.insert(1, "comparator", str(comparator))
        for bound in ("noise_ceiling_lower", "noise_ceiling_upper"):
            part[bound] = float(chosen[bound])
        tables.append(part)
    table = pd.concat(tables, ignore_index=True).loc[:, ["candidate", "comparator", *columns,
                                                         "n_seeds"]]
    table.insert(0, "reference", dataset.attrs["reference"])
    for key in ("n_conditions", "n_bootstrap", "n_permutations", "seed", "ci_level"):
        table[key] = dataset.attrs[key]
    return table


def comparison_units(dataset: xr.Dataset, comparator: str, *, fold: bool = False):
    """The units of comparison of :func:`rsa_table`'s Dataset for one comparator: candidates of
    networks with one seed, and seed means. Returns (Units, BootstrapSamples, (U,) observed
    values); ``fold``: the comparison averaged over the reference's folds instead."""
    units = units_of([str(c) for c in dataset["candidate"].values])
    chosen = dataset.sel(comparator=comparator)
    samples = chosen["bootstrap_fold" if fold else "bootstrap"].values
    observed = chosen["value_fold_mean" if fold else "value"].values
    draws = {}
    for j, network in enumerate(dataset["seed_network"].values):
        draw = dataset["seed_draw"].values[j]
        draws[str(network)] = draw[:, :int((draw[0] >= 0).sum())] if len(draw) else draw
    unit, unit_value = unit_samples(units, samples, observed, draws,
                                    int(dataset.attrs["n_conditions"]))
    return units, unit, unit_value


def pairwise_from_dataset(dataset: xr.Dataset, *, max_all_pairs: int) -> pd.DataFrame:
    """Pairwise comparisons of the units of :func:`rsa_table`'s Dataset, per comparator.

    Units are the candidates of networks with one seed and the seed means of networks with
    several (:mod:`v1rsa.rsa.seeds`). Up to ``max_all_pairs`` units every pair is compared,
    beyond that every unit against the best one and each layer against the next
    (:func:`~v1rsa.rsa.model_comparison.comparison_pairs`). Columns: reference, comparator, then
    those of :func:`~v1rsa.rsa.model_comparison.pairwise_table` (``n_rdm_*`` named
    ``n_seeds_*``), n_conditions, n_bootstrap, seed, ci_level.
    """
    tables = []
    for comparator in dataset["comparator"].values:
        units, unit, unit_value = comparison_units(dataset, str(comparator))
        pairs = comparison_pairs(units.names, unit_value, max_all_pairs=max_all_pairs,
                                 instances=units.instances)
        part = pairwise_table(unit, units.names, unit_value, pairs,
                              ci_level=float(dataset.attrs["ci_level"]))
        part.insert(0, "comparator", str(comparator))
        tables.append(part)
    table = pd.concat(tables, ignore_index=True).rename(
        columns={"n_rdm_a": "n_seeds_a", "n_rdm_b": "n_seeds_b"})
    table.insert(0, "reference", dataset.attrs["reference"])
    for key in ("n_conditions", "n_bootstrap", "seed", "ci_level"):
        table[key] = dataset.attrs[key]
    return table


def network_candidates(network_rdms: Mapping[str, xr.Dataset]) -> dict[str, np.ndarray]:
    """Candidate RDMs named ``{network}/seed{seed}/{layer}`` from the RDM files of networks.

    network_rdms: ``{"{network}/seed{seed}": rdms/{network}/seed{seed}.nc}``, each with
    ``rdm(layer, condition, condition_)``.
    """
    candidates = {}
    for name, rdms in network_rdms.items():
        for layer in rdms["layer"].values:
            candidates[f"{name}/{layer}"] = rdms["rdm"].sel(layer=layer).values
    return candidates


def cka_table(v1_response, network_activations: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Linear CKA between V1 and each recorded layer: one row per candidate (NaN for a layer
    that is the same for every condition).

    v1_response: (n_conditions, n_neurons) trial averages of the same conditions the networks
    saw; network_activations: ``{"{network}/seed{seed}": activations/{network}/seed{seed}.nc}``.
    """
    v1_gram = _centred_gram(_check_activations(v1_response, "v1_response"))
    rows = []
    for name, activations in network_activations.items():
        for layer in activations.data_vars:
            values = _check_activations(activations[layer].values, layer)
            layer_gram = _centred_gram(values)
            if layer_gram.shape != v1_gram.shape:
                raise ValueError(f"{name}/{layer} has {layer_gram.shape[0]} conditions but V1 has "
                                 f"{v1_gram.shape[0]}")
            if (values != values[:1]).any():
                value = _cka_from_grams(v1_gram, layer_gram)
            else:  # e.g. a layer after ReLUs that never fire: no geometry to compare
                log.warning("%s/%s is the same for every condition: its CKA is NaN", name, layer)
                value = np.nan
            rows.append({"reference": "V1", "candidate": f"{name}/{layer}", "comparator": "cka",
                         "value": value})
    return pd.DataFrame(rows)


def split_candidate_names(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``network``, ``network_seed`` and ``layer`` columns from the candidate names
    ``{network}/seed{seed}/{layer}``, or ``{network}/{layer}`` for a mean over seeds (its
    ``network_seed`` is empty: pandas' nullable Int64)."""
    parts = table["candidate"].astype(str).str.extract(
        r"^(?P<network>.+?)(?:/seed(?P<network_seed>\d+))?/(?P<layer>[^/]+)$")
    return table.assign(network=parts["network"],
                        network_seed=pd.to_numeric(parts["network_seed"]).astype("Int64"),
                        layer=parts["layer"])
