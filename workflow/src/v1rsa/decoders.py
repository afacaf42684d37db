"""The Neuromatch Academy decoders of stimulus orientation from V1 population responses (torch).

:class:`MLPRegressor` (orientation in degrees, MSE), :class:`MLPClassifier` (20 bins of 18°,
NLL) and :class:`CircularRegressor` (predicts cos/sin of the angle, the fix the course suggests
for the 0°/360° wrap-around), all trained by :func:`train_decoder`, read out by
:func:`predict_deg` and scored on held-out trials with :func:`v1rsa.decoding.decoding_metrics`
(median absolute *circular* error in degrees, fraction of test stimuli within 5°) by
:func:`fit_decoder`. The linear decoder of Stringer et al. 2021 and what all decoders share
(scores, splits) are in :mod:`v1rsa.decoding`, which does not import torch.

All angles are in degrees. Responses are ``(n_samples, n_neurons)``: single trials or
orientation-binned conditions alike.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from v1rsa import logs
from v1rsa.decoding import (
    FULL_CIRCLE_DEG,
    check_samples,
    decoding_metrics,
    decoding_split,
    test_predictions,
)
from v1rsa.training import SGD, pick_device, seed_everything

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# The course's networks
# --------------------------------------------------------------------------------------------


class MLPRegressor(nn.Module):
    """``in_layer Linear(N, hidden) → relu → out_layer Linear(hidden, 1)``: orientation in degrees.

    The course's Tutorial 1 decoder (trained with MSE on degrees); ``forward`` maps
    ``(batch, n_neurons)`` float32 to ``(batch, 1)`` degrees. It cannot know that 0° and 360° are
    the same stimulus, so its errors pile up near the ends of the range.
    """

    kind = "regressor"
    period = FULL_CIRCLE_DEG

    def __init__(self, n_neurons: int, hidden: int = 10):
        super().__init__()
        self.n_neurons, self.hidden = int(n_neurons), int(hidden)
        self.in_layer = nn.Linear(self.n_neurons, self.hidden)
        self.relu = nn.ReLU()
        self.out_layer = nn.Linear(self.hidden, 1)

    def forward(self, response: torch.Tensor) -> torch.Tensor:
        return self.readout(self.in_layer(response))

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything after ``in_layer``: its outputs ``(batch, hidden)`` → the network's."""
        return self.out_layer(self.relu(hidden))

    @property
    def architecture(self) -> dict:
        """The arguments of :func:`build_decoder` that rebuild this module."""
        return {"kind": self.kind, "n_neurons": self.n_neurons, "hidden": self.hidden}


