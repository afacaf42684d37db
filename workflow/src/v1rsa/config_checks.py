"""Checks of the workflow's configuration, made when the workflow starts, before any job runs.

Two passes, each raising :class:`ConfigError` (a ``ValueError``) whose message holds one line per
problem, each starting with the key it names as a dotted path (``config: binning.bin_width_deg:
...``), so that a mistake stops the run at once instead of failing a job half-way through:

1. :func:`check_schema`: the JSON schema (``workflow/schemas/config.schema.yaml``), where numbers
   must be finite (YAML's ``.nan`` and ``.inf`` are floats that a schema's ``type: number``
   accepts) and integers must be written as integers; a key the schema does not know gets a
   "did you mean" (difflib) instead of the validator's dump of the whole config.
2. :func:`check_config`: what a schema cannot say: values that depend on each other (a bin width
   that divides 360°, a range of orientations that keeps enough conditions for an RSA, layers
   that the networks have) and files that must exist. One function per config section,
   registered with :func:`section`; each yields its problems as lines.

Plain Python and the ``jsonschema`` package: nothing here knows about Snakemake.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

from jsonschema import Draft202012Validator, validators

from v1rsa.blocks import block_layers, pooled_shape


class ConfigError(ValueError):
    """The configuration has problems; the message has one line per problem, naming its key."""


def _is_finite_number(checker, instance) -> bool:
    return (isinstance(instance, int | float) and not isinstance(instance, bool)
            and math.isfinite(instance))


def _is_integer(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _is_finite_number, "integer": _is_integer}),
)
_YAML_TEXT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _dotted(path) -> str:
    return ".".join(str(part) for part in path)


def _describe(error) -> list[str]:
    """One line per problem in a jsonschema ``ValidationError``, naming the key."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        lines = []
        for key in (key for key in instance if key not in known):
            guess = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else f"expected one of {known}"
            lines.append(f"config: {_dotted([*path, key])}: unknown key; {hint}")
        return lines
    message = error.message
    if error.validator == "type":
        if isinstance(instance, float) and not math.isfinite(instance):
            message = f"{instance} is not a finite number"
        elif isinstance(instance, float) and instance.is_integer():
            message = f"{instance!r} is not an integer; write {int(instance)}"
        elif isinstance(instance, str) and _YAML_TEXT_NUMBER.match(instance):
            message = (f"{instance!r} is text, not a number: YAML reads a number with an exponent "
                       "as a number only with a decimal point, e.g. 1.0e-4")
    return [f"config: {_dotted(path) or '(top level)'}: {message}"]


def schema_problems(config: dict, schema: dict) -> list[str]:
    """The ways ``config`` breaks ``schema``, one line each: unknown keys first, then by key."""
    errors = sorted(_Validator(schema).iter_errors(config),
                    key=lambda e: (e.validator != "additionalProperties",
                                   [str(part) for part in e.absolute_path]))
    return [line for error in errors for line in _describe(error)]


def check_schema(config: dict, schema: dict) -> None:
    """Raise :class:`ConfigError` listing :func:`schema_problems`, if there are any."""
    problems = schema_problems(config, schema)
    if problems:
        raise ConfigError("\n".join(problems))


_SECTION_CHECKS: list[Callable[[dict], Iterator[str]]] = []


def section(check: Callable[[dict], Iterator[str]]) -> Callable[[dict], Iterator[str]]:
    """Register a check of one config section: a function of the whole (schema-valid) config
    that yields one line per problem, starting with ``config: <key>:``."""
    _SECTION_CHECKS.append(check)
    return check


