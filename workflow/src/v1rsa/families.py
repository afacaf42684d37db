"""Families of networks: a base network, a grid of variants over its options, and seeds.

A family (config ``families.<name>``) asks how an option moves a network towards V1: depth, width,
kernel and pool sizes, regularisers, hand-made or random first filters, the training budget —
``n_epochs: 0`` is the untrained network, the baseline every claim needs. Yamins et al. 2014 found
that across many networks task performance predicted the match with monkey IT; families ask the
same of mouse V1 and gratings (docs/science.md#families). Its keys:

- ``network``: the base network, ``normative`` (the tilt CNN, :class:`v1rsa.normative.TiltCNN`)
  or the name of a network of one's own in ``custom_networks``, whose factory's keyword
  arguments become options;
- ``base``: options every variant starts from, over the base network's own settings (the config's
  ``normative`` section, and a network of one's own's ``kwargs``);
- ``grid``: ``{option: [values]}``, every combination a variant; ``variants``: more variants,
  each a mapping of options (an empty mapping is the base itself);
- ``layers``: the layers recorded (null: those of the base network; for the tilt CNN, each
  block layer named is read in every block, :func:`v1rsa.blocks.block_layers`);
- ``seeds``: each variant is trained once per seed (initial weights and batch order).

A variant's name is made of the options whose values differ from the family's base, in the fixed
order of :data:`NAME_ORDER` (then a factory's keyword arguments by name), joined by ``-``:
``blocks2-epochs0``; the base itself is ``base``. It depends on nothing but the variant's own
settings: reordering the grid or adding a variant renames nothing. The network is
``{family}-{variant}``, its files ``results/models/{family}-{variant}/seed{seed}/``, its RSA
candidates ``{family}-{variant}/seed{seed}/{layer}``. Family names have no ``-``, so a network's
name says which family it belongs to and never equals the name of another kind of network.

Plain Python without torch or Snakemake: the workflow expands and checks the families while it
builds the DAG, and stops with ``ValueError("config: families.<name>.<key>: …")`` before any job
runs. What needs the factory of a network of one's own to run (its keyword arguments, its layers)
is checked by :func:`check_custom_variants`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from v1rsa.blocks import block_layers, pooled_shape
from v1rsa.stimuli import image_shape

#: Options of the tilt CNN's architecture (keyword arguments of TiltCNN).
ARCHITECTURE_OPTIONS = ("n_blocks", "n_channels", "kernel_size", "pool_size", "hidden",
                        "handmade_init", "batch_norm", "dropout")
#: Options of the training on the tilt task (keyword arguments of train_normative), for any base.
TRAINING_OPTIONS = ("n_epochs", "lr", "momentum", "batch_size", "weight_decay", "l1")
#: The order of options in variant names.
NAME_ORDER = ARCHITECTURE_OPTIONS + TRAINING_OPTIONS
#: How an option appears in a name: a prefix before its value, or (true, false) words.
NAME_PARTS = {
    "n_blocks": "blocks", "n_channels": "channels", "kernel_size": "kernel", "pool_size": "pool",
    "hidden": "hidden", "handmade_init": ("handmade", "random"), "batch_norm": ("bn", "nobn"),
    "dropout": "dropout", "n_epochs": "epochs", "lr": "lr", "momentum": "momentum",
    "batch_size": "batch", "weight_decay": "l2_", "l1": "l1_",
}
#: Each option's kind of value: the check it must pass and what the message says it expects.
_OPTION_CHECKS = {
    "positive_int": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "count": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "fraction": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "non_negative": (lambda v: _is_number(v) and v >= 0, "a number ≥ 0"),
    "positive": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "odd": (lambda v: _is_int(v) and v >= 1 and v % 2 == 1, "an odd positive integer"),
}
OPTION_KINDS = {
    "n_blocks": "positive_int", "n_channels": "positive_int", "kernel_size": "odd",
    "pool_size": "positive_int", "hidden": "positive_int", "handmade_init": "bool",
    "batch_norm": "bool", "dropout": "fraction", "n_epochs": "count", "lr": "positive",
    "momentum": "fraction", "batch_size": "positive_int", "weight_decay": "non_negative",
    "l1": "non_negative",
}
#: A family's name: no ``-``, which joins it to its variants' names.
FAMILY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: What a factory keyword's value may show in a name (it becomes part of file paths).
_NAME_VALUE = re.compile(r"[A-Za-z0-9_.+]+")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True)
class Variant:
    """One network of a family, trained once per seed.

    ``architecture``: TiltCNN keyword arguments (base ``normative``) or the factory's keyword
    arguments (a network of one's own); ``training``: keyword arguments of the training on the
    tilt task; ``changed``: the options whose values differ from the family's base (what the
    name says); ``layers``: the layers recorded, by depth.
    """

    family: str
    name: str
    base: str
    architecture: dict
    training: dict
    changed: dict
    seeds: tuple[int, ...]
    layers: tuple[str, ...]
    factory: str | None = None
    kwargs_options: tuple[str, ...] = field(default=())

    @property
    def network(self) -> str:
        """The variant's network name, ``{family}-{variant}``."""
        return f"{self.family}-{self.name}"

    @property
    def untrained(self) -> bool:
        """True for the untrained baseline (0 epochs)."""
        return self.training["n_epochs"] == 0

    def describe(self) -> dict:
        """What the leaderboard and the figures need to know of the variant (JSON-ready)."""
        return {"family": self.family, "variant": self.name, "base": self.base,
                "options": dict(self.changed),
                "settings": {**self.architecture, **self.training},
                "untrained": self.untrained,
                "n_blocks": int(self.architecture.get("n_blocks", 1)),
                "layers": list(self.layers)}


