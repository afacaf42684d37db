"""Representational similarity analysis: compare candidate RDMs with a reference RDM (V1).

The package is split the way the science is (as rsatoolbox splits ``rdm.compare`` from
``inference``), behind this one API:

- :mod:`~v1rsa.rsa.comparators`: how similar two RDMs are (Pearson, Spearman, Kendall's τa,
  cosine) and linear CKA of activations;
- :mod:`~v1rsa.rsa.bootstrap`: the comparisons on conditions resampled with replacement, and
  percentile intervals;
- :mod:`~v1rsa.rsa.permutation`: the permutation test of each candidate against chance, and
  Benjamini–Hochberg FDR control;
- :mod:`~v1rsa.rsa.ceiling`: the noise ceiling from the reference's own trial folds;
- :mod:`~v1rsa.rsa.model_comparison`: rsatoolbox's t-tests on bootstrap variances — candidate
  against candidate, against zero, against the noise ceiling — for one or two resampled factors;
- :mod:`~v1rsa.rsa.seeds`: a network's training seeds averaged and resampled with the
  conditions, so a claim about an architecture covers its initialisations;
- :mod:`~v1rsa.rsa.groups`: several recordings of the same conditions — the between-recording
  noise ceiling and the dual bootstrap over recordings and conditions;
- :mod:`~v1rsa.rsa.table`: all of the above for many candidates and comparators, as one
  Dataset and the tidy tables ``rsa.tsv`` and ``pairwise.tsv``;
- :mod:`~v1rsa.rsa.leaderboard`: many networks side by side: task accuracy, each layer's
  similarity, the best layer chosen on one trial fold and scored on the others.

Functions take numpy arrays (``(n, n)`` RDMs, ``(k, n, n)`` stacks of candidates) and draw all
randomness from a seed or a ``numpy.random.Generator``. The numbers equal rsatoolbox 0.3.2's to
1e-10 given the same draws (``tests/test_rsa.py``); the formulas and their sources are in
``docs/science.md``.

Example, on arrays of one's own::

    from v1rsa import rdm, rsa

    rdm_v1 = rdm.correlation_distance(v1_responses)          # (n_conditions, n_neurons)
    rdm_layer = rdm.correlation_distance(layer_activations)  # (n_conditions, n_units)
    rsa.compare(rdm_v1, rdm_layer, "spearman")
"""

from v1rsa.rsa._arrays import METHODS
from v1rsa.rsa.bootstrap import (
    bootstrap_conditions,
    compare_resampled,
    confidence_interval,
    draw_bootstrap_indices,
)
from v1rsa.rsa.ceiling import noise_ceiling
from v1rsa.rsa.comparators import RSATOOLBOX_METHODS, cka, compare, compare_many
from v1rsa.rsa.leaderboard import (
    cross_validated_best_layer,
    fold_similarities,
    leaderboard_table,
    rank_correlation,
    seeds_table,
)
from v1rsa.rsa.model_comparison import (
    BootstrapSamples,
    comparison_pairs,
    dual_bootstrap_variance,
    pairwise_table,
    test_noise,
    test_pairwise,
    test_zero,
)
from v1rsa.rsa.permutation import (
    draw_permutations,
    fdr_bh,
    permutation_null,
    permutation_p_value,
    permutation_test,
)
from v1rsa.rsa.seeds import units_of
from v1rsa.rsa.table import (
    MIN_RSA_CONDITIONS,
    cka_table,
    network_candidates,
    pairwise_from_dataset,
    rsa_table,
    split_candidate_names,
)

__all__ = [
    "METHODS",
    "MIN_RSA_CONDITIONS",
    "BootstrapSamples",
    "comparison_pairs",
    "dual_bootstrap_variance",
    "pairwise_from_dataset",
    "pairwise_table",
    "test_noise",
    "test_pairwise",
    "test_zero",
    "units_of",
    "RSATOOLBOX_METHODS",
    "bootstrap_conditions",
    "cka",
    "cka_table",
    "compare",
    "compare_many",
    "compare_resampled",
    "confidence_interval",
    "cross_validated_best_layer",
    "draw_bootstrap_indices",
    "draw_permutations",
    "fdr_bh",
    "fold_similarities",
    "leaderboard_table",
    "network_candidates",
    "noise_ceiling",
    "permutation_null",
    "permutation_p_value",
    "permutation_test",
    "rank_correlation",
    "rsa_table",
    "seeds_table",
    "split_candidate_names",
]