def config_problems(config: dict) -> list[str]:
    """Every registered section check's problems with ``config`` (already schema-valid)."""
    return [problem for check in _SECTION_CHECKS for problem in check(config)]


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` listing :func:`config_problems`, if there are any."""
    problems = config_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))


# --- what the sections need to know --------------------------------------------------------

#: fewest conditions an RSA gives a meaningful answer on: with 3 every bootstrap sample of
#: conditions holds the same 3 pairs (CI = value), and 4 conditions have 4! = 24 orderings, too
#: few for a permutation test to reach p < 0.05. Equal to ``v1rsa.rsa.MIN_RSA_CONDITIONS``.
MIN_RSA_CONDITIONS = 5
#: layouts whose orientation bins the config sets (binning.bin_width_deg); the others are binned
LAYOUTS_BINNED_BY_CONFIG = ("raw", "raw_hdf5")
#: the module names of the built-in networks (named_modules), as v1rsa.normative and
#: v1rsa.encoding build them
NETWORK_MODULES = {
    "normative": ("conv", "conv_norm", "pool", "dropout", "fc", "out"),
    "encoder": ("conv", "fc"),
}
#: the canvas the gratings are drawn on at res = 1: height, width (v1rsa.stimuli)
CANVAS_PIXELS = (480, 640)


def bin_centres_deg(bin_width_deg: float) -> list[float]:
    """Centres of the orientation bins [k·w, (k+1)·w) that cover 0…360° (w divides 360)."""
    n_bins = round(360 / bin_width_deg)
    return [(k + 0.5) * bin_width_deg for k in range(n_bins)]


def divides_360(width_deg: float) -> bool:
    """Whether ``width_deg`` > 0 splits 360° into a whole number of bins (to 1e-9)."""
    return width_deg > 0 and abs(360 / width_deg - round(360 / width_deg)) * width_deg < 1e-9


def image_shape(res: float) -> tuple[int, int]:
    """(height, width) in pixels of a grating drawn at resolution ``res`` (v1rsa.stimuli)."""
    return tuple(math.ceil(size * res) for size in CANVAS_PIXELS)


# --- one check per section -------------------------------------------------------------------

@section
def run(config: dict) -> Iterator[str]:
    for name in config["run"]:
        if name not in config["datasets"]:
            yield (f"config: run: {name!r} is not a key of datasets; expected one of "
                   f"{sorted(config['datasets'])}")


@section
def datasets(config: dict) -> Iterator[str]:
    for name, entry in config["datasets"].items():
        if entry["source"] != "local":
            continue
        key, path = f"config: datasets.{name}.path", entry["path"]
        if not os.path.exists(path):
            yield (f"{key}: {path!r} does not exist (relative paths start from the folder "
                   f"Snakemake runs in, {os.getcwd()})")
        elif not os.path.isfile(path):
            yield f"{key}: {path!r} is a directory; expected the recording's file"
        elif os.path.abspath(path).startswith(os.path.abspath(f"resources/{name}") + os.sep):
            yield (f"{key}: {path!r} is in resources/{name}/, where the workflow links this "
                   "dataset's file; point at the file where you keep it")


@section
def binning(config: dict) -> Iterator[str]:
    width = config["binning"]["bin_width_deg"]
    if not divides_360(width):
        yield (f"config: binning.bin_width_deg: {width:g} does not divide 360; expected e.g. "
               "1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 18, 20, 24, 30")


@section
def encoder(config: dict) -> Iterator[str]:
    width = config["encoder"]["bin_width_deg"]
    if not divides_360(width):
        yield (f"config: encoder.bin_width_deg: {width:g} does not divide 360; expected e.g. "
               "1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 18, 20, 24, 30")


@section
def normative(config: dict) -> Iterator[str]:
    settings = config["normative"]
    kernel_size, pool_size = settings["kernel_size"], settings["pool_size"]
    if kernel_size % 2 != 1:
        yield (f"config: normative.kernel_size: {kernel_size} is even; expected an odd size, "
               "so that 'same' padding keeps the image size")
    if settings["handmade_init"] and (settings["n_channels"], kernel_size) != (6, 7):
        yield ("config: normative.handmade_init: the hand-made filters are 6 channels of 7 × 7; "
               f"got n_channels {settings['n_channels']}, kernel_size {kernel_size}. Set "
               "handmade_init: false to start from random filters")
    try:
        pooled_shape(image_shape(settings["res"]), pool_size, settings["n_blocks"])
    except ValueError as err:
        key = "pool_size" if settings["n_blocks"] == 1 else "n_blocks"
        yield f"config: normative.{key}: {err} (normative.res {settings['res']:g})"


@section
def layers(config: dict) -> Iterator[str]:
    for network, modules in NETWORK_MODULES.items():
        if network == "normative":  # blocks 2, 3…: conv2, conv2_norm, pool2…
            modules = block_layers(modules, config["normative"]["n_blocks"])
        recorded = config["activations"][network]["layers"]
        unknown = [layer for layer in recorded if layer not in modules]
        if unknown:
            yield (f"config: activations.{network}.layers: {unknown} are not layers of the "
                   f"{network} network; expected some of {list(modules)}")
        mapped = config["receptive_fields"][network]
        unknown = [layer for layer in mapped["layers"] if layer not in modules]
        if unknown:
            yield (f"config: receptive_fields.{network}.layers: {unknown} are not layers of the "
                   f"{network} network; expected some of {list(modules)}")
        stray = [layer for layer in mapped.get("units", {}) if layer not in mapped["layers"]]
        if stray:
            yield (f"config: receptive_fields.{network}.units: {stray} are not among the mapped "
                   f"layers {mapped['layers']}")


@section
def rdm_conditions(config: dict) -> Iterator[str]:
    selection = config["rdm"]["conditions"]
    low, high = selection["min_deg"], selection["max_deg"]
    if low > high:
        yield f"config: rdm.conditions: min_deg {low:g} is above max_deg {high:g}"
        return
    width = config["binning"]["bin_width_deg"]
    if not divides_360(width):
        return  # said by binning()
    kept = sum(low <= centre <= high for centre in bin_centres_deg(width))
    binned_here = [name for name in config["run"]
                   if config["datasets"].get(name, {}).get("layout") in LAYOUTS_BINNED_BY_CONFIG]
    if binned_here and kept < MIN_RSA_CONDITIONS:
        yield (f"config: rdm.conditions: {low:g}…{high:g}° keeps {kept} of the "
               f"{width:g}° bins (binning.bin_width_deg) of {binned_here}; an RSA needs at least "
               f"{MIN_RSA_CONDITIONS} conditions: widen the range or narrow the bins")
    perplexity = config["figures"]["tsne_perplexity"]
    if binned_here and perplexity is not None and perplexity >= kept:
        yield (f"config: figures.tsne_perplexity: {perplexity:g} must be below the number of "
               f"conditions shown ({kept}, rdm.conditions and binning.bin_width_deg)")


def condition_bin_width(entry: Mapping, bin_width_deg: float) -> float:
    """The width (degrees) of a dataset's orientation bins, known before it is read: the
    course's binned files have their own, single trials are binned by
    ``binning.bin_width_deg``. (The group job checks the conditions themselves.)"""
    from v1rsa.load import BINNED_LAYOUTS

    if entry["layout"] in BINNED_LAYOUTS:
        return float(BINNED_LAYOUTS[entry["layout"]][2])
    return float(bin_width_deg)


def check_groups_config(config: Mapping, networks: Sequence[str]) -> None:
    """Start-up checks of ``config["groups"]``: each group names at least two distinct keys of
    ``datasets`` whose conditions are the same (the same bins: single-trial layouts binned by
    ``binning.bin_width_deg``, or the course's binned files with theirs), and known networks.
    Raises ``ValueError("config: groups.<name>.<key>: …")``."""
    datasets = config["datasets"]
    for name, group in (config.get("groups") or {}).items():
        key = f"config: groups.{name}"
        members = list(group["datasets"])
        unknown = [d for d in members if d not in datasets]
        if unknown:
            raise ValueError(f"{key}.datasets: {unknown} are not keys of datasets "
                             f"(known: {sorted(datasets)})")
        if len(members) < 2:
            raise ValueError(f"{key}.datasets: a group needs at least two recordings, got "
                             f"{members}")
        widths = {d: condition_bin_width(datasets[d], config["binning"]["bin_width_deg"])
                  for d in members}
        if len(set(widths.values())) > 1:
            described = ", ".join(f"{d}: {datasets[d]['layout']} in {width:g}° bins"
                                  for d, width in widths.items())
            raise ValueError(f"{key}.datasets: the recordings of a group must share their "
                             f"stimulus conditions, but they are binned differently ({described})")
        unknown = [n for n in group.get("networks", []) if n not in networks]
        if unknown:
            raise ValueError(f"{key}.networks: {unknown} are not networks of this workflow "
                             f"(known: {list(networks)})")