def format_value(value) -> str:
    """An option's value as a name shows it: integers as they are, floats in their shortest
    exact form without a trailing ``.0`` (0.0005, 1e-05, 2), lists joined by ``x``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (list, tuple)):
        return "x".join(format_value(item) for item in value)
    return str(value)


def variant_name(changed: Mapping, kwargs_options: Sequence[str] = ()) -> str:
    """The name of a variant from the options that differ from its family's base: ``base``
    when none does. Tilt-CNN and training options in :data:`NAME_ORDER`, then a factory's
    keyword arguments (``kwargs_options``) sorted by name."""
    parts = []
    for option in NAME_ORDER:
        if option in changed and option not in kwargs_options:
            part = NAME_PARTS[option]
            value = changed[option]
            parts.append(part[0 if value else 1] if isinstance(part, tuple)
                         else f"{part}{format_value(value)}")
    for option in sorted(o for o in changed if o in kwargs_options):
        value = changed[option]
        if isinstance(value, bool):
            parts.append(option if value else f"no_{option}")
        else:
            parts.append(f"{option}{format_value(value)}")
    return "-".join(parts) or "base"


def _same(a, b) -> bool:
    """Equal settings: 10 and 10.0 are, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _sort_key(variant: Variant):
    """Variants in the order of their settings (blocks1, blocks2, … rather than by name)."""
    def key(value):
        if isinstance(value, (bool, int, float)):
            return (0, float(value), "")
        return (1, 0.0, format_value(value))
    options = [o for o in NAME_ORDER if o not in variant.kwargs_options]
    options += sorted(variant.kwargs_options)
    settings = {**variant.architecture, **variant.training}
    return tuple(key(settings.get(option, "")) for option in options)


def _check_value(option: str, value, where: str) -> None:
    kind = OPTION_KINDS.get(option)
    if kind is None:
        return
    check, expected = _OPTION_CHECKS[kind]
    if not check(value):
        raise ValueError(f"{where}: {option} must be {expected}, got {value!r}")


