"""Model comparison: is one candidate closer to the reference than another, is a candidate above
zero, does it reach the noise ceiling — rsatoolbox's t-tests on bootstrap variances.

The tests and variance estimators are those of rsatoolbox 0.3.2 (Schütt, Kipnis, Diedrichsen &
Kriegeskorte 2023, eLife 12:e82566; ``inference.Result.test_pairwise``, ``test_zero``,
``test_noise``, ``util.inference_util.extract_variances``), equal to it to 1e-10 given the same
bootstrap samples (``tests/test_model_comparison.py``):

- **One factor** (``eval_bootstrap_pattern``): conditions resampled. The covariance of the
  candidates' bootstrap samples (ddof 1, samples with fewer than 3 distinct conditions left out)
  times n/(n − 1), n the number of conditions, estimates the covariance of their evaluations;
  dof = n − 1.
- **Two factors** (``eval_dual_bootstrap``: recordings, or a network's training seeds, and
  conditions). Every bootstrap draw gives three samples: both factors resampled, only the
  recordings (seeds), only the conditions, from the same draws. Their variances v_both, v_rdm,
  v_pattern combine into the small-sample corrected variance of Schütt et al. (their eq. for the
  two-factor bootstrap, rsatoolbox's ``_dual_bootstrap``)::

      v = R/(R−1) v_rdm + n/(n−1) v_pattern − R n/((R−1)(n−1)) (v_both − v_rdm − v_pattern),

  clipped below by R/(R−1) v_rdm and n/(n−1) v_pattern and above by v_both; R recordings
  (seeds), dof = min(R, n) − 1.
- **Tests**, on the mean of the bootstrap samples (rsatoolbox's estimate; for two factors the
  mean over all three kinds of sample): pairwise ``t = (m_a − m_b) / sd(e_a − e_b)``, two-sided;
  against zero ``t = m / sd(e)``, one-sided (greater than zero); against the noise ceiling
  ``t = (m − lower bound) / sd(e − lower bound)``, two-sided. Variances below machine epsilon
  are raised to it, as rsatoolbox does. p comes from the t distribution's survival function:
  rsatoolbox computes ``1 − cdf``, which rounds to exactly 0 beyond |t| ≈ 8, while the survival
  function keeps the p-value (``tests/test_model_comparison.py`` shows the difference).

A unit of comparison (:class:`BootstrapSamples`) is either one candidate (one factor) or the
mean of a network's seeds (two factors, seeds resampled like recordings): claims about an
architecture then carry the spread over initialisations, not only over conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from v1rsa.rsa.bootstrap import confidence_interval
from v1rsa.rsa.permutation import fdr_bh

#: rsatoolbox's floor of a variance before it divides (``np.finfo(float).eps``)
_EPS = np.finfo(float).eps

#: kinds of pairs :func:`comparison_pairs` makes
PAIR_KINDS = ("all_pairs", "vs_best", "neighbour_layers")


@dataclass(frozen=True)
class BootstrapSamples:
    """Bootstrap samples of the comparisons of K units (candidates or seed means) with the
    reference, from one shared set of draws.

    both, rdm, pattern: (n_bootstrap, K) float64 — the comparison with both factors resampled,
    with only the second factor (recordings or seeds) resampled on all conditions, and with only
    the conditions resampled. A unit without a second factor has ``both = pattern`` and ``rdm``
    equal to its observed value. Rows where too few distinct conditions were drawn are NaN in
    all three. n_rdm: (K,) int, the recordings or seeds behind each unit (1: one factor);
    n_conditions: conditions of the reference.
    """

    both: np.ndarray
    rdm: np.ndarray
    pattern: np.ndarray
    n_rdm: np.ndarray
    n_conditions: int

    def __post_init__(self):
        shapes = {np.shape(self.both), np.shape(self.rdm), np.shape(self.pattern)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"both, rdm, pattern: expected three (n_bootstrap, K) arrays of "
                             f"one shape, got {sorted(shapes)}")
        if np.shape(self.n_rdm) != (np.shape(self.both)[1],) or np.min(self.n_rdm, initial=1) < 1:
            raise ValueError(f"n_rdm: expected ({np.shape(self.both)[1]},) integers ≥ 1")
        if self.n_conditions < 2:
            raise ValueError(f"n_conditions: expected at least 2, got {self.n_conditions}")

    @classmethod
    def one_factor(cls, samples, observed, n_conditions: int) -> BootstrapSamples:
        """Units resampled over conditions only: samples (n_bootstrap, K), observed (K,)."""
        samples = np.asarray(samples, dtype=np.float64)
        observed = np.broadcast_to(np.asarray(observed, dtype=np.float64), samples.shape[1:])
        rdm = np.where(np.isnan(samples), np.nan, observed[None, :])
        return cls(samples, rdm, samples, np.ones(samples.shape[1], dtype=np.int64),
                   int(n_conditions))

    @property
    def n_units(self) -> int:
        return self.both.shape[1]

    @property
    def valid(self) -> np.ndarray:
        """(n_bootstrap,) bool: the draws that gave a comparison (rsatoolbox's ``eval_ok``)."""
        return ~np.isnan(self.both).any(axis=1)

    def take(self, units) -> BootstrapSamples:
        """These units only (indices or a boolean mask), in that order."""
        return BootstrapSamples(self.both[:, units], self.rdm[:, units], self.pattern[:, units],
                                np.asarray(self.n_rdm)[units], self.n_conditions)

    def means(self) -> np.ndarray:
        """(K,) rsatoolbox's estimate of each unit's evaluation: the mean of its bootstrap
        samples (one factor), or of all three kinds of sample (two factors)."""
        valid = self.valid
        if not valid.any():
            return np.full(self.n_units, np.nan)
        pattern = self.pattern[valid].mean(axis=0)
        three = (self.both[valid].mean(axis=0) + self.rdm[valid].mean(axis=0) + pattern) / 3
        return np.where(np.asarray(self.n_rdm) > 1, three, pattern)


def _covariances(kinds: Sequence[np.ndarray]) -> np.ndarray:
    """(len(kinds), q, q) covariances (ddof 1) of the columns of each (B, q) array, one matrix
    product each."""
    out = []
    for samples in kinds:
        if len(samples) < 2:  # no spread to estimate
            out.append(np.full((samples.shape[1], samples.shape[1]), np.nan))
            continue
        centred = samples - samples.mean(axis=0, keepdims=True)
        out.append(centred.T @ centred / (len(samples) - 1))
    return np.stack(out)


def dual_bootstrap_variance(v_both, v_rdm, v_pattern, n_rdm, n_pattern: int) -> np.ndarray:
    """rsatoolbox's small-sample two-factor correction (``_dual_bootstrap``); arrays broadcast.

    Where n_rdm is 1 (no second factor) it is the one-factor estimate n/(n−1) · v_pattern.
    """
    v_both, v_rdm, v_pattern = (np.asarray(v, dtype=np.float64) for v in (v_both, v_rdm,
                                                                              v_pattern))
    n_rdm = np.asarray(n_rdm, dtype=np.float64)
    n = float(n_pattern)
    one_factor = n / (n - 1) * v_pattern
    with np.errstate(divide="ignore", invalid="ignore"):
        r = n_rdm / (n_rdm - 1)
        variance = (r * v_rdm + n / (n - 1) * v_pattern
                    - (n * n_rdm / (n - 1) / (n_rdm - 1)) * (v_both - v_rdm - v_pattern))
        variance = np.minimum(np.maximum(np.maximum(variance, r * v_rdm), one_factor), v_both)
    return np.where(n_rdm > 1, variance, one_factor)


def contrast_variances(samples: BootstrapSamples, a, b=None, *, ceiling=None) -> np.ndarray:
    """Variances of contrasts between units, as rsatoolbox estimates them.

    a, b: (c,) unit indices; the contrast is e_a − e_b, or e_a alone when b is None, or
    e_a − lower bound when ``ceiling`` is given: (3, n_bootstrap) samples of the noise
    ceiling's lower bound (both, rdm, pattern kinds), as rsatoolbox's ``eval_dual_bootstrap``
    bootstraps it. Returns (c,) float64. The second factor's count of a pair of units is the
    smaller one where both have a second factor (so the correction is never too small), the one
    where only one has it; pairs of one-factor units get the one-factor estimate.
    """
    a = np.atleast_1d(np.asarray(a, dtype=np.intp))
    valid = samples.valid
    kinds = [samples.both[valid], samples.rdm[valid], samples.pattern[valid]]
    if ceiling is not None:
        ceiling = np.asarray(ceiling, dtype=np.float64)[:, valid]
        kinds = [np.column_stack([kind, lower]) for kind, lower in zip(kinds, ceiling,
                                                                       strict=True)]
    covariance = _covariances(kinds)
    n_rdm = np.asarray(samples.n_rdm)
    if b is None:
        b_column = np.full(len(a), samples.n_units) if ceiling is not None else None
        pair_n = n_rdm[a]
    else:
        b = np.atleast_1d(np.asarray(b, dtype=np.intp))
        b_column = b
        n_a, n_b = n_rdm[a], n_rdm[b]
        pair_n = np.where((n_a > 1) & (n_b > 1), np.minimum(n_a, n_b), np.maximum(n_a, n_b))
    variance = covariance[:, a, a]
    if b_column is not None:
        variance = variance + covariance[:, b_column, b_column] - 2 * covariance[:, a, b_column]
    return dual_bootstrap_variance(variance[0], variance[1], variance[2], pair_n,
                                   samples.n_conditions)


def degrees_of_freedom(n_rdm, n_conditions: int) -> np.ndarray:
    """rsatoolbox's dof: n − 1 for one factor, min(R, n) − 1 for two."""
    n_rdm = np.asarray(n_rdm)
    return np.where(n_rdm > 1, np.minimum(n_rdm, n_conditions) - 1, n_conditions - 1)


def t_test(estimate, variance, dof, *, alternative: str = "two-sided"):
    """(t, p) of ``estimate / sqrt(max(variance, eps))`` against Student's t with ``dof``
    (arrays broadcast); ``alternative``: ``two-sided`` or ``greater``."""
    t = np.asarray(estimate, dtype=np.float64) / np.sqrt(np.maximum(variance, _EPS))
    if alternative == "two-sided":
        p = 2 * scipy.stats.t.sf(np.abs(t), dof)
    elif alternative == "greater":
        p = scipy.stats.t.sf(t, dof)
    else:
        raise ValueError(f"alternative: expected 'two-sided' or 'greater', got {alternative!r}")
    return t, p


def test_pairwise(samples: BootstrapSamples, a, b):
    """rsatoolbox's ``Result.test_pairwise`` (t-test) for the pairs (a[i], b[i]).

    Returns ``difference`` (mean_a − mean_b, rsatoolbox's estimate), ``variance`` of
    e_a − e_b, ``t``, ``dof`` and two-sided ``p``, each (c,).
    """
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    means = samples.means()
    variance = contrast_variances(samples, a, b)
    n_a, n_b = np.asarray(samples.n_rdm)[a], np.asarray(samples.n_rdm)[b]
    pair_n = np.where((n_a > 1) & (n_b > 1), np.minimum(n_a, n_b), np.maximum(n_a, n_b))
    dof = degrees_of_freedom(pair_n, samples.n_conditions)
    difference = means[a] - means[b]
    t, p = t_test(difference, variance, dof)
    return {"difference": difference, "variance": variance, "t": t, "dof": dof, "p": p}


def test_zero(samples: BootstrapSamples):
    """rsatoolbox's ``Result.test_zero`` (t-test, one-sided: greater than zero) of every unit:
    ``mean``, ``variance``, ``t``, ``dof``, ``p``, each (K,)."""
    units = np.arange(samples.n_units)
    means = samples.means()
    variance = contrast_variances(samples, units)
    dof = degrees_of_freedom(samples.n_rdm, samples.n_conditions)
    t, p = t_test(means, variance, dof, alternative="greater")
    return {"mean": means, "variance": variance, "t": t, "dof": dof, "p": p}


def test_noise(samples: BootstrapSamples, lower_bound, *, ceiling_samples=None):
    """rsatoolbox's ``Result.test_noise`` (t-test, two-sided) of every unit against the lower
    bound of the noise ceiling.

    lower_bound: a float — the ceiling held fixed (rsatoolbox's ``boot_noise_ceil=False``);
    its variance is not counted. ceiling_samples: (3, n_bootstrap) bootstrap samples of the
    lower bound (both, rdm, pattern kinds; rsatoolbox's ``eval_dual_bootstrap``): the test is
    then against their mean over valid draws and kinds, with the variance of e − lower bound.
    Returns ``difference`` (mean − bound), ``variance``, ``t``, ``dof``, ``p``, each (K,).
    """
    units = np.arange(samples.n_units)
    means = samples.means()
    if ceiling_samples is None:
        bound = float(lower_bound)
        variance = contrast_variances(samples, units)
    else:
        ceiling_samples = np.asarray(ceiling_samples, dtype=np.float64)
        bound = float(np.nanmean(ceiling_samples[:, samples.valid]))
        variance = contrast_variances(samples, units, ceiling=ceiling_samples)
    dof = degrees_of_freedom(samples.n_rdm, samples.n_conditions)
    t, p = t_test(means - bound, variance, dof)
    return {"difference": means - bound, "variance": variance, "t": t, "dof": dof, "p": p}


def comparison_pairs(names: Sequence[str], values, *, max_all_pairs: int,
                     instances: Sequence[str] | None = None) -> pd.DataFrame:
    """Which pairs of units to compare: every pair, or (more units than ``max_all_pairs``) every
    unit against the best one and each layer against the next layer of the same network.

    names: (K,) unit names; values: (K,) their similarity with the reference (the best is the
    largest; NaN never is); instances: (K,) the network instance of each unit (the name without
    the layer), whose units are layers in network order. Returns a table of ``a``, ``b`` (unit
    indices) and ``kind`` (:data:`PAIR_KINDS`; a pair found both ways is listed once, kinds
    joined by ``+``). Pairs with the best unit put it first.
    """
    k = len(names)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (k,):
        raise ValueError(f"values: expected ({k},) similarities, got shape {values.shape}")
    if k < 2:
        return pd.DataFrame({"a": np.array([], dtype=np.int64), "b": np.array([], dtype=np.int64),
                             "kind": np.array([], dtype=object)})
    if k <= max_all_pairs:
        a, b = np.triu_indices(k, 1)
        return pd.DataFrame({"a": a, "b": b, "kind": "all_pairs"})
    kinds: dict[tuple[int, int], list[str]] = {}
    if np.isfinite(values).any():
        best = int(np.nanargmax(values))
        for other in range(k):
            if other != best:
                kinds.setdefault((best, other), []).append("vs_best")
    instances = list(names) if instances is None else list(instances)
    if len(instances) != k:
        raise ValueError(f"instances: expected {k} names, got {len(instances)}")
    last_of_instance: dict[str, int] = {}
    for unit, instance in enumerate(instances):
        if instance in last_of_instance:
            previous = last_of_instance[instance]
            key = (previous, unit)
            if (unit, previous) in kinds:
                key = (unit, previous)
            kinds.setdefault(key, []).append("neighbour_layers")
        last_of_instance[instance] = unit
    pairs = sorted(kinds.items())
    return pd.DataFrame({"a": [a for (a, _), _ in pairs], "b": [b for (_, b), _ in pairs],
                         "kind": ["+".join(kind) for _, kind in pairs]})


def pairwise_table(samples: BootstrapSamples, names: Sequence[str], observed, pairs: pd.DataFrame,
                   *, ci_level: float) -> pd.DataFrame:
    """The pairwise comparisons of ``pairs`` (:func:`comparison_pairs`) as a tidy table.

    observed: (K,) each unit's similarity with the reference on all the data. Columns:
    candidate_a, candidate_b, kind, value_a, value_b, difference (observed a − b), ci_low,
    ci_high (percentile interval of the bootstrap differences, both factors resampled),
    difference_bootstrap_mean (rsatoolbox's estimate, which the t-test uses), se, t, dof, p
    (two-sided), q (Benjamini–Hochberg across the pairs of this table), n_rdm_a, n_rdm_b.
    """
    a = pairs["a"].to_numpy(dtype=np.intp)
    b = pairs["b"].to_numpy(dtype=np.intp)
    observed = np.asarray(observed, dtype=np.float64)
    names = np.asarray([str(name) for name in names], dtype=object)
    test = test_pairwise(samples, a, b)
    ci_low = np.full(len(a), np.nan)
    ci_high = np.full(len(a), np.nan)
    valid = samples.valid
    if valid.any() and len(a):
        both = samples.both[valid]
        for start in range(0, len(a), 4096):  # bounded memory for many pairs
            stop = min(start + 4096, len(a))
            differences = both[:, a[start:stop]] - both[:, b[start:stop]]
            ci_low[start:stop], ci_high[start:stop] = confidence_interval(differences, ci_level)
    n_rdm = np.asarray(samples.n_rdm)
    return pd.DataFrame({
        "candidate_a": names[a],
        "candidate_b": names[b],
        "kind": pairs["kind"].to_numpy(dtype=object),
        "value_a": observed[a],
        "value_b": observed[b],
        "difference": observed[a] - observed[b],
        "ci_low": ci_low,
        "ci_high": ci_high,
        "difference_bootstrap_mean": test["difference"],
        "se": np.sqrt(np.maximum(test["variance"], 0.0)),
        "t": test["t"],
        "dof": test["dof"],
        "p": test["p"],
        "q": fdr_bh(test["p"]) if len(a) else np.array([]),
        "n_rdm_a": n_rdm[a],
        "n_rdm_b": n_rdm[b],
    })
