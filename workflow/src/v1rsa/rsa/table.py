"""The RSA table: every candidate against the reference, per comparator, with statistics."""

from __future__ import annotations

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
    _compare_rows,
    compare_many,
)
from v1rsa.rsa.permutation import draw_permutations, fdr_bh, permutation_null, permutation_p_value

#: fewest conditions an RSA gives a meaningful answer on: with 3, every bootstrap sample of
#: conditions holds the same 3 pairs (the CI collapses to the value), and 4 conditions have
#: 4! = 24 orderings, too few for the permutation test to reach p < 0.05
MIN_RSA_CONDITIONS = 5


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
    """Compare candidate RDMs with the reference RDM by each method, with CI, p, q, noise ceiling.

    reference_rdm: (n, n); reference_folds: (n_folds, n, n) fold RDMs, or None when the source has
    no folds (noise ceiling NaN); candidates: name → (n, n) RDM; methods: names in
    :data:`METHODS`. Random draws: ``SeedSequence(seed).spawn(2)`` gives one generator for the
    bootstrap indices and one for the permutations, both shared by all candidates and methods,
    so adding a candidate or a method changes no other draw.

    Returns a tidy table with one row per (reference, candidate, comparator) — columns
    reference, candidate, comparator, value, ci_low, ci_high, p (one-sided permutation), q (BH
    across candidates within a comparator), noise_ceiling_lower, noise_ceiling_upper,
    value_fold_mean (mean comparison with each fold's RDM: what the ceiling bounds), n_conditions,
    n_bootstrap, n_permutations, seed, ci_level — and a Dataset holding the same numbers plus the
    bootstrap samples, the permutation nulls and the drawn indices.
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
    if reference_folds is not None:
        reference_folds = np.asarray(reference_folds, dtype=np.float64)
        if reference_folds.ndim != 3 or reference_folds.shape[1:] != (n, n):
            raise ValueError(f"reference_folds: expected (n_folds, {n}, {n}), got shape "
                             f"{reference_folds.shape}")
    bootstrap_seed, permutation_seed = np.random.SeedSequence(seed).spawn(2)
    indices = draw_bootstrap_indices(n, n_bootstrap, np.random.default_rng(bootstrap_seed))
    permutations = draw_permutations(n, n_permutations, np.random.default_rng(permutation_seed))

    k, n_methods = len(names), len(methods)
    per_method = {key: np.full((n_methods, k), np.nan) for key in
                  ("value", "ci_low", "ci_high", "p", "q", "value_fold_mean")}
    ceiling = np.full((n_methods, 2), np.nan)
    samples = np.empty((n_methods, n_bootstrap, k))
    nulls = np.empty((n_methods, n_permutations, k))
    for i, method in enumerate(methods):
        value = compare_many(reference_rdm, stack, method)
        samples[i] = compare_resampled(reference_rdm, stack, method, indices, n_threads=n_threads)
        nulls[i] = permutation_null(reference_rdm, stack, method, permutations,
                                    n_threads=n_threads)
        per_method["value"][i] = value
        if n_bootstrap:
            per_method["ci_low"][i], per_method["ci_high"][i] = confidence_interval(samples[i],
                                                                                    ci_level)
        if n_permutations:
            per_method["p"][i] = permutation_p_value(value, nulls[i])
            per_method["q"][i] = fdr_bh(per_method["p"][i])
        if reference_folds is not None:
            ceiling[i] = noise_ceiling(reference_folds, method)
            per_method["value_fold_mean"][i] = _compare_rows(
                _upper(reference_folds), _upper(stack), method).mean(axis=0)

    comparator_candidate = ("comparator", "candidate")
    dataset = xr.Dataset(
        {
            **{key: (comparator_candidate, values) for key, values in per_method.items()},
            "noise_ceiling_lower": ("comparator", ceiling[:, 0]),
            "noise_ceiling_upper": ("comparator", ceiling[:, 1]),
            "bootstrap": (("comparator", "sample", "candidate"), samples),
            "null": (("comparator", "permutation", "candidate"), nulls),
            "bootstrap_index": (("sample", "draw"), indices.astype(np.int32)),
            "permutation_index": (("permutation", "condition"), permutations.astype(np.int32)),
        },
        coords={
            "comparator": list(methods),
            "candidate": names,
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
            "p": "one-sided permutation test: (1 + #{null >= value}) / (1 + n_permutations); "
                 "reference conditions relabelled by permutation_index",
            "q": "Benjamini-Hochberg across candidates within a comparator",
            "noise_ceiling": "rsatoolbox boot_noise_ceiling over the reference's folds "
                             "(leave one fold out)",
            "random_draws": "numpy SeedSequence(seed).spawn(2): bootstrap, permutations",
        },
    )
    return tidy_table(dataset), dataset


def tidy_table(dataset: xr.Dataset) -> pd.DataFrame:
    """The tidy table of :func:`rsa_table`'s Dataset: one row per (reference, candidate,
    comparator), comparators in order and candidates in order within each."""
    columns = ["value", "ci_low", "ci_high", "p", "q", "noise_ceiling_lower",
               "noise_ceiling_upper", "value_fold_mean"]
    table = (dataset[columns].to_dataframe().reset_index()
             .loc[:, ["candidate", "comparator", *columns]])
    table.insert(0, "reference", dataset.attrs["reference"])
    for key in ("n_conditions", "n_bootstrap", "n_permutations", "seed", "ci_level"):
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
    """Linear CKA between V1 and each recorded layer: one row per candidate.

    v1_response: (n_conditions, n_neurons) trial averages of the same conditions the networks
    saw; network_activations: ``{"{network}/seed{seed}": activations/{network}/seed{seed}.nc}``.
    """
    v1_gram = _centred_gram(_check_activations(v1_response, "v1_response"))
    rows = []
    for name, activations in network_activations.items():
        for layer in activations.data_vars:
            layer_gram = _centred_gram(_check_activations(activations[layer].values, layer))
            if layer_gram.shape != v1_gram.shape:
                raise ValueError(f"{name}/{layer} has {layer_gram.shape[0]} conditions but V1 has "
                                 f"{v1_gram.shape[0]}")
            rows.append({"reference": "V1", "candidate": f"{name}/{layer}", "comparator": "cka",
                         "value": _cka_from_grams(v1_gram, layer_gram)})
    return pd.DataFrame(rows)


def split_candidate_names(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``network``, ``network_seed`` and ``layer`` columns from the candidate names
    ``{network}/seed{seed}/{layer}``."""
    parts = table["candidate"].str.split("/", expand=True)
    return table.assign(network=parts[0],
                        network_seed=parts[1].str.removeprefix("seed").astype(int),
                        layer=parts[2])