def _check_kwarg_value(option: str, value, where: str) -> None:
    """A factory keyword's value: a number, a bool, a name-safe string or a list of those."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or _is_number(item):
            continue
        if isinstance(item, str) and _NAME_VALUE.fullmatch(item):
            continue
        raise ValueError(
            f"{where}: {option} must be a number, true/false, a string of letters, digits and "
            f"_ . + (it becomes part of file names), or a list of those; got {value!r}")


def _base_settings(name: str, entry: Mapping, config: Mapping):
    """(base network kind, architecture, training, option → kind of option, factory) of a
    family, before its own ``base``."""
    key = f"config: families.{name}.network"
    normative = config["normative"]
    training = {option: normative[option] for option in TRAINING_OPTIONS}
    network = entry.get("network", "normative")
    if network == "normative":
        architecture = {option: normative[option] for option in ARCHITECTURE_OPTIONS}
        return network, architecture, training, None
    custom = config.get("custom_networks", {})
    if network not in custom:
        raise ValueError(f"{key}: {network!r} is neither 'normative' nor a network of "
                         f"custom_networks (known: {sorted(custom)})")
    res = (custom[network].get("input") or {}).get("res", normative["res"])
    if res != normative["res"]:
        raise ValueError(f"{key}: custom_networks.{network}.input.res is {res}; a family trains "
                         f"on the tilt task's gratings, so it must equal normative.res "
                         f"({normative['res']})")
    if custom[network].get("weights"):
        raise ValueError(f"{key}: custom_networks.{network} has weights; a family trains its "
                         "variants from the factory's own initial weights, so its base network "
                         "must have weights: null")
    return network, dict(custom[network].get("kwargs") or {}), training, \
        custom[network]["factory"]


def _family_layers(entry: Mapping, network: str, config: Mapping) -> list[str]:
    if entry.get("layers"):
        return list(entry["layers"])
    if network == "normative":
        return list(config["activations"]["normative"]["layers"])
    return list(config["custom_networks"][network]["layers"])


def _grid_variants(name: str, grid: Mapping) -> list[tuple[str, dict]]:
    if not isinstance(grid, Mapping):
        raise ValueError(f"config: families.{name}.grid: expected a mapping of option → list of "
                         f"values, got {grid!r}")
    for option, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"config: families.{name}.grid.{option}: expected a non-empty list "
                             f"of values, got {values!r}")
    options = list(grid)
    if not options:
        return []
    return [(f"config: families.{name}.grid", dict(zip(options, values, strict=True)))
            for values in itertools.product(*(grid[option] for option in options))]


def _family_variants(name: str, entry: Mapping, config: Mapping) -> list[Variant]:
    where = f"config: families.{name}"
    if not FAMILY_NAME.fullmatch(name):
        raise ValueError(f"{where}: a family's name is letters, digits and _ (no '-', which "
                         "joins it to its variants' names), starting with a letter")
    network, architecture, training, factory = _base_settings(name, entry, config)

    def known(option: str, key: str) -> None:
        allowed = TRAINING_OPTIONS + (ARCHITECTURE_OPTIONS if not factory else ())
        if option in allowed or factory:
            return
        raise ValueError(f"{where}.{key}: unknown option {option!r} of the normative CNN; "
                         f"expected some of {sorted(allowed)}")

    def settings(options: Mapping, key: str, start: tuple[dict, dict]) -> tuple[dict, dict]:
        arch, train = dict(start[0]), dict(start[1])
        for option, value in options.items():
            known(option, key)
            if option in TRAINING_OPTIONS:
                _check_value(option, value, f"{where}.{key}")
                train[option] = value
            else:
                if factory:
                    _check_kwarg_value(option, value, f"{where}.{key}")
                else:
                    _check_value(option, value, f"{where}.{key}")
                arch[option] = value
        return arch, train

    base_options = entry.get("base") or {}
    base_arch, base_train = settings(base_options, "base", (architecture, training))
    base_all = {**base_arch, **base_train}
    proposals = _grid_variants(name, entry.get("grid") or {})
    for index, options in enumerate(entry.get("variants") or []):
        if not isinstance(options, Mapping):
            raise ValueError(f"{where}.variants[{index}]: expected a mapping of option → value, "
                             f"got {options!r}")
        proposals.append((f"{where}.variants[{index}]", dict(options)))
    if not proposals:
        raise ValueError(f"{where}: no variants: give a grid of options with values, or a list "
                         "of variants (an empty mapping {} is the base itself)")

    image = image_shape(config["normative"]["res"])
    layers = _family_layers(entry, network, config)
    seeds = tuple(entry.get("seeds") or (0,))
    variants: dict[str, tuple[str, Variant]] = {}
    for key, options in proposals:
        key_name = key.removeprefix(f"{where}.")
        arch, train = settings(options, key_name, (base_arch, base_train))
        merged = {**arch, **train}
        changed = {option: merged[option] for option in merged
                   if option not in base_all or not _same(merged[option], base_all[option])}
        kwargs_options = tuple(sorted(arch)) if factory else ()
        label = variant_name(changed, kwargs_options)
        if factory is None:
            if arch["handmade_init"] and (arch["n_channels"], arch["kernel_size"]) != (6, 7):
                raise ValueError(
                    f"{key}: variant {label!r}: handmade_init needs n_channels 6 and "
                    f"kernel_size 7 (the six 7 × 7 hand-made filters), got "
                    f"{arch['n_channels']} and {arch['kernel_size']}; set handmade_init: false")
            try:
                pooled_shape(image, arch["pool_size"], arch["n_blocks"])
            except ValueError as err:
                raise ValueError(f"{key}: variant {label!r}: {err} (gratings of "
                                 f"normative.res {config['normative']['res']})") from None
            recorded = block_layers(layers, arch["n_blocks"])
        else:
            recorded = layers
        if label in variants:
            raise ValueError(f"{key}: variant {label!r} has the same settings as one from "
                             f"{variants[label][0]}; each variant must differ")
        variants[label] = (key, Variant(
            family=name, name=label, base=network, architecture=arch, training=train,
            changed=changed, seeds=seeds, layers=tuple(recorded), factory=factory,
            kwargs_options=kwargs_options))
    return sorted((variant for _, variant in variants.values()), key=_sort_key)


def expand(config: Mapping) -> list[Variant]:
    """The variants of the families that run (``config["run_families"]``; every family when
    the key is absent), families by name and variants by their settings.

    Every family of ``config`` (the validated workflow config) is checked, also those that do
    not run. Raises ``ValueError("config: families.<name>.<key>: …")`` for an unknown option, an
    empty grid, a value of the wrong kind, two variants with the same settings, a depth the
    gratings cannot take, or a base that does not exist; and names a family of ``run_families``
    that is not defined.
    """
    families = config.get("families") or {}
    run = config.get("run_families", list(families))
    unknown = [name for name in run if name not in families]
    if unknown:
        raise ValueError(f"config: run_families names {unknown}, not keys of families "
                         f"(known: {sorted(families)})")
    variants = []
    for name in sorted(families):
        family = _family_variants(name, families[name] or {}, config)
        if name in run:
            variants += family
    return variants


def check_custom_variants(variants: Sequence[Variant], build, check) -> None:
    """Build each variant of a network of one's own and check it, naming the variant.

    build(factory, kwargs) → the network, check(network, variant) → raises ``ValueError`` (the
    workflow's: :func:`v1rsa.activations.build_network`, then
    :func:`v1rsa.activations.check_network` and one logit per grating); this module only names
    what failed, so that it needs no torch.
    """
    for variant in variants:
        if variant.factory is None:
            continue
        where = f"config: families.{variant.family}"
        try:
            network = build(variant.factory, variant.architecture)
            check(network, variant)
        except ValueError as err:
            raise ValueError(f"{where}: variant {variant.name!r}: {err}") from None