class MLPClassifier(nn.Module):
    """``in_layer Linear(N, hidden) → relu → out_layer Linear(hidden, n_bins) → log_softmax``.

    The course's bonus decoder: ``n_bins`` equal bins over [0°, 360°) (20 bins of 18°), trained
    with NLL. ``forward`` returns ``(batch, n_bins)`` log-probabilities. The decoded angle is the
    centre of the most probable bin (as the course reads it out), so the estimate is quantised:
    even a perfect classifier has a median error of about a quarter of a bin (4.5° for 18° bins).
    """

    kind = "classifier"
    period = FULL_CIRCLE_DEG

    def __init__(self, n_neurons: int, hidden: int = 20, n_bins: int = 20):
        super().__init__()
        self.n_neurons, self.hidden, self.n_bins = int(n_neurons), int(hidden), int(n_bins)
        self.in_layer = nn.Linear(self.n_neurons, self.hidden)
        self.relu = nn.ReLU()
        self.out_layer = nn.Linear(self.hidden, self.n_bins)
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward(self, response: torch.Tensor) -> torch.Tensor:
        return self.readout(self.in_layer(response))

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything after ``in_layer``: its outputs ``(batch, hidden)`` → log-probabilities."""
        return self.log_softmax(self.out_layer(self.relu(hidden)))

    @property
    def bin_width_deg(self) -> float:
        return self.period / self.n_bins

    def bin_index(self, orientation_deg: np.ndarray) -> np.ndarray:
        """Bin of each angle: ``floor(θ / bin_width)`` after wrapping θ into [0°, 360°)."""
        wrapped = np.remainder(np.asarray(orientation_deg, dtype=np.float64), self.period)
        return np.minimum((wrapped // self.bin_width_deg).astype(np.int64), self.n_bins - 1)

    def bin_centres_deg(self) -> np.ndarray:
        """``(n_bins,)`` float64: the centre of each bin in degrees (9°, 27°, … for 18° bins)."""
        return (np.arange(self.n_bins) + 0.5) * self.bin_width_deg

    @property
    def architecture(self) -> dict:
        return {"kind": self.kind, "n_neurons": self.n_neurons, "hidden": self.hidden,
                "n_bins": self.n_bins}


class CircularRegressor(nn.Module):
    """``in_layer Linear(N, hidden) → relu → out_layer Linear(hidden, 2)``: (cos, sin) of the angle.

    Trained with MSE on ``(cos φ, sin φ)``, φ = θ (``symmetric=False``, period 360°) or φ = 2θ
    (``symmetric=True``: responses taken as 180°-symmetric, period 180°); the decoded angle is
    ``atan2(sin, cos)`` (halved when symmetric), so 0° and 360° are neighbours, not extremes.
    """

    kind = "circular"

    def __init__(self, n_neurons: int, hidden: int = 20, symmetric: bool = False):
        super().__init__()
        self.n_neurons, self.hidden, self.symmetric = int(n_neurons), int(hidden), bool(symmetric)
        self.in_layer = nn.Linear(self.n_neurons, self.hidden)
        self.relu = nn.ReLU()
        self.out_layer = nn.Linear(self.hidden, 2)

    def forward(self, response: torch.Tensor) -> torch.Tensor:
        return self.readout(self.in_layer(response))

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything after ``in_layer``: its outputs ``(batch, hidden)`` → (cos, sin)."""
        return self.out_layer(self.relu(hidden))

    @property
    def period(self) -> float:
        return FULL_CIRCLE_DEG / 2 if self.symmetric else FULL_CIRCLE_DEG

    @property
    def architecture(self) -> dict:
        return {"kind": self.kind, "n_neurons": self.n_neurons, "hidden": self.hidden,
                "symmetric": self.symmetric}


DECODER_KINDS: dict[str, type[nn.Module]] = {
    "regressor": MLPRegressor,
    "classifier": MLPClassifier,
    "circular": CircularRegressor,
}


def build_decoder(kind: str, n_neurons: int, **architecture) -> nn.Module:
    """Build the torch decoder named ``kind`` (``regressor``, ``classifier``, ``circular``).

    ``architecture``: the other constructor arguments (``hidden``, ``n_bins``, ``symmetric``),
    e.g. ``module.architecture`` saved beside a state_dict.
    """
    if kind not in DECODER_KINDS:
        raise ValueError(f"unknown decoder kind {kind!r}; expected one of {sorted(DECODER_KINDS)}")
    return DECODER_KINDS[kind](n_neurons, **architecture)


def _check_kind(model: nn.Module, kind: str) -> None:
    if kind not in DECODER_KINDS:
        raise ValueError(f"unknown decoder kind {kind!r}; expected one of {sorted(DECODER_KINDS)}")
    if not isinstance(model, DECODER_KINDS[kind]):
        raise TypeError(f"kind={kind!r} needs a {DECODER_KINDS[kind].__name__}, "
                        f"got a {type(model).__name__}")


def _targets(model: nn.Module, kind: str, orientation_deg: np.ndarray,
             device: torch.device) -> torch.Tensor:
    """Encode angles as the training target of ``kind`` (degrees, bin index, or cos/sin)."""
    orientation_deg = np.asarray(orientation_deg, dtype=np.float64)
    if kind == "regressor":
        target = torch.as_tensor(orientation_deg[:, None], dtype=torch.float32)
    elif kind == "classifier":
        target = torch.as_tensor(model.bin_index(orientation_deg), dtype=torch.int64)
    else:
        phase = 2 * np.pi * orientation_deg / model.period
        target = torch.as_tensor(np.stack([np.cos(phase), np.sin(phase)], axis=1),
                                 dtype=torch.float32)
    return target.to(device)


