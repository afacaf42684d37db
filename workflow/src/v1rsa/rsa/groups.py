"""Several recordings of the same conditions analysed together: the between-recording noise
ceiling, and the dual bootstrap over recordings and conditions.

A group is a set of recordings (animals, sessions) of the same stimulus conditions, each with
its V1 RDM and the candidates' RDMs for it (a network trained on one recording, like the
encoding model, has its own RDM per recording; a shared network has the same one). Per
candidate, the group's evaluation is the mean over recordings of the comparison of the
candidate's RDM with the recording's V1 RDM (rsatoolbox's evaluation of a fixed model against
several data RDMs).

- **Between-recording noise ceiling** (Nili et al. 2014; rsatoolbox's ``boot_noise_ceiling``
  over subjects): lower bound, each recording's RDM against the pooled RDM of the others; upper,
  against the pooled RDM of all; pooled as rsatoolbox does for the comparator (z-scored for
  Pearson, ranked for Spearman and τa, RMS-scaled for cosine, then averaged). Beside it, the
  within-recording ceiling from each recording's trial folds, averaged over recordings.
- **Dual bootstrap** (rsatoolbox's ``eval_dual_bootstrap`` with fixed models, no
  cross-validation): in each draw, recordings and conditions are drawn with replacement; the
  evaluation is computed with both resampled, with only the recordings resampled (all
  conditions) and with only the conditions (all recordings), and so is the noise ceiling. In a
  sample that holds a recording several times, the copies count in the means and pooled RDMs,
  and the leave-one-out lower bound leaves out all copies of a recording and averages over the
  distinct recordings drawn (a sample of one distinct recording gets lower = upper, its own
  comparison with itself, as rsatoolbox). The variance estimate and the tests are
  :mod:`~v1rsa.rsa.model_comparison`'s with R = the number of recordings.

The resampled comparisons of candidates are :func:`~v1rsa.rsa.bootstrap.compare_resampled`'s.
The resampled ceilings are, for Pearson and cosine, weighted second moments of the recordings
(one matrix product over all draws); for Spearman and Kendall's τa each draw's vectors are
expanded and ranked, which costs about one sort per recording, kind and draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from v1rsa.rsa._arrays import MIN_CONDITIONS, _check_method, _check_rdm, _upper
from v1rsa.rsa.bootstrap import compare_resampled, confidence_interval, draw_bootstrap_indices
from v1rsa.rsa.ceiling import _normalise_for_pooling, noise_ceiling
from v1rsa.rsa.comparators import _compare_rows, _tau_a, compare_many
from v1rsa.rsa.model_comparison import (
    BootstrapSamples,
    comparison_pairs,
    pairwise_table,
    test_noise,
    test_zero,
)
from v1rsa.rsa.permutation import fdr_bh

#: kinds of sample of the dual bootstrap, in rsatoolbox's order
KINDS = ("both", "rdm", "pattern")


def draw_recordings(n_recordings: int, n_bootstrap: int, rng) -> np.ndarray:
    """Recordings drawn with replacement: (n_bootstrap, n_recordings) int64 in [0, R)."""
    return np.random.default_rng(rng).integers(0, n_recordings, size=(n_bootstrap,
                                                                      n_recordings))


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """How often each of ``size`` items was drawn in each row of indices (b, d): (b, size)."""
    offsets = size * np.arange(len(indices))[:, None]
    return np.bincount((indices + offsets).ravel(), minlength=len(indices) * size).reshape(
        len(indices), size)


def _pooled_agreement(similarity: np.ndarray, multiplicity: np.ndarray) -> tuple[float, float]:
    """Lower and upper bound from the similarities of pooled RDMs, for Pearson and cosine.

    similarity: (R, R) weighted correlations (Pearson) or cosines between the recordings'
    vectors; multiplicity: (R,) how often each recording is in the sample. The pooled RDM of a
    set with weights a is Σ a_r z_r (z: each recording normalised as rsatoolbox pools it), whose
    comparison with recording u is (a · S_u) / sqrt(aᵀ S a).
    """
    drawn = np.flatnonzero(multiplicity)
    total = multiplicity.astype(np.float64)
    upper = (similarity @ total)[drawn] / np.sqrt(total @ similarity @ total)
    if len(drawn) == 1:  # leave-one-out of a single recording pools it with itself
        return float(upper[0]), float(upper[0])
    lower = []
    for u in drawn:
        others = total.copy()
        others[u] = 0.0
        lower.append((others @ similarity[:, u]) / np.sqrt(others @ similarity @ others))
    return float(np.mean(lower)), float(np.mean(upper))


def _linear_ceilings(xs: np.ndarray, method: str, condition_counts: np.ndarray,
                     recording_counts: np.ndarray) -> np.ndarray:
    """(3, B, 2) ceilings of every draw for Pearson or cosine, from weighted moments.

    xs: (R, m) the recordings' upper triangles; condition_counts (B, n) and recording_counts
    (B, R): the draws. Pair (i, j) of a draw weighs c_i c_j; the weighted sums Σ w x_r and
    Σ w x_r x_s of all draws are one product of the pair weights with the vectors.
    """
    r, m = xs.shape
    n = condition_counts.shape[1]
    rows, cols = np.triu_indices(n, 1)
    first, second = np.triu_indices(r)
    columns = np.concatenate([xs, xs[first] * xs[second]]).T  # (m, R + R(R+1)/2)
    out = np.full((3, len(condition_counts), 2), np.nan)
    all_pairs = np.ones((1, m))
    every_recording = np.ones(r, dtype=np.int64)

    def similarity(weights):
        sums = weights @ columns  # (b, R + R(R+1)/2)
        total = weights.sum(axis=1)[:, None]
        linear = sums[:, :r]
        products = np.zeros((len(weights), r, r))
        products[:, first, second] = sums[:, r:]
        products[:, second, first] = sums[:, r:]
        if method == "pearson":
            mean = linear / total
            products = products / total[:, :, None] - mean[:, :, None] * mean[:, None, :]
        scale = np.sqrt(np.einsum("brr->br", products))
        return products / scale[:, :, None] / scale[:, None, :]

    full = similarity(all_pairs)[0]
    for block in range(0, len(condition_counts), 64):
        counts = condition_counts[block:block + 64].astype(np.float64)
        weights = np.take(counts, rows, axis=1) * np.take(counts, cols, axis=1)
        similarities = similarity(weights)
        for offset, (matrix, multiplicity) in enumerate(
                zip(similarities, recording_counts[block:block + 64], strict=True)):
            b = block + offset
            out[0, b] = _pooled_agreement(matrix, multiplicity)
            out[2, b] = _pooled_agreement(matrix, every_recording)
            out[1, b] = _pooled_agreement(full, multiplicity)
    return out


def _expanded_ceiling(vectors: np.ndarray, method: str, multiplicity: np.ndarray):
    """rsatoolbox's ``boot_noise_ceiling`` of one sample given as expanded vectors (R, m_b)
    (each recording's resampled RDM entries, repeats included) and recording multiplicities."""
    drawn = np.flatnonzero(multiplicity)
    normalised = _normalise_for_pooling(vectors[drawn], method)
    weights = multiplicity[drawn].astype(np.float64)

    def agreement(pooled_weights, u):
        pooled = (pooled_weights[:, None] * normalised).sum(axis=0) / pooled_weights.sum()
        if method == "kendall_tau_a":
            return _tau_a(pooled, vectors[u])
        return float(_compare_rows(pooled[None], vectors[u][None], method)[0, 0])

    upper = [agreement(weights, u) for u in drawn]
    if len(drawn) == 1:
        return upper[0], upper[0]
    lower = []
    for position, u in enumerate(drawn):
        others = weights.copy()
        others[position] = 0.0
        lower.append(agreement(others, u))
    return float(np.mean(lower)), float(np.mean(upper))


def _rank_ceilings(xs: np.ndarray, method: str, condition_counts: np.ndarray,
                   recording_counts: np.ndarray) -> np.ndarray:
    """(3, B, 2) ceilings of every draw for Spearman or Kendall's τa, each draw's vectors
    expanded (pair (i, j) repeated c_i c_j times) and ranked."""
    r = xs.shape[0]
    n = condition_counts.shape[1]
    rows, cols = np.triu_indices(n, 1)
    out = np.full((3, len(condition_counts), 2), np.nan)
    every_recording = np.ones(r, dtype=np.int64)
    for b, (counts, multiplicity) in enumerate(zip(condition_counts, recording_counts,
                                                   strict=True)):
        repeats = counts[rows] * counts[cols]
        expanded = np.repeat(xs, repeats, axis=1)
        out[0, b] = _expanded_ceiling(expanded, method, multiplicity)
        out[2, b] = _expanded_ceiling(expanded, method, every_recording)
        out[1, b] = _expanded_ceiling(xs, method, multiplicity)
    return out


def resampled_ceilings(references, method: str, recording_indices, condition_indices):
    """The between-recording noise ceiling of every draw of the dual bootstrap.

    references: (R, n, n) the recordings' RDMs; recording_indices: (B, R) and condition_indices
    (B, n) int, the draws. Returns (3, B, 2) float64: for each kind (both resampled, recordings
    only, conditions only) and draw, the lower and upper bound; NaN where a draw holds fewer
    than 3 distinct conditions.
    """
    method = _check_method(method)
    references = np.asarray(references, dtype=np.float64)
    r, n = references.shape[0], references.shape[1]
    xs = _upper(references)
    condition_counts = _counts(np.asarray(condition_indices), n)
    recording_counts = _counts(np.asarray(recording_indices), r)
    if method in ("pearson", "cosine"):
        out = _linear_ceilings(xs, method, condition_counts, recording_counts)
    else:
        out = _rank_ceilings(xs, method, condition_counts, recording_counts)
    out[:, np.count_nonzero(condition_counts, axis=1) < MIN_CONDITIONS] = np.nan
    return out


def dual_bootstrap(references, candidates, method: str, recording_indices, condition_indices,
                   *, n_threads: int = 1) -> dict:
    """rsatoolbox's ``eval_dual_bootstrap`` of fixed candidates on the given draws.

    references: (R, n, n) the recordings' V1 RDMs; candidates: (K, n, n) the same RDMs for
    every recording, or (R, K, n, n) one set per recording; recording_indices: (B, R) and
    condition_indices: (B, n) int draws. Returns ``samples``
    (:class:`~v1rsa.rsa.model_comparison.BootstrapSamples`, n_rdm = R), ``ceiling`` (3, B, 2)
    (:func:`resampled_ceilings`), ``observed`` (R, K) each recording's comparison on all
    conditions, and ``per_recording`` (R, B, K) each recording's comparison on each draw's
    conditions.
    """
    method = _check_method(method)
    references = np.asarray(references, dtype=np.float64)
    if references.ndim != 3 or references.shape[0] < 2:
        raise ValueError(f"references: expected (n_recordings ≥ 2, n, n) RDMs, got shape "
                         f"{references.shape}")
    r, n = references.shape[0], references.shape[1]
    candidates = np.asarray(candidates, dtype=np.float64)
    if candidates.ndim == 3:
        candidates = np.broadcast_to(candidates, (r, *candidates.shape))
    if candidates.ndim != 4 or candidates.shape[0] != r:
        raise ValueError(f"candidates: expected (K, n, n) or ({r}, K, n, n) RDMs, got shape "
                         f"{candidates.shape}")
    recording_indices = np.asarray(recording_indices)
    condition_indices = np.asarray(condition_indices)
    if (recording_indices.shape != (len(condition_indices), r)
            or recording_indices.min(initial=0) < 0 or recording_indices.max(initial=0) >= r):
        raise ValueError(f"recording_indices: expected ({len(condition_indices)}, {r}) "
                         f"recordings in [0, {r})")
    observed = np.stack([compare_many(_check_rdm(references[i], f"references[{i}]"),
                                      candidates[i], method) for i in range(r)])
    if (candidates == candidates[:1]).all():  # shared: one pass serves every recording
        per_recording = compare_resampled(references, candidates[0], method, condition_indices,
                                          n_threads=n_threads).transpose(1, 0, 2)
    else:
        per_recording = np.stack([compare_resampled(references[i], candidates[i], method,
                                                    condition_indices, n_threads=n_threads)
                                  for i in range(r)])  # (R, B, K)
    weights = _counts(recording_indices, r) / r  # (B, R)
    both = np.einsum("br,rbk->bk", weights, per_recording)
    rdm = weights @ observed
    pattern = per_recording.mean(axis=0)
    rdm[np.isnan(both).any(axis=1)] = np.nan
    samples = BootstrapSamples(both, rdm, pattern, np.full(both.shape[1], r, dtype=np.int64), n)
    return {"samples": samples, "observed": observed, "per_recording": per_recording,
            "ceiling": resampled_ceilings(references, method, recording_indices,
                                          condition_indices)}


def group_table(
    recordings: Mapping[str, Mapping],
    methods: Sequence[str],
    *,
    n_bootstrap: int,
    seed: int,
    ci_level: float = 0.95,
    max_all_pairs: int = 20,
    reference_name: str = "V1",
    n_threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, xr.Dataset]:
    """The group analysis of several recordings of the same conditions.

    recordings: dataset name → ``{"rdm": (n, n), "folds": (n_folds, n, n) or None,
    "candidates": {name: (n, n)}}``, at least two, each with the same candidate names.
    Draws: ``SeedSequence(seed).spawn(2)`` — one stream for the recordings, one for the
    conditions; both shared by all candidates and methods.

    Returns ``table`` (one row per candidate and comparator: ``value`` the mean over recordings,
    ci_low/ci_high the percentile interval of the dual bootstrap, ``se``, ``p_zero`` and
    ``p_noise`` — rsatoolbox's tests on the dual bootstrap, the latter against the lower
    between-recording bound —, the between-recording ceiling ``noise_ceiling_lower/upper``, the
    mean within-recording fold ceiling ``fold_ceiling_lower/upper``, n_recordings,
    n_conditions, n_bootstrap, seed, ci_level), ``per_recording`` (one row per recording,
    candidate and comparator: its own comparison and fold ceiling: the figures' dots),
    ``pairwise`` (:func:`~v1rsa.rsa.model_comparison.pairwise_table` on the dual bootstrap, R
    recordings) and a Dataset with the samples and draws.
    """
    methods = [_check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods: expected at least one comparison method")
    datasets = [str(name) for name in recordings]
    if len(datasets) < 2:
        raise ValueError(f"recordings: a group needs at least 2 recordings, got {datasets}")
    names = [str(c) for c in recordings[datasets[0]]["candidates"]]
    if not names:
        raise ValueError(f"{datasets[0]}: no candidate RDMs")
    references, folds, stacks = [], [], []
    for dataset in datasets:
        recording = recordings[dataset]
        reference = _check_rdm(recording["rdm"], f"{dataset}: V1 RDM")
        if references and reference.shape != references[0].shape:
            raise ValueError(f"{dataset}: V1 RDM has {reference.shape[0]} conditions, "
                             f"{datasets[0]} has {references[0].shape[0]}; a group's recordings "
                             "must share their conditions")
        own = [str(c) for c in recording["candidates"]]
        missing = [c for c in names if c not in own]
        extra = [c for c in own if c not in names]
        if missing or extra:
            raise ValueError(f"{dataset}: candidates differ from {datasets[0]}'s: missing "
                             f"{missing}, extra {extra}; every recording of a group needs the "
                             "same candidates")
        references.append(reference)
        folds.append(None if recording.get("folds") is None
                     else np.asarray(recording["folds"], dtype=np.float64))
        stacks.append(np.stack([np.asarray(recording["candidates"][c], dtype=np.float64)
                                for c in names]))
    references = np.stack(references)
    r, n = references.shape[0], references.shape[1]
    candidates = np.stack(stacks)
    shared = bool((candidates == candidates[:1]).all())
    recording_seed, condition_seed = np.random.SeedSequence(seed).spawn(2)
    recording_indices = draw_recordings(r, n_bootstrap, np.random.default_rng(recording_seed))
    condition_indices = draw_bootstrap_indices(n, n_bootstrap,
                                               np.random.default_rng(condition_seed))

    k, n_methods = len(names), len(methods)
    keys = ("value", "ci_low", "ci_high", "se", "p_zero", "p_noise")
    per_method = {key: np.full((n_methods, k), np.nan) for key in keys}
    observed = np.empty((n_methods, r, k))
    ceilings = np.full((n_methods, 2), np.nan)
    fold_ceilings = np.full((n_methods, r, 2), np.nan)
    bootstraps = np.empty((n_methods, 3, n_bootstrap, k))
    ceiling_samples = np.empty((n_methods, 3, n_bootstrap, 2))
    pairwise = []
    for i, method in enumerate(methods):
        result = dual_bootstrap(references, candidates[0] if shared else candidates, method,
                                recording_indices, condition_indices, n_threads=n_threads)
        samples = result["samples"]
        observed[i] = result["observed"]
        ceilings[i] = noise_ceiling(references, method)
        for j, recording_folds in enumerate(folds):
            if recording_folds is not None:
                fold_ceilings[i, j] = noise_ceiling(recording_folds, method)
        bootstraps[i] = np.stack([samples.both, samples.rdm, samples.pattern])
        ceiling_samples[i] = result["ceiling"]
        value = observed[i].mean(axis=0)
        per_method["value"][i] = value
        if samples.valid.any():
            per_method["ci_low"][i], per_method["ci_high"][i] = confidence_interval(
                samples.both, ci_level)
        if samples.valid.sum() > 1:
            zero = test_zero(samples)
            per_method["se"][i] = np.sqrt(np.maximum(zero["variance"], 0.0))
            per_method["p_zero"][i] = zero["p"]
            per_method["p_noise"][i] = test_noise(samples, ceilings[i, 0],
                                                  ceiling_samples=result["ceiling"][:, :, 0])["p"]
        pairs = comparison_pairs(names, value, max_all_pairs=max_all_pairs,
                                 instances=[c.rsplit("/", 1)[0] for c in names])
        part = pairwise_table(samples, names, value, pairs, ci_level=ci_level)
        part.insert(0, "comparator", method)
        pairwise.append(part)

    dataset = xr.Dataset(
        {
            **{key: (("comparator", "candidate"), values) for key, values in per_method.items()},
            "value_recording": (("comparator", "recording", "candidate"), observed),
            "noise_ceiling_lower": ("comparator", ceilings[:, 0]),
            "noise_ceiling_upper": ("comparator", ceilings[:, 1]),
            "fold_ceiling_lower": (("comparator", "recording"), fold_ceilings[:, :, 0]),
            "fold_ceiling_upper": (("comparator", "recording"), fold_ceilings[:, :, 1]),
            "bootstrap": (("comparator", "kind", "sample", "candidate"), bootstraps),
            "ceiling_bootstrap": (("comparator", "kind", "sample", "bound"), ceiling_samples),
            "recording_index": (("sample", "recording_draw"), recording_indices.astype(np.int32)),
            "condition_index": (("sample", "draw"), condition_indices.astype(np.int32)),
        },
        coords={
            "comparator": methods,
            "candidate": names,
            "recording": datasets,
            "kind": list(KINDS),
            "bound": ["lower", "upper"],
            "sample": np.arange(n_bootstrap),
            "recording_draw": np.arange(r),
            "draw": np.arange(n),
        },
        attrs={
            "reference": reference_name,
            "seed": int(seed),
            "n_bootstrap": int(n_bootstrap),
            "n_conditions": int(n),
            "n_recordings": int(r),
            "ci_level": float(ci_level),
            "value": "mean over recordings of each recording's comparison",
            "bootstrap": "rsatoolbox eval_dual_bootstrap (fixed models): kinds both (recordings "
                         "and conditions resampled), rdm (recordings), pattern (conditions)",
            "noise_ceiling": "between recordings: each recording's RDM against the pooled RDM "
                             "of the others (lower) and of all (upper), rsatoolbox's pooling",
            "fold_ceiling": "each recording's own ceiling from its trial folds",
            "random_draws": "numpy SeedSequence(seed).spawn(2): recordings, conditions",
        },
    )
    table, per_recording = _group_tables(dataset)
    pairwise = pd.concat(pairwise, ignore_index=True).rename(
        columns={"n_rdm_a": "n_recordings_a", "n_rdm_b": "n_recordings_b"})
    pairwise.insert(0, "reference", reference_name)
    for key in ("n_conditions", "n_bootstrap", "seed", "ci_level"):
        pairwise[key] = dataset.attrs[key]
    return table, per_recording, pairwise, dataset


def _group_tables(dataset: xr.Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The group table and the per-recording table of :func:`group_table`'s Dataset."""
    rows, dots = [], []
    for comparator in dataset["comparator"].values:
        chosen = dataset.sel(comparator=comparator)
        part = pd.DataFrame({"candidate": dataset["candidate"].values,
                             **{key: chosen[key].values for key in
                                ("value", "ci_low", "ci_high", "se", "p_zero", "p_noise")}})
        part.insert(1, "comparator", str(comparator))
        part["q_zero"] = fdr_bh(part["p_zero"].to_numpy())
        for key in ("noise_ceiling_lower", "noise_ceiling_upper"):
            part[key] = float(chosen[key])
        part["fold_ceiling_lower"] = float(np.mean(chosen["fold_ceiling_lower"]))
        part["fold_ceiling_upper"] = float(np.mean(chosen["fold_ceiling_upper"]))
        rows.append(part)
        for recording in dataset["recording"].values:
            one = chosen.sel(recording=recording)
            dots.append(pd.DataFrame({
                "dataset": str(recording),
                "candidate": dataset["candidate"].values,
                "comparator": str(comparator),
                "value": one["value_recording"].values,
                "fold_ceiling_lower": float(one["fold_ceiling_lower"]),
                "fold_ceiling_upper": float(one["fold_ceiling_upper"]),
            }))
    table = pd.concat(rows, ignore_index=True)
    table.insert(0, "reference", dataset.attrs["reference"])
    for key in ("n_recordings", "n_conditions", "n_bootstrap", "seed", "ci_level"):
        table[key] = dataset.attrs[key]
    return table, pd.concat(dots, ignore_index=True)


def recording_rdms(v1: xr.Dataset, networks: Mapping[str, xr.Dataset], *, dataset: str) -> dict:
    """One recording's entry for :func:`group_table` from its RDM files.

    v1: ``rdms/v1.nc`` (``rdm``, optionally ``rdm_fold``, ``orientation``); networks:
    ``{"{network}/seed{seed}": rdms/{network}/seed{seed}.nc}``. Returns ``rdm``, ``folds``,
    ``candidates`` (``{network}/seed{seed}/{layer}`` → RDM) and ``orientation`` (n,) degrees.
    """
    from v1rsa.rsa.table import network_candidates

    candidates = network_candidates(networks)
    orientation = v1["orientation"].values
    for name, rdms in networks.items():
        if not np.allclose(rdms["orientation"].values, orientation):
            raise ValueError(f"{dataset}: {name}'s RDM is over other conditions than V1's")
    return {"rdm": v1["rdm"].values,
            "folds": v1["rdm_fold"].values if "rdm_fold" in v1 else None,
            "candidates": candidates, "orientation": orientation}


def check_same_conditions(recordings: Mapping[str, Mapping]) -> None:
    """Raise ``ValueError`` naming the datasets when the recordings' conditions (their
    ``orientation``, degrees) differ."""
    items = list(recordings.items())
    first_name, first = items[0]
    for name, recording in items[1:]:
        a, b = np.asarray(first["orientation"]), np.asarray(recording["orientation"])
        if a.shape != b.shape or not np.allclose(a, b):
            raise ValueError(f"{name} and {first_name} have different conditions "
                             f"({b.size} vs {a.size} orientations); a group's recordings must "
                             "share their stimulus conditions")
