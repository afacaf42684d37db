"""Training seeds as a source of variance: a network's seeds averaged, and resampled like
recordings.

A claim about an architecture ("pool is closer to V1 than fc") should hold for new
initialisations too, not only for the one that was trained. Where a network has several seeds,
its candidates ``{network}/seed{s}/{layer}`` are averaged over seeds into one unit
``{network}/{layer}``, and the unit's uncertainty counts both the conditions and the seeds: in
each bootstrap draw the seeds are drawn with replacement along with the conditions (a two-factor
bootstrap, seeds × conditions, as rsatoolbox's ``eval_dual_bootstrap`` resamples subjects ×
conditions), and the three kinds of sample (both resampled; seeds only, on all conditions;
conditions only, all seeds) give the corrected variance of Schütt et al. 2023
(:func:`v1rsa.rsa.model_comparison.dual_bootstrap_variance`, with R = the number of seeds).
All layers of one network share its seed draws (they are the same trained networks), so layers
are compared within the same initialisations; different networks draw independently.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from v1rsa.rsa.model_comparison import BootstrapSamples

#: candidate names ``{network}/seed{seed}/{layer}``
CANDIDATE_NAME = re.compile(r"^(?P<network>.+)/seed(?P<seed>\d+)/(?P<layer>[^/]+)$")


@dataclass(frozen=True)
class Units:
    """The units of comparison made from candidates: one per candidate of a network with one
    seed, one per (network, layer) of a network with several.

    names: unit names (the candidate's own, or ``{network}/{layer}``); members: the candidate
    indices of each unit (one per seed, in seed order); networks: the network whose seeds a
    unit averages (None for a single candidate); instances: the network instance of each unit
    (its name without the layer), whose units are layers in network order.
    """

    names: list[str]
    members: list[np.ndarray]
    networks: list[str | None]
    instances: list[str]

    @property
    def n_seeds(self) -> np.ndarray:
        return np.array([len(m) for m in self.members], dtype=np.int64)

    def seed_means(self) -> np.ndarray:
        """Indices of the units that average several seeds."""
        return np.flatnonzero(self.n_seeds > 1)


def units_of(candidate_names: Sequence[str]) -> Units:
    """Group candidates named ``{network}/seed{s}/{layer}`` into units (:class:`Units`), in
    order of first appearance; names of another form are units of their own."""
    parsed = [CANDIDATE_NAME.match(str(name)) for name in candidate_names]
    seeds_of: dict[str, list[int]] = {}
    for match in parsed:
        if match:
            seeds = seeds_of.setdefault(match["network"], [])
            if int(match["seed"]) not in seeds:
                seeds.append(int(match["seed"]))
    units: dict[str, dict] = {}
    for index, (name, match) in enumerate(zip(candidate_names, parsed, strict=True)):
        if match is None or len(seeds_of[match["network"]]) == 1:
            instance = str(name).rsplit("/", 1)[0] if match else str(name)
            units[str(name)] = {"members": {0: index}, "network": None, "instance": instance}
            continue
        network, layer = match["network"], match["layer"]
        unit = units.setdefault(f"{network}/{layer}",
                                {"members": {}, "network": network, "instance": network})
        unit["members"][int(match["seed"])] = index
    for name, unit in units.items():
        if unit["network"] is not None and len(unit["members"]) != len(seeds_of[unit["network"]]):
            missing = sorted(set(seeds_of[unit["network"]]) - set(unit["members"]))
            raise ValueError(f"candidates: {name} has no RDM for seed(s) {missing} of network "
                             f"{unit['network']!r}; every seed must have the same layers")
    return Units(
        names=list(units),
        members=[np.array([unit["members"][s] for s in sorted(unit["members"])], dtype=np.intp)
                 for unit in units.values()],
        networks=[unit["network"] for unit in units.values()],
        instances=[unit["instance"] for unit in units.values()],
    )


def draw_seeds(units: Units, n_bootstrap: int, seed: int) -> dict[str, np.ndarray]:
    """Seeds drawn with replacement for each network with several seeds: network →
    (n_bootstrap, n_seeds) int64 indices into its seeds (in seed order). Each network's draws
    come from its own stream, ``SeedSequence(seed, spawn_key=(2, crc32(network)))``, so adding
    a network or a candidate changes no other draw."""
    draws = {}
    for network, members in zip(units.networks, units.members, strict=True):
        if network is None or network in draws:
            continue
        stream = np.random.SeedSequence(seed, spawn_key=(2, zlib.crc32(network.encode())))
        draws[network] = np.random.default_rng(stream).integers(
            0, len(members), size=(n_bootstrap, len(members)))
    return draws


def unit_samples(units: Units, samples, observed, draws: dict[str, np.ndarray],
                 n_conditions: int) -> tuple[BootstrapSamples, np.ndarray]:
    """The bootstrap samples and observed values of every unit.

    samples: (n_bootstrap, K) each candidate's comparison on resampled conditions; observed:
    (K,) on all conditions; draws: :func:`draw_seeds`. A single candidate keeps its samples
    (one factor). A seed mean gets, per draw b with seeds drawn d_b: both = mean over d_b of
    the seeds' samples in b; rdm = mean over d_b of the seeds' observed values; pattern = mean
    over all seeds of their samples in b. Returns (BootstrapSamples, (U,) observed means).
    """
    samples = np.asarray(samples, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    n_bootstrap = samples.shape[0]
    shape = (n_bootstrap, len(units.names))
    both, rdm, pattern = np.empty(shape), np.empty(shape), np.empty(shape)
    unit_observed = np.empty(len(units.names))
    invalid = np.isnan(samples).any(axis=1)
    for u, (members, network) in enumerate(zip(units.members, units.networks, strict=True)):
        member_samples = samples[:, members]  # (B, S)
        unit_observed[u] = observed[members].mean()
        pattern[:, u] = member_samples.mean(axis=1)
        if network is None:
            both[:, u] = pattern[:, u]
            rdm[:, u] = observed[members[0]]
            continue
        drawn = draws[network]  # (B, S) indices into members
        both[:, u] = np.take_along_axis(member_samples, drawn, axis=1).mean(axis=1)
        rdm[:, u] = observed[members][drawn].mean(axis=1)
    rdm[invalid] = np.nan
    return BootstrapSamples(both, rdm, pattern, units.n_seeds, n_conditions), unit_observed