def _decode_output(model: nn.Module, kind: str, output: torch.Tensor) -> np.ndarray:
    """Network output → angle in degrees in ``[0, model.period)`` (float64)."""
    output = output.detach().to("cpu", torch.float64).numpy()
    if kind == "regressor":
        angle_deg = output[:, 0]
    elif kind == "classifier":
        angle_deg = model.bin_centres_deg()[np.argmax(output, axis=1)]
    else:
        angle_deg = np.degrees(np.arctan2(output[:, 1], output[:, 0])) * model.period / 360.0
    return np.remainder(angle_deg, model.period)


def _reset_parameters(model: nn.Module) -> None:
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()


class _FirstLayerInDataSpan:
    """The first layer of a decoder trained full-batch without penalties, kept as W₀ + Cᵀ X.

    Each plain SGD step adds −lr · (∂L/∂H)ᵀ X to the first-layer weights W (H = X Wᵀ + b, X the
    (n_train, n_neurons) training inputs), so W stays W₀ + Cᵀ X with C (n_train, hidden) and
    H = X W₀ᵀ + (X Xᵀ) C + b: with the Gram matrix X Xᵀ computed once, a step costs
    n_train² · hidden instead of n_train · n_neurons · hidden (23,589 neurons, 216 bins: 100×
    fewer operations). The same steps as training W itself, up to rounding (float64 here).
    """

    def __init__(self, layer: nn.Linear, inputs: torch.Tensor, val_inputs: torch.Tensor | None):
        self.layer, self.inputs = layer, inputs
        self.start = layer.weight.detach().clone()
        x, start = inputs.double(), self.start.double()
        self.gram, self.base = x @ x.T, x @ start.T
        self.coef = torch.zeros_like(self.base)
        if val_inputs is not None:
            self.val_cross, self.val_base = val_inputs.double() @ x.T, val_inputs.double() @ start.T

    def train_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(X Wᵀ as a leaf whose .grad becomes ∂L/∂H, and the layer's output X Wᵀ + b)."""
        spanned = torch.addmm(self.base, self.gram, self.coef).float().requires_grad_()
        return spanned, spanned + self.layer.bias

    def val_outputs(self) -> torch.Tensor:
        return torch.addmm(self.val_base, self.val_cross, self.coef).float() + self.layer.bias

    def step(self, grad: torch.Tensor, lr: float) -> None:
        self.coef.sub_(grad.double(), alpha=lr)

    def finish(self) -> None:
        """Write W₀ + Cᵀ X into the layer's weights."""
        with torch.no_grad():
            weight = self.start.double() + self.coef.T @ self.inputs.double()
            self.layer.weight.copy_(weight.float())


def train_decoder(
    model: nn.Module,
    x_train,
    y_train,
    *,
    kind: str,
    lr: float,
    n_iterations: int,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_size: int | None = None,
    seed: int,
    device: str | torch.device = "auto",
    x_val=None,
    y_val=None,
    progress: bool = True,
) -> list[dict]:
    """Train a torch decoder with plain SGD, in place; return the history (one dict per row).

    ``x_train``: ``(n_train, n_neurons)`` responses; ``y_train``: ``(n_train,)`` degrees.
    ``kind``: ``regressor`` (MSE on degrees), ``classifier`` (NLL on bins) or ``circular`` (MSE on
    cos/sin). ``l1``, ``l2``: penalties ``l1·Σ|W| + l2·ΣW²`` on the input-layer weights ``W``.
    ``n_iterations``: passes over the training set; with ``batch_size=None`` (full batch, as in
    the course) one pass is one gradient step, otherwise shuffled minibatches.

    The weights are re-initialised from ``seed`` first, so the trained weights depend only on
    the seed and the data (identical on the CPU for the same seed). The data go to ``device``
    once. History rows: ``{epoch, split="train", loss, penalty}`` per pass, and with
    ``x_val``/``y_val`` also ``{epoch, split="val", loss, median_abs_error_deg,
    fraction_within_5deg, n_test}``; ``loss`` is the data term (MSE or NLL) without penalty.
    Full-batch training without penalties on fewer samples than neurons (the course's decoders
    on orientation bins) keeps the first layer in the span of the data
    (:class:`_FirstLayerInDataSpan`): the same steps, at a hundredth of the cost.
    """
    _check_kind(model, kind)
    x_train = check_samples(x_train, y_train, "x_train")
    if x_train.shape[1] != model.n_neurons:
        raise ValueError(f"x_train has {x_train.shape[1]} neurons but the {type(model).__name__} "
                         f"was built for {model.n_neurons}")
    has_val = x_val is not None
    if has_val:
        x_val = check_samples(x_val, y_val, "x_val")
    if n_iterations < 1 or lr <= 0 or l1 < 0 or l2 < 0 or (batch_size or 1) < 1:
        raise ValueError(f"expected n_iterations ≥ 1, lr > 0, l1 ≥ 0, l2 ≥ 0, batch_size ≥ 1 or "
                         f"None; got n_iterations={n_iterations}, lr={lr}, l1={l1}, l2={l2}, "
                         f"batch_size={batch_size}")
    device = pick_device(device) if isinstance(device, str) else torch.device(device)

    generator = seed_everything(seed)
    _reset_parameters(model)
    model.to(device)
    inputs = torch.as_tensor(x_train, dtype=torch.float32).to(device)
    targets = _targets(model, kind, y_train, device)
    if has_val:
        val_inputs = torch.as_tensor(x_val, dtype=torch.float32).to(device)
        val_targets = _targets(model, kind, y_val, device)
        val_true_deg = np.remainder(np.asarray(y_val, dtype=np.float64), model.period)
    loss_fn = nn.NLLLoss() if kind == "classifier" else nn.MSELoss()
    optimizer = SGD(model.parameters(), lr=lr)
    n_train = inputs.shape[0]
    batch_size = n_train if batch_size is None else int(batch_size)
    log_every = max(1, n_iterations // 10)

    full_batch = batch_size >= n_train
    batch_buffer = None if full_batch else inputs.new_empty((batch_size, inputs.shape[1]))
    # more neurons than samples, no penalty: train the first layer in the span of the data
    span = (_FirstLayerInDataSpan(model.in_layer, inputs, val_inputs if has_val else None)
            if full_batch and l1 == 0 and l2 == 0 and n_train < model.n_neurons else None)

    history: list[dict] = []
    bar = logs.progress(range(1, n_iterations + 1), desc=f"train {kind} decoder",
                        enabled=progress)
    for epoch in bar:
        model.train()
        order = (torch.arange(n_train) if full_batch
                 else torch.randperm(n_train, generator=generator)).to(device)
        sum_loss, sum_penalty = 0.0, 0.0
        for start in range(0, n_train, batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            if span is not None:
                spanned, hidden = span.train_outputs()
                loss = loss_fn(model.readout(hidden), targets)
                loss.backward()
                optimizer.step()  # all but the first-layer weights, which have no .grad
                span.step(spanned.grad, lr)
                sum_loss += loss.item() * n_train
                continue
            # full batch: the data in their own order, without a copy per step; minibatches:
            # gathered into one reused buffer (a fresh 24 MB array per step costs page faults)
            if full_batch:
                batch_inputs, batch_targets = inputs, targets
            else:
                batch_inputs = torch.index_select(inputs, 0, index,
                                                  out=batch_buffer[:len(index)])
                batch_targets = targets[index]
            loss = loss_fn(model(batch_inputs), batch_targets)
            weight = model.in_layer.weight
            penalty = l1 * weight.abs().sum() + l2 * weight.square().sum()
            (loss + penalty).backward()
            optimizer.step()
            sum_loss += loss.item() * len(index)
            sum_penalty += penalty.item() * len(index)
        if not math.isfinite(sum_loss + sum_penalty):
            raise FloatingPointError(f"{kind} decoder training diverged at iteration {epoch} "
                                     f"(loss {sum_loss / n_train}); use a smaller lr than {lr}")
        row = {"epoch": epoch, "split": "train", "loss": sum_loss / n_train,
               "penalty": sum_penalty / n_train}
        history.append(row)
        if has_val:
            model.eval()
            with torch.no_grad():
                val_output = (model(val_inputs) if span is None
                              else model.readout(span.val_outputs()))
                val_loss = loss_fn(val_output, val_targets).item()
            metrics = decoding_metrics(_decode_output(model, kind, val_output), val_true_deg,
                                       model.period)
            history.append({"epoch": epoch, "split": "val", "loss": val_loss, **metrics})
        # refresh=False: on a terminal the bar redraws at its own pace (tqdm's mininterval), not
        # on each of 1,000 iterations
        bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
        if epoch % log_every == 0 or epoch == n_iterations:
            message = (f"{kind} decoder: iteration {epoch}/{n_iterations}, "
                       f"train loss {row['loss']:.4g}")
            if has_val:
                message += (f", val loss {val_loss:.4g}, val median error "
                            f"{metrics['median_abs_error_deg']:.2f}°")
            log.info(message)
    if span is not None:
        span.finish()
    model.eval()
    return history


def predict_deg(model: nn.Module, x, kind: str) -> np.ndarray:
    """Decoded angle of each row of ``x`` (``(n, n_neurons)``): ``(n,)`` float64 degrees.

    Values lie in ``[0, model.period)``: the regressor's output wrapped into [0°, 360°), the
    classifier's most probable bin centre, or ``atan2`` of the circular decoder's (cos, sin).
    """
    _check_kind(model, kind)
    x = check_samples(x, name="x")
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        output = model(torch.as_tensor(x, dtype=torch.float32).to(device))
    return _decode_output(model, kind, output)


# --------------------------------------------------------------------------------------------
# A decoding stage: data set in, trained decoder and held-out metrics out
# --------------------------------------------------------------------------------------------

#: The config's decoder names and the torch decoder kind each one trains.
DECODER_NAMES = {"mlp": "regressor", "classifier": "classifier", "circular": "circular"}


def fit_decoder(
    data: xr.Dataset,
    name: str,
    *,
    hyper: dict,
    test_fraction: float,
    split_seed: int,
    seed: int,
    device: str | torch.device = "auto",
) -> tuple[nn.Module, list[dict], dict, pd.DataFrame]:
    """Train the course decoder ``name`` (``mlp``, ``classifier``, ``circular``) and score it.

    ``hyper``: the decoder's config: architecture (``hidden``, ``n_bins``, ``symmetric``) and
    training (``lr``, ``n_iterations``, ``l1``, ``l2``) keys. Returns the model, its history
    (held-out rows labelled ``split="test"``), the metrics on the test set with the architecture
    to rebuild the module, and the test predictions (:func:`test_predictions`).
    """
    if name not in DECODER_NAMES:
        raise ValueError(f"unknown decoder {name!r}; expected one of {sorted(DECODER_NAMES)}")
    kind = DECODER_NAMES[name]
    training_keys = {"lr", "n_iterations", "l1", "l2", "batch_size"}
    arch = {k: v for k, v in hyper.items() if k not in training_keys}
    training = {k: v for k, v in hyper.items() if k in training_keys}
    x_train, y_train, x_test, y_test = decoding_split(data, test_fraction=test_fraction,
                                                      seed=split_seed)
    model = build_decoder(kind, x_train.shape[1], **arch)
    history = train_decoder(model, x_train, y_train, kind=kind, seed=seed, device=device,
                            x_val=x_test, y_val=y_test, **training)
    for row in history:
        if row["split"] == "val":
            row["split"] = "test"
    predicted = predict_deg(model, x_test, kind)
    predictions = test_predictions(predicted, y_test, period=model.period)
    metrics = {
        **decoding_metrics(predicted, y_test, period=model.period),
        "decoder": name,
        "kind": kind,
        "n_train": int(len(y_train)),
        "n_neurons": int(x_train.shape[1]),
        "architecture": model.architecture,
    }
    return model, history, metrics, predictions
