"""Layer activations of any torch module, recorded with forward hooks on named submodules.

The course (SCIENCE.md §5) reads the normative CNN's ``pool`` and ``fc`` layers this way; the
same code serves every model, since layers are found by their ``named_modules()`` name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
) -> dict[str, np.ndarray]:
    """Run ``images`` through ``model`` and return each layer's output, flattened per stimulus.

    images: (n, H, W) or (n, C, H, W) array or tensor; a missing channel dim is added.
    layers: names from ``dict(model.named_modules())``, e.g. ``["pool", "fc"]``.
    device: where to run (default: where the model's parameters are); the model is moved there.
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


#: Builders of the project's own networks from the ``architecture`` saved in metrics.json.
NETWORK_BUILDERS = {
    "normative": "v1rsa.normative:build",
    "encoder": "v1rsa.encoding:build",
}


def load_network(kind: str, metrics_path, weights_path) -> nn.Module:
    """Rebuild a trained network of ``kind`` from its metrics.json and model.pt (weights only).

    Raises ``ValueError`` naming the file when the metadata or the weights do not fit.
    """
    import importlib
    import json
    from pathlib import Path

    from v1rsa.training import load_state_dict

    if kind not in NETWORK_BUILDERS:
        raise ValueError(f"unknown network {kind!r}; expected one of {sorted(NETWORK_BUILDERS)}")
    metrics = json.loads(Path(metrics_path).read_text())
    if "architecture" not in metrics:
        raise ValueError(f"{metrics_path}: no 'architecture' key to rebuild the {kind} network")
    module_name, function = NETWORK_BUILDERS[kind].split(":")
    build = getattr(importlib.import_module(module_name), function)
    return load_state_dict(build(metrics["architecture"]), weights_path)


def grating_activations(
    model: nn.Module,
    orientation_deg,
    layers: Sequence[str],
    *,
    sf: float,
    res: float,
    offset: float = 0.0,
    shift_deg: float = 0.0,
    batch_size: int = 256,
    device=None,
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` to one grating per orientation (SCIENCE.md §3 gratings).

    The network sees the grating at ``orientation_deg + shift_deg`` with values
    ``{0, 1} + offset`` at resolution ``res``. Returns ``{layer: (n, n_units) float32}``.
    """
    from v1rsa.stimuli import gratings

    angles = np.asarray(orientation_deg, dtype=np.float64) + shift_deg
    images = gratings(angles, sf=sf, res=res, offset=offset)
    return record_activations(model, images, layers, batch_size=batch_size, device=device)
