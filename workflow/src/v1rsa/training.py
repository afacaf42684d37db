"""What every trained model shares: the device, seeding, the training history and checkpoints."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import torch

from v1rsa.io import atomic_path, write_tsv

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``: ``auto`` picks CUDA, then Apple MPS, then CPU.

    A named device (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is checked to be usable.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but Apple MPS is not available here")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator (weight initialisation); return a CPU generator for the rest.

    NumPy code in v1rsa takes its own ``numpy.random.Generator``, so no global NumPy state is
    touched. With the same seed and machine, training on the CPU gives identical weights.
    """
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def limit_threads(n_threads: int | None) -> None:
    """Use at most ``n_threads`` CPU threads in torch (Snakemake's ``threads:``)."""
    if n_threads:
        torch.set_num_threads(int(n_threads))


def save_state_dict(module: torch.nn.Module, path: str | os.PathLike) -> None:
    """Save only ``module.state_dict()`` (tensors moved to the CPU), atomically."""
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state_dict(module: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load weights saved by :func:`save_state_dict` into ``module`` (``weights_only=True``).

    Raises ``ValueError`` naming the file when the weights do not fit the architecture.
    """
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the {type(module).__name__} "
                         f"architecture built from the config: {err}") from err
    return module


def write_history(rows: list[dict], path: str | os.PathLike) -> None:
    """Write the training history (one dict per step or epoch) as a TSV table."""
    write_tsv(pd.DataFrame(rows), path)
