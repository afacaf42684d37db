"""Layer activations of any torch module, recorded with forward hooks on named submodules.

The course (docs/science.md#activations) reads the normative CNN's ``pool`` and ``fc`` layers this
way; the same code serves every model, since layers are found by their ``named_modules()`` name: the
project's own networks (:func:`load_network`) and networks of one's own, built by a factory named by
its import path (:func:`build_network`), shown the gratings through an input adapter
(:func:`adapt_images`) and checked before any work is done (:func:`check_network`).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn


def record_activations(
    model: nn.Module,
    images,
    layers: Sequence[str],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    units: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, np.ndarray]:
    """Run ``images`` through ``model`` and return each layer's output, flattened per stimulus.

    images: (n, H, W) or (n, C, H, W) array or tensor; a missing channel dim is added.
    layers: names from ``dict(model.named_modules())``, e.g. ``["pool", "fc"]``.
    device: where to run (default: where the model's parameters are); the model is moved there.
    units: optional ``{layer: flat unit indices}``: only these columns of a layer are kept,
    picked on the device before the copy to the CPU (a layer not named keeps every unit).
    Returns ``{layer: (n, n_units) float32}``. Runs in eval mode under ``torch.inference_mode``;
    the model's training flag is restored and every hook removed afterwards, also on error.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        available = [name for name in modules if name]
        raise ValueError(f"layer(s) {missing} not found in {type(model).__name__}; "
                         f"available module names: {available}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers {list(layers)} name a module more than once")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    unknown = sorted(set(units or {}) - set(layers))
    if unknown:
        raise ValueError(f"units name layer(s) {unknown} that are not among the layers "
                         f"{list(layers)}")

    images = images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(f"images must be (n, H, W) or (n, C, H, W), got shape "
                         f"{tuple(images.shape)}")
    images = images.to(torch.float32)
    n_stimuli = images.shape[0]

    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    selected = {name: torch.as_tensor(np.asarray(index, dtype=np.int64), device=device)
                for name, index in (units or {}).items()}

    outputs_this_batch: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def hook_for(name):
        def hook(_module, _inputs, output):
            if not torch.is_tensor(output):
                raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor; "
                                "hook a submodule that returns one tensor")
            outputs_this_batch[name].append(output)
        return hook

    activations: dict[str, np.ndarray] = {}
    was_training = model.training
    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    try:
        model.eval()
        with torch.inference_mode():
            for start in range(0, n_stimuli, batch_size):
                batch = images[start:start + batch_size].to(device)
                model(batch)
                for name in layers:
                    calls = outputs_this_batch[name]
                    if len(calls) != 1:
                        raise ValueError(
                            f"layer {name!r} ran {len(calls)} times in one forward pass; "
                            "hook a module that runs exactly once per input")
                    flat = calls.pop().reshape(batch.shape[0], -1)
                    if name in selected:
                        index = selected[name]
                        if index.numel() and not 0 <= int(index.min()) <= int(
                                index.max()) < flat.shape[1]:
                            raise ValueError(
                                f"units of layer {name!r}: indices must be in 0…"
                                f"{flat.shape[1] - 1} (the layer has {flat.shape[1]} units), "
                                f"got {int(index.min())}…{int(index.max())}")
                        flat = flat[:, index]
                    if name not in activations:
                        activations[name] = np.empty((n_stimuli, flat.shape[1]), np.float32)
                    activations[name][start:start + batch.shape[0]] = (
                        flat.to("cpu", torch.float32).numpy())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return activations


