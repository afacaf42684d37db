"""What every trained model shares: the device, seeding, the training history and checkpoints."""

from __future__ import annotations

import logging
import os
import pickle
import re
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


class SGD:
    """Stochastic gradient descent with PyTorch's momentum rule, without ``torch.optim``.

    The updates of ``torch.optim.SGD(params, lr=lr, momentum=momentum,
    weight_decay=weight_decay)`` (no dampening or Nesterov) on a CPU, the same numbers: on each
    parameter p with a gradient g, g ← g + weight_decay·p (L2 weight decay, when not 0), the
    momentum buffer starts at g and becomes momentum·buf + g, and p ← p − lr·buf (p ← p − lr·g
    without momentum). ``torch.optim`` imports ``torch._dynamo`` when an optimizer is first
    used: 0.9 s of the start-up of every training job.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        if not lr > 0 or momentum < 0 or not weight_decay >= 0:
            raise ValueError(f"SGD needs lr > 0, momentum ≥ 0 and weight_decay ≥ 0; got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        self.params = list(params)
        self.lr, self.momentum = float(lr), float(momentum)
        self.weight_decay = float(weight_decay)
        self._buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Forget the gradients (``.grad = None``, as ``torch.optim``'s default)."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for index, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            if self.momentum != 0:
                buffer = self._buffers[index]
                if buffer is None:
                    buffer = self._buffers[index] = grad.detach().clone()
                else:
                    buffer.mul_(self.momentum).add_(grad)
                grad = buffer
            param.add_(grad, alpha=-self.lr)


def limit_threads(n_threads: int | None) -> None:
    """Use at most ``n_threads`` CPU threads in torch (Snakemake's ``threads:``)."""
    if n_threads:
        torch.set_num_threads(int(n_threads))


def save_state_dict(module: torch.nn.Module, path: str | os.PathLike) -> None:
    """Save only ``module.state_dict()`` (tensors moved to the CPU), atomically.

    The same weights give the same bytes: saved to a path, torch names the archive's folder
    after the file (here a temporary name that changes each run); saved to an open file, it
    names it ``archive``.
    """
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(state, file)


def read_state_dict(path: str | os.PathLike) -> dict:
    """The weights saved in ``path`` (``torch.save(model.state_dict(), path)``), on the CPU.

    Read with ``torch.load(weights_only=True)``: tensors and plain containers only, so nothing in
    the file can run. Raises ``ValueError`` naming the file when it holds anything else (e.g. a
    whole pickled model) or is not a torch file; the message never suggests loading it unsafely.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message advises weights_only=False, which would run what the file holds:
        # neither repeated nor chained (from None)
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None:
            raise ValueError(f"{path}: not a file written by torch.save (it cannot be "
                             "unpickled)") from None
        raise ValueError(
            f"{path}: refused: the file holds Python objects other than tensors (it asks for "
            f"{refused[1]}), which could run code when loaded. Save only the weights: "
            "torch.save(model.state_dict(), path)") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a file written by torch.save ({err})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state_dict (a dict of "
                         "tensors); save it with torch.save(model.state_dict(), path)")
    return state


def load_state_dict(module: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load weights saved by :func:`save_state_dict` into ``module`` (:func:`read_state_dict`).

    Raises ``ValueError`` naming the file when it cannot be read safely or the weights do not
    fit the architecture.
    """
    path = Path(path)
    state = read_state_dict(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the {type(module).__name__} "
                         f"architecture built from the config: {err}") from err
    return module


def write_history(rows: list[dict], path: str | os.PathLike, columns=None) -> None:
    """Write the training history (one dict per step or epoch) as a TSV table; ``columns``
    names the header, so that a history of no rows (no epoch ran) still has one."""
    write_tsv(pd.DataFrame(rows, columns=columns), path)
