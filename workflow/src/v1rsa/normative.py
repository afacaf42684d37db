"""The normative model of Tutorial 3: a small CNN trained to tell gratings tilted left from right.

``TiltCNN`` is conv → ReLU → max-pool → fc → ReLU → out (docs/science.md#normative-cnn), with
optionally more conv → ReLU → max-pool blocks before fc (``n_blocks``, for families of networks of
several depths). Its layers are read later with forward hooks by submodule name
(``v1rsa.activations``): the ``pool`` hook sees max-pooled *post-ReLU* activations (the ReLU is
applied before ``pool`` in ``forward``), the ``fc`` hook the Linear output *before* its ReLU, as in
the course.

The course ends the network in a sigmoid and trains with BCE; here ``forward`` returns the logit
and training uses ``BCEWithLogitsLoss`` — the same loss and gradients, but numerically safe for
confident outputs. P(tilted right) = ``torch.sigmoid(model(images))``.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from v1rsa import logs
from v1rsa.blocks import BLOCK_MODULES, block_module, pooled_shape
from v1rsa.stimuli import handmade_filters, image_batch, unseen
from v1rsa.training import SGD, pick_device

log = logging.getLogger(__name__)

_DEFAULT_ARCHITECTURE = {
    "n_blocks": 1,
    "n_channels": 6,
    "kernel_size": 7,
    "pool_size": 8,
    "hidden": 10,
    "handmade_init": True,
    "dropout": 0.0,
    "batch_norm": False,
    "image_shape": (48, 64),
}

#: Images per forward pass when a model is scored. On a CPU, one pass over 1000 gratings makes
#: a fresh 74 MB tensor per layer (page faults, cache misses); passes of 128 reuse memory that is
#: already in cache and run about 3 times faster. The logits can differ from one pass's by float
#: rounding at most (the linear layers' blocking may depend on the batch; at the default sizes
#: they are bitwise the same).
EVALUATION_BATCH_SIZE = 128

#: Columns of the training history (``history.tsv``), also when no epoch ran.
HISTORY_COLUMNS = ("epoch", "split", "loss", "accuracy")

class TileMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(pool_size)``: the maximum of each non-overlapping pool_size × pool_size
    tile, (n, C, H, W) → (n, C, H // pool_size, W // pool_size), remainders dropped.

    Where no gradient is needed (scoring, recorded activations, occlusion) the maximum is taken
    over each tile's rows, then over those row maxima: the same numbers (a maximum does not
    round), about 3 times faster on a CPU than ``max_pool2d``, which also finds the argmax for
    a backward pass. Where a gradient is needed it is ``nn.MaxPool2d`` itself, so training is
    unchanged.
    """

    def __init__(self, pool_size: int):
        super().__init__(pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, C, H, W) float → (n, C, H // pool_size, W // pool_size)."""
        if x.requires_grad or x.ndim != 4:
            return super().forward(x)
        size = self.kernel_size
        n_rows, n_columns = x.shape[2] // size, x.shape[3] // size
        tiles = x[:, :, :n_rows * size, :n_columns * size]
        return tiles.unflatten(2, (n_rows, size)).amax(3).unflatten(3, (n_columns, size)).amax(4)


class TiltCNN(nn.Module):
    """Grating image (48 × 64 by default) → logit of P(tilted right).

    Submodules: ``conv`` Conv2d(1, n_channels, kernel_size, 'same' padding), ``conv_norm``
    (BatchNorm2d when ``batch_norm``, else identity), ``pool`` MaxPool2d(pool_size) (as
    :class:`TileMaxPool2d`) applied to ReLU(conv) — n_channels × H/pool × W/pool units
    (6 × 6 × 8 = 288) —, ``dropout`` on the flattened pool units, ``fc`` Linear(→ hidden),
    ``out`` Linear(hidden → 1).
    With ``n_blocks`` > 1, blocks 2…n follow the first, each ``conv{b}`` Conv2d(n_channels,
    n_channels, kernel_size, 'same') → ``conv{b}_norm`` → ReLU → ``pool{b}`` MaxPool2d(pool_size),
    and fc reads the last pool (n_channels × H/pool^n × W/pool^n units). Modules are made in
    that order, so a one-block network has the same weights as before blocks existed.
    ``handmade_init`` sets the first conv's weights to :func:`v1rsa.stimuli.handmade_filters`
    (needs 6 channels of 7 × 7) and its bias to 0. The other weights are drawn with PyTorch's
    default initialisation from ``seed`` (the global random state is left alone).
    """

    def __init__(self, n_channels: int = 6, kernel_size: int = 7, pool_size: int = 8,
                 hidden: int = 10, handmade_init: bool = True, dropout: float = 0.0,
                 batch_norm: bool = False, image_shape: tuple[int, int] = (48, 64),
                 n_blocks: int = 1, *, seed: int = 0):
        super().__init__()
        height, width = (int(v) for v in image_shape)
        for name, value in (("n_blocks", n_blocks), ("n_channels", n_channels),
                            ("kernel_size", kernel_size), ("pool_size", pool_size),
                            ("hidden", hidden)):
            if int(value) != value or value < 1:
                raise ValueError(f"TiltCNN: {name} must be a positive integer, got {value!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"TiltCNN: kernel_size must be odd so that 'same' padding keeps the "
                             f"image size, got {kernel_size}")
        try:
            pooled = pooled_shape((height, width), pool_size, n_blocks)
        except ValueError as err:
            raise ValueError(f"TiltCNN: {err}") from None
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"TiltCNN: dropout must be in [0, 1), got {dropout}")
        if handmade_init and (n_channels, kernel_size) != (6, 7):
            raise ValueError(
                f"TiltCNN: handmade_init needs n_channels=6 and kernel_size=7 (the course's six "
                f"7 × 7 filters), got n_channels={n_channels}, kernel_size={kernel_size}; "
                "set handmade_init=False to start from random filters")
        self.arch = {
            "n_blocks": int(n_blocks), "n_channels": int(n_channels),
            "kernel_size": int(kernel_size),
            "pool_size": int(pool_size), "hidden": int(hidden),
            "handmade_init": bool(handmade_init), "dropout": float(dropout),
            "batch_norm": bool(batch_norm), "image_shape": (height, width),
        }
        self.image_shape = (height, width)
        self.pool_shape = (int(n_channels), *pooled)
        #: (conv, norm, pool) module names of each block, in order
        self.blocks = [tuple(block_module(name, block) for name in BLOCK_MODULES)
                       for block in range(1, int(n_blocks) + 1)]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for block, (conv, norm, pool) in enumerate(self.blocks, start=1):
                in_channels = 1 if block == 1 else n_channels
                self.add_module(conv, nn.Conv2d(in_channels, n_channels, kernel_size,
                                                padding=kernel_size // 2))
                self.add_module(norm, nn.BatchNorm2d(n_channels) if batch_norm else nn.Identity())
                self.add_module(pool, TileMaxPool2d(pool_size))
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(int(np.prod(self.pool_shape)), hidden)
            self.out = nn.Linear(hidden, 1)
        if handmade_init:
            with torch.no_grad():
                self.conv.weight.copy_(torch.from_numpy(handmade_filters())[:, None])
                self.conv.bias.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (n, H, W) or (n, 1, H, W) float → (n,) logits of P(tilted right)."""
        pooled = image_batch(images, self.image_shape, "TiltCNN")
        for conv, norm, pool in self.blocks:
            pooled = self._modules[pool](torch.relu(self._modules[norm](self._modules[conv](
                pooled))))
        hidden = torch.relu(self.fc(self.dropout(pooled.flatten(1))))
        return self.out(hidden)[:, 0]


def architecture(model: TiltCNN) -> dict:
    """The constructor arguments that rebuild ``model`` (JSON-ready; for ``metrics.json``)."""
    arch = dict(model.arch)
    arch["image_shape"] = list(arch["image_shape"])
    return arch


def build(arch: dict) -> TiltCNN:
    """A fresh :class:`TiltCNN` from :func:`architecture`'s dict (missing keys take defaults)."""
    unknown = sorted(set(arch) - set(_DEFAULT_ARCHITECTURE))
    if unknown:
        raise ValueError(f"architecture: unknown TiltCNN parameter(s) {unknown}; expected some "
                         f"of {sorted(_DEFAULT_ARCHITECTURE)}")
    params = {**_DEFAULT_ARCHITECTURE, **arch}
    params["image_shape"] = tuple(params["image_shape"])
    return TiltCNN(**params)


def _image_shape(model: nn.Module):
    """The (H, W) a TiltCNN takes; None for a network of one's own (it takes what it takes)."""
    return model.image_shape if isinstance(model, TiltCNN) else None


def tilt_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``model(images)`` as (n,) logits of P(tilted right): a network of one's own may return
    (n,) or (n, 1); anything else raises ``ValueError`` naming the network and the shape."""
    output = model(images)
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1 or output.shape[0] != images.shape[0]:
        raise ValueError(f"{type(model).__name__} must return one logit of P(tilted right) per "
                         f"image, shape (n,) or (n, 1); got {tuple(output.shape)} for "
                         f"{images.shape[0]} images")
    return output


def _as_tilt_data(images, labels, image_shape, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    if image_shape is None:
        if images.ndim < 3:
            raise ValueError(f"{what}: images must be (n, ...) with at least 3 dims, got shape "
                             f"{tuple(images.shape)}")
    elif images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if image_shape is not None and (images.ndim != 3
                                    or tuple(images.shape[1:]) != tuple(image_shape)):
        raise ValueError(f"{what}: images must be (n, {image_shape[0]}, {image_shape[1]}), "
                         f"got shape {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{what}: labels must be ({images.shape[0]},), one per image, "
                         f"got shape {tuple(labels.shape)}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{what}: labels must be 0 (tilted left) or 1 (tilted right)")
    return images, labels


def _evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = torch.cat([tilt_logits(model, images[start:start + EVALUATION_BATCH_SIZE])
                                for start in range(0, len(images), EVALUATION_BATCH_SIZE)])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
            n_correct = ((logits > 0).float() == labels).sum()
    finally:
        model.train(was_training)
    return {"accuracy": float(n_correct) / len(labels), "loss": float(loss)}


def evaluate_tilt(model: nn.Module, images, labels, device: str | torch.device = "cpu") -> dict:
    """Accuracy (fraction correct, right = logit > 0) and mean BCE loss on ``images``.

    images: (n, H, W) float for a TiltCNN, as the network takes them for one's own;
    labels: (n,) 0/1, run in passes of :data:`EVALUATION_BATCH_SIZE`.
    Returns ``{"accuracy": float, "loss": float}``.
    """
    device = pick_device(str(device))
    images, labels = _as_tilt_data(images, labels, _image_shape(model), "evaluate_tilt")
    model.to(device)
    return _evaluate(model, images.to(device), labels.to(device))


def train_normative(
    model: nn.Module,
    images,
    labels,
    *,
    lr: float = 5e-4,
    momentum: float = 0.99,
    batch_size: int = 100,
    n_epochs: int = 25,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    seed: int = 12,
    device: str | torch.device = "cpu",
    val_images=None,
    val_labels=None,
    early_stopping_patience: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` in place on the tilt task with minibatch SGD + momentum and BCE.

    model: a :class:`TiltCNN`, or a network of one's own that returns one logit per image
    (:func:`tilt_logits`). images: (n, H, W) float gratings (for one's own network, as it takes
    them, e.g. (n, C, H, W)); labels: (n,) 0/1 (1 = tilted right). Defaults are the
    course's (lr 5e-4, momentum 0.99, batch 100, 25 epochs, seed 12). Each epoch visits the
    images in an order drawn from a ``torch.Generator`` seeded with ``seed``; dropout draws from
    a forked torch random state seeded the same way, so a seed gives the same weights on the CPU.
    Regularisers (0: off): ``weight_decay``, L2 weight decay of every parameter as
    ``torch.optim.SGD``'s (:class:`v1rsa.training.SGD`); ``l1``, the penalty l1·Σ|w| over the
    weights (not biases) of every Conv2d and Linear layer, added to the loss being minimised
    (the losses reported are the BCE alone). ``n_epochs=0`` trains nothing: the model keeps its
    initial weights (the untrained baseline).
    With ``val_images``/``val_labels`` each epoch is also scored on them; with
    ``early_stopping_patience`` training stops after that many epochs without a lower validation
    loss, and the weights of the best epoch are put back at the end. The model is left on
    ``device``, in eval mode.
    Returns one row per epoch and split: ``{"epoch", "split", "loss", "accuracy"}``; the train
    row holds the mean loss and accuracy over the epoch's minibatches (as trained).
    """
    if batch_size < 1 or n_epochs < 0:
        raise ValueError(f"batch_size must be positive and n_epochs at least 0, got "
                         f"{batch_size}, {n_epochs}")
    if not (weight_decay >= 0 and l1 >= 0):
        raise ValueError(f"weight_decay and l1 must be ≥ 0, got {weight_decay}, {l1}")
    has_val = val_images is not None or val_labels is not None
    if has_val and (val_images is None or val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if early_stopping_patience is not None and not has_val:
        raise ValueError("early_stopping_patience needs val_images and val_labels")
    device = pick_device(str(device))
    images, labels = _as_tilt_data(images, labels, _image_shape(model), "train_normative")
    images, labels = images.to(device), labels.to(device)
    if has_val:
        val_images, val_labels = _as_tilt_data(val_images, val_labels, _image_shape(model),
                                               "train_normative (validation)")
        val_images, val_labels = val_images.to(device), val_labels.to(device)
    model.to(device)

    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    l1_weights = [module.weight for module in model.modules()
                  if isinstance(module, (nn.Conv2d, nn.Linear))] if l1 else []
    loss_fn = nn.BCEWithLogitsLoss()
    order_generator = torch.Generator().manual_seed(seed)
    n_images = images.shape[0]
    history: list[dict] = []
    best_loss, best_state, epochs_since_best = float("inf"), None, 0
    fork_devices = [device.index or 0] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        bar = logs.progress(range(1, n_epochs + 1), desc="train_normative", unit="epoch",
                            enabled=progress)
        for epoch in bar:
            model.train()
            order = torch.randperm(n_images, generator=order_generator).to(device)
            total_loss = torch.zeros((), device=device)
            total_correct = torch.zeros((), device=device)
            for start in range(0, n_images, batch_size):
                batch = order[start:start + batch_size]
                logits = tilt_logits(model, images[batch])
                loss = loss_fn(logits, labels[batch])
                optimizer.zero_grad()
                if l1_weights:
                    (loss + l1 * sum(weight.abs().sum() for weight in l1_weights)).backward()
                else:
                    loss.backward()
                optimizer.step()
                total_loss += loss.detach() * len(batch)
                total_correct += ((logits.detach() > 0).float() == labels[batch]).sum()
            row = {"epoch": epoch, "split": "train", "loss": float(total_loss) / n_images,
                   "accuracy": float(total_correct) / n_images}
            if not np.isfinite(row["loss"]):
                raise RuntimeError(f"train_normative: the loss became {row['loss']} in epoch "
                                   f"{epoch}; lower the learning rate (lr={lr})")
            history.append(row)
            message = f"epoch {epoch}/{n_epochs}: train loss {row['loss']:.4f} " \
                      f"accuracy {row['accuracy']:.3f}"
            if has_val:
                val_row = {"epoch": epoch, "split": "validation",
                           **_evaluate(model, val_images, val_labels)}
                history.append(val_row)
                message += f", validation loss {val_row['loss']:.4f} " \
                           f"accuracy {val_row['accuracy']:.3f}"
                bar.set_postfix(loss=row["loss"], val_accuracy=val_row["accuracy"])
            else:
                bar.set_postfix(loss=row["loss"], accuracy=row["accuracy"])
            log.info(message)

            if early_stopping_patience is not None:
                if val_row["loss"] < best_loss:
                    best_loss, epochs_since_best = val_row["loss"], 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    epochs_since_best += 1
                    if epochs_since_best >= early_stopping_patience:
                        log.info(f"early stopping after epoch {epoch}: no lower validation loss "
                                 f"for {early_stopping_patience} epochs")
                        break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def fit_normative(
    train,
    validation,
    test,
    *,
    arch: dict,
    seed: int,
    device: str | torch.device = "cpu",
    early_stopping_patience: int | None = None,
    custom: dict | None = None,
    input_adapter: dict | None = None,
    **training,
) -> tuple[nn.Module, list[dict], dict]:
    """Train a TiltCNN (or a network of one's own) on a tilt stimulus set and score it on
    gratings it never saw.

    train, validation, test: stimulus Datasets (``image(stimulus, y, x)``, ``label(stimulus)``,
    ``results/stimuli/tilt_*.nc``); validation gives the per-epoch curve and early stopping,
    test the held-out accuracy. Validation and test gratings whose image is also a training
    image (nearby angles often give the same binarised image) are left out of both
    (:func:`v1rsa.stimuli.unseen`). arch: TiltCNN keyword arguments (the image shape comes
    from the images). custom: ``{"factory", "kwargs"}`` of a network of one's own instead
    (:func:`v1rsa.activations.build_network`, which returns one logit per image), shown the
    gratings through ``input_adapter`` (:func:`v1rsa.activations.adapt_images`).
    ``training``: keyword arguments of :func:`train_normative` (lr, momentum, batch_size,
    n_epochs, weight_decay, l1). ``seed`` seeds both the initial weights and the batch order.
    Returns the trained model, the history and the metrics: held-out accuracy and mean BCE
    loss, the numbers of gratings, the epochs run, the device trained on (``cpu``, ``cuda``…)
    and the architecture (a network of one's own: its factory and keyword arguments).
    """
    images = train["image"].values
    held_out = {}
    for name, stimuli_set in (("validation", validation), ("test", test)):
        keep = unseen(stimuli_set["image"].values, images)
        if not keep.any():
            raise ValueError(f"every {name} grating ({len(keep)}) is also a training image; "
                             "draw more held-out gratings (normative n_test)")
        held_out[name] = (stimuli_set["image"].values[keep], stimuli_set["label"].values[keep])
    n_test = len(held_out["test"][1])
    if custom:
        from v1rsa.activations import adapt_images, build_network

        model = build_network(custom["factory"], kwargs=custom["kwargs"], seed=seed)
        if input_adapter:
            images = adapt_images(images, **input_adapter)
            held_out = {name: (adapt_images(x, **input_adapter), y)
                        for name, (x, y) in held_out.items()}
        described = {"factory": custom["factory"], "kwargs": dict(custom["kwargs"])}
    else:
        model = TiltCNN(**arch, image_shape=images.shape[1:], seed=seed)
    device = pick_device(str(device))
    history = train_normative(
        model, images, train["label"].values, seed=seed, device=device,
        val_images=held_out["validation"][0], val_labels=held_out["validation"][1],
        early_stopping_patience=early_stopping_patience, **training,
    )
    scores = evaluate_tilt(model, *held_out["test"], device=device)
    metrics = {
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "n_train": int(images.shape[0]),
        "n_test": int(n_test),
        "n_test_seen_in_training": int(test.sizes["stimulus"] - n_test),
        "n_epochs_run": int(max((row["epoch"] for row in history), default=0)),
        "device": str(device),
        "architecture": described if custom else architecture(model),
    }
    return model, history, metrics