def activations_dataset(
    activations: Mapping[str, np.ndarray],
    orientation_deg,
    *,
    model_name: str,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """Label recorded activations as the contract ``activations/{model}.nc`` asks.

    activations: ``{layer: (n_conditions, n_units)}``, as from :func:`record_activations`.
    orientation_deg: (n_conditions,) degrees, the grating orientation of each condition.
    Returns one float32 variable per layer, ``{layer}(condition, {layer}_unit)``, with coords
    ``condition`` (int64 index) and ``orientation(condition)`` float64 degrees; attrs ``model``,
    ``layers`` (comma-separated, in order) and ``attrs``.
    """
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    if orientation_deg.ndim != 1:
        raise ValueError(f"orientation_deg must be 1-d, got shape {orientation_deg.shape}")
    if not activations:
        raise ValueError("no layers given: activations is empty")
    n_conditions = orientation_deg.shape[0]
    variables = {}
    for layer, values in activations.items():
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != n_conditions:
            raise ValueError(f"layer {layer!r}: expected ({n_conditions}, n_units) activations "
                             f"(one row per orientation), got shape {values.shape}")
        variables[layer] = (("condition", f"{layer}_unit"), values)
    return xr.Dataset(
        variables,
        coords={
            "condition": ("condition", np.arange(n_conditions, dtype=np.int64)),
            "orientation": ("condition", orientation_deg),
        },
        attrs={"model": model_name, "layers": ",".join(activations), **dict(attrs or {})},
    )


#: ``package.module:function``, the function part possibly dotted (``module:Class.method``).
_FACTORY_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

#: Builders of the project's own networks from the ``architecture`` saved in metrics.json.
NETWORK_BUILDERS = {
    "normative": "v1rsa.normative:build",
    "encoder": "v1rsa.encoding:build",
}


def load_network(kind: str, metrics_path, weights_path) -> nn.Module:
    """Rebuild a trained network of ``kind`` from its metrics.json and model.pt (weights only).

    Raises ``ValueError`` naming the file when the metadata or the weights do not fit.
    (A network of one's own is built by :func:`build_network` instead.)
    """
    from v1rsa.training import load_state_dict

    if kind not in NETWORK_BUILDERS:
        raise ValueError(f"unknown network {kind!r}; expected one of {sorted(NETWORK_BUILDERS)}")
    metrics = json.loads(Path(metrics_path).read_text())
    if "architecture" not in metrics:
        raise ValueError(f"{metrics_path}: no 'architecture' key to rebuild the {kind} network")
    module_name, function = NETWORK_BUILDERS[kind].split(":")
    build = getattr(importlib.import_module(module_name), function)
    return load_state_dict(build(metrics["architecture"]), weights_path)


def import_factory(spec: str) -> Callable[..., nn.Module]:
    """The function that ``spec`` (``"package.module:function"``) names, imported but not called.

    The module must be importable by this Python (installed, or its folder on ``PYTHONPATH``).
    Raises ``ValueError`` naming ``spec`` when it is malformed, the module cannot be imported,
    or it has no such callable.
    """
    if not isinstance(spec, str) or not _FACTORY_SPEC.fullmatch(spec):
        raise ValueError(f"factory {spec!r}: expected an import path 'package.module:function' "
                         "(e.g. 'my_package.networks:build')")
    module_name, attribute = spec.split(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as err:  # an ImportError, or any error raised while the module runs
        raise ValueError(
            f"factory {spec!r}: cannot import module {module_name!r} ({type(err).__name__}: "
            f"{err}); it must be importable by the Python that runs the workflow (install its "
            "package, or add its folder to PYTHONPATH)") from err
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"factory {spec!r}: module {module_name!r} has no attribute "
                             f"{attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"factory {spec!r}: {attribute!r} is a {type(target).__name__}, not a "
                         "function that returns a torch.nn.Module")
    return target


def factory_file(spec: str) -> str | None:
    """The source file of the module that holds the factory ``spec``, found without running
    the module (its parent packages are imported); None when it has no file or is not found."""
    import importlib.util

    try:
        found = importlib.util.find_spec(spec.split(":")[0])
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    return origin if origin and Path(origin).is_file() else None


def build_network(factory: str, *, kwargs: Mapping | None = None, weights=None,
                  seed: int = 0) -> nn.Module:
    """A network of one's own: ``factory(**kwargs)``, then the state_dict in ``weights``, if any.

    factory: ``"package.module:function"`` returning a ``torch.nn.Module``. The factory runs
    with torch's random generator seeded with ``seed`` (in a forked random state, so the
    caller's is untouched): a randomly initialised network is the same on every call.
    weights: a file holding a ``state_dict`` (``torch.save(model.state_dict(), path)``), read
    with ``torch.load(weights_only=True)`` and loaded strictly (every key, every shape).
    Raises ``ValueError`` naming the factory or the file when something does not fit.
    """
    build = import_factory(factory)
    kwargs = dict(kwargs or {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            network = build(**kwargs)
        except Exception as err:
            raise ValueError(f"factory {factory!r} failed when called with keyword arguments "
                             f"{kwargs} ({type(err).__name__}: {err})") from err
    if not isinstance(network, nn.Module):
        raise ValueError(f"factory {factory!r} returned a {type(network).__name__}; expected a "
                         "torch.nn.Module")
    if weights is not None:
        _load_weights(network, weights)
    return network


def _load_weights(network: nn.Module, path) -> nn.Module:
    from v1rsa.training import load_state_dict

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    return load_state_dict(network, path)  # ValueError naming the file when it does not fit


def adapt_images(images, *, value_range: Sequence[float] = (0.0, 1.0), n_channels: int = 1,
                 size: Sequence[int] | None = None, mean=None, std=None) -> torch.Tensor:
    """Show grey images with values in [0, 1] to a network the way it expects its input.

    images: (n, H, W) array or tensor (a tensor stays on its device). In order: values are
    mapped linearly so that 0 → ``value_range[0]`` and 1 → ``value_range[1]``; the images are
    resized to ``size`` = (height, width) pixels when given (bilinear, antialiased); the grey
    image is repeated across ``n_channels``; then ``(x − mean) / std`` per channel when given
    (a number, or one per channel, e.g. ImageNet's). Returns (n, n_channels, H', W') float32.
    """
    images = images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    if images.ndim != 3:
        raise ValueError(f"images must be (n, H, W) grey images, got shape {tuple(images.shape)}")
    if len(value_range) != 2:
        raise ValueError(f"value_range must be [low, high], got {value_range!r}")
    if int(n_channels) != n_channels or n_channels < 1:
        raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}")
    low, high = (float(v) for v in value_range)
    x = images.to(torch.float32)[:, None] * (high - low) + low
    if size is not None:
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be [height, width] in pixels, got {size!r}")
        x = nn.functional.interpolate(x, size=tuple(int(v) for v in size), mode="bilinear",
                                      antialias=True, align_corners=False)
    x = x.expand(-1, int(n_channels), -1, -1)
    for name, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        value = torch.as_tensor(np.asarray(value, dtype=np.float32).reshape(-1), device=x.device)
        if value.numel() not in (1, n_channels):
            raise ValueError(f"{name} must be a number or one value per channel ({n_channels}), "
                             f"got {value.numel()} values")
        if name == "std" and bool((value <= 0).any()):
            raise ValueError(f"std must be positive, got {value.tolist()}")
        value = value.reshape(1, -1, 1, 1)
        x = x - value if name == "mean" else x / value
    return x.contiguous()


def grating_images(orientation_deg, *, sf: float, res: float, offset: float = 0.0,
                   shift_deg: float = 0.0) -> np.ndarray:
    """The gratings a network sees: (n, H, W) float32 at ``orientation_deg + shift_deg``,
    values ``{0, 1} + offset``, resolution ``res`` (docs/science.md#gratings)."""
    from v1rsa.stimuli import gratings

    angles = np.asarray(orientation_deg, dtype=np.float64) + shift_deg
    return gratings(angles, sf=sf, res=res, offset=offset)


def grating_activations(
    model: nn.Module,
    orientation_deg,
    layers: Sequence[str],
    *,
    sf: float,
    res: float,
    offset: float = 0.0,
    shift_deg: float = 0.0,
    input_adapter: Mapping | None = None,
    batch_size: int = 256,
    device=None,
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` to one grating per orientation (docs/science.md#gratings).

    The network sees the grating at ``orientation_deg + shift_deg`` with values
    ``{0, 1} + offset`` at resolution ``res``, passed through :func:`adapt_images` with the
    keyword arguments ``input_adapter`` when given. Returns ``{layer: (n, n_units) float32}``.
    """
    images = grating_images(orientation_deg, sf=sf, res=res, offset=offset, shift_deg=shift_deg)
    if input_adapter is not None:
        images = adapt_images(images, **input_adapter)
    return record_activations(model, images, layers, batch_size=batch_size, device=device)


def layer_shapes(model: nn.Module, images, layers: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """The shape of each layer's output for one stimulus, e.g. ``{"conv": (6, 48, 64)}``.

    images: a network input of one or more stimuli ((n, C, H, W) or (n, H, W)); runs one
    forward pass of the first under ``torch.inference_mode``.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"layer(s) {missing} not found in {type(model).__name__}")
    images = images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    images = images[:1].to(torch.float32)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    first = next(model.parameters(), None)
    if first is not None:
        images = images.to(first.device)
    shapes: dict[str, tuple[int, ...]] = {}

    def hook_for(name):
        def hook(_module, _inputs, output):
            if not torch.is_tensor(output):
                raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            shapes.setdefault(name, tuple(output.shape[1:]))
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes


def check_network(model: nn.Module, layers: Sequence[str], *, sf: float, res: float,
                  offset: float = 0.0, input_adapter: Mapping | None = None) -> dict[str, int]:
    """Run one grating through ``model`` as the workflow will, and return each layer's number
    of units. Raises ``ValueError`` when a layer is missing (naming the available ones), runs
    more or less than once, or when the network cannot take the adapted grating."""
    try:
        recorded = grating_activations(model, [0.0], layers, sf=sf, res=res, offset=offset,
                                       input_adapter=input_adapter, device="cpu")
    except (RuntimeError, TypeError) as err:
        shape = (480 * res, 640 * res)
        raise ValueError(
            f"{type(model).__name__} could not take a grating of {shape[0]:g} × {shape[1]:g} "
            f"pixels through the input adapter {dict(input_adapter or {})} "
            f"({type(err).__name__}: {err})") from err
    return {layer: values.shape[1] for layer, values in recorded.items()}


def open_network(name: str, *, seed: int, custom: Mapping | None = None, weights=None,
                 metrics=None, model=None) -> nn.Module:
    """The network a stage reads: a user's own (``custom``: factory, kwargs, …, built with
    ``seed`` and optional ``weights``) or a trained built-in one (``metrics``, ``model`` files).
    """
    if custom:
        return build_network(**custom, weights=weights, seed=seed)
    return load_network(name, metrics, model)


def condition_activations(network: nn.Module, orientation_deg, *, name: str, seed: int,
                          layers: Sequence[str], grating: Mapping, input_adapter=None,
                          custom: Mapping | None = None, batch_size: int = 256,
                          device=None) -> xr.Dataset:
    """Activations of ``layers`` to one grating per condition, as the activations contract.

    grating: keyword arguments of :func:`grating_activations` (sf, res, offset, shift_deg).
    The attrs record the seed and the gratings, and for a network of one's own its factory,
    kwargs and input adapter.
    """
    import json

    recorded = grating_activations(network, orientation_deg, layers, **grating,
                                   input_adapter=input_adapter, batch_size=batch_size,
                                   device=device)
    provenance = {"seed": seed, **grating}
    if custom:
        provenance.update(factory=custom["factory"], kwargs=json.dumps(custom["kwargs"]),
                          input_adapter=json.dumps(input_adapter))
    return activations_dataset(recorded, orientation_deg, model_name=name, attrs=provenance)
