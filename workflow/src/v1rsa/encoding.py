"""The encoding model (the course's bonus): grating image → every neuron's response.

docs/science.md#encoding-model has the model, its training and its scores with their sources.

``ConvFC`` is one convolution (no nonlinearity) on 12 × 16 gratings with values ±0.5, flattened to
6 × 12 × 16 = 1152 units and read out linearly by each neuron. It is trained full-batch on the
trial-averaged responses of one fold of trials (``response_fold`` fold 0 of ``conditions.nc``)
and tested on the other fold, against two references:

- a noise ceiling, the R² that the noise-free tuning curves would reach on the held-out fold,
  estimated from the two folds (:func:`split_half_noise_ceiling`);
- a baseline, the population-mean tuning curve fitted to each neuron with its own offset and
  gain (:func:`mean_tuning_baseline`). Predicting each neuron's mean response is the R² = 0
  reference already built into R², so it is not a baseline worth a function.
"""

from __future__ import annotations

import contextlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import xarray as xr
from torch import nn

from v1rsa import logs
from v1rsa.preprocess import bin_conditions
from v1rsa.stimuli import gratings, handmade_filters, image_batch
from v1rsa.training import SGD, pick_device

log = logging.getLogger(__name__)

_DEFAULT_ARCHITECTURE = {
    "n_channels": 6,
    "kernel_size": 7,
    "image_shape": (12, 16),
    "handmade_init": True,
}


class ConvFC(nn.Module):
    """Grating image (12 × 16 by default) → predicted responses of ``n_neurons`` neurons.

    Submodules: ``conv`` Conv2d(1, n_channels, kernel_size, 'same' padding), no nonlinearity;
    ``fc`` Linear(n_channels·H·W → n_neurons) (1152 inputs by default) with weights drawn from
    N(0, 0.01²) and PyTorch's default bias. ``handmade_init`` sets the conv weights to the
    zero-mean hand-made filters (:func:`v1rsa.stimuli.handmade_filters`) and the bias to 0.
    Random weights are drawn from ``seed`` (the global random state is left alone).
    """

    def __init__(self, n_neurons: int, n_channels: int = 6, kernel_size: int = 7,
                 image_shape: tuple[int, int] = (12, 16), handmade_init: bool = True,
                 *, seed: int = 0):
        super().__init__()
        height, width = (int(v) for v in image_shape)
        for name, value in (("n_neurons", n_neurons), ("n_channels", n_channels),
                            ("kernel_size", kernel_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"ConvFC: {name} must be a positive integer, got {value!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvFC: kernel_size must be odd so that 'same' padding keeps the "
                             f"image size, got {kernel_size}")
        if handmade_init and (n_channels, kernel_size) != (6, 7):
            raise ValueError(
                f"ConvFC: handmade_init needs n_channels=6 and kernel_size=7 (the course's six "
                f"7 × 7 filters), got n_channels={n_channels}, kernel_size={kernel_size}; "
                "set handmade_init=False to start from random filters")
        self.arch = {"n_neurons": int(n_neurons), "n_channels": int(n_channels),
                     "kernel_size": int(kernel_size), "image_shape": (height, width),
                     "handmade_init": bool(handmade_init)}
        self.image_shape = (height, width)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(1, n_channels, kernel_size, padding=kernel_size // 2)
            self.fc = nn.Linear(n_channels * height * width, n_neurons)
            nn.init.normal_(self.fc.weight, std=0.01)
        if handmade_init:
            with torch.no_grad():
                self.conv.weight.copy_(torch.from_numpy(handmade_filters(zero_mean=True))[:, None])
                self.conv.bias.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (n, H, W) or (n, 1, H, W) float → (n, n_neurons) predicted responses."""
        images = image_batch(images, self.image_shape, "ConvFC")
        return self.fc(self.conv(images).flatten(1))


def architecture(model: ConvFC) -> dict:
    """The constructor arguments that rebuild ``model`` (JSON-ready; for ``metrics.json``)."""
    arch = dict(model.arch)
    arch["image_shape"] = list(arch["image_shape"])
    return arch


def build(arch: dict) -> ConvFC:
    """A fresh :class:`ConvFC` from :func:`architecture`'s dict (``n_neurons`` is required)."""
    known = set(_DEFAULT_ARCHITECTURE) | {"n_neurons"}
    unknown = sorted(set(arch) - known)
    if unknown:
        raise ValueError(f"architecture: unknown ConvFC parameter(s) {unknown}; expected some "
                         f"of {sorted(known)}")
    if "n_neurons" not in arch:
        raise ValueError("architecture: ConvFC needs 'n_neurons'")
    params = {**_DEFAULT_ARCHITECTURE, **arch}
    params["image_shape"] = tuple(params["image_shape"])
    return ConvFC(**params)


def _as_encoding_data(images, responses, model: ConvFC, what: str):
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    responses = torch.as_tensor(np.asarray(responses), dtype=torch.float32)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) != model.image_shape:
        raise ValueError(f"{what}: images must be (n, 1, {model.image_shape[0]}, "
                         f"{model.image_shape[1]}), got shape {tuple(images.shape)}")
    n_neurons = model.fc.out_features
    if responses.shape != (images.shape[0], n_neurons):
        raise ValueError(f"{what}: responses must be (n_images, n_neurons) = "
                         f"({images.shape[0]}, {n_neurons}), got shape {tuple(responses.shape)}")
    if not bool(torch.isfinite(responses).all()):
        raise ValueError(f"{what}: responses hold NaN or infinite values")
    return images, responses


def train_encoder(
    model: ConvFC,
    images,
    responses,
    *,
    lr: float = 2.0,
    momentum: float = 0.9,
    n_iterations: int = 200,
    l2: float = 5e-4,
    l1: float = 1e-6,
    device: str | torch.device = "cpu",
    val_responses=None,
    progress: bool = True,
    n_threads: int | None = None,
) -> list[dict]:
    """Fit ``model`` in place by full-batch gradient descent with momentum (the course's recipe).

    images: (n, 1, H, W) or (n, H, W) float (gratings − 0.5); responses: (n, n_neurons) float.
    Objective: MSE over all n × n_neurons entries + ``l2``·Σ w² + ``l1``·Σ |w| over the ``fc``
    weights (not the biases), as in the course. The MSE is also averaged over neurons, so the
    step each neuron's read-out takes scales as lr / n_neurons: the course's lr = 2 was set for
    ≈ 23,600 neurons; scale lr with the number of neurons when fitting far fewer (or far more).
    Full-batch descent draws nothing at random: the seed is the model's (:class:`ConvFC`).
    ``val_responses`` (n, n_neurons): responses to the same images from held-out trials; each
    iteration is also scored on them. Returns one row per iteration and split,
    ``{"iteration", "split", "loss", "mse"}`` — the objective and the plain MSE before that
    iteration's step (split "train", and "validation" with ``val_responses``). The model is
    left on ``device``, in eval mode.

    Each step is SGD with momentum (PyTorch's rule: buf ← momentum·buf + grad, w ← w − lr·buf)
    on the gradient of that objective. On the CPU, the read-out (27 M weights at 23,589 neurons)
    is handled a tile of neurons at a time (:class:`_TiledReadOut`): each tile's predictions,
    errors, share of the conv features' gradient, weight gradient and step, while its weights
    are in cache, on ``n_threads`` threads (default: torch's thread count) that each run
    one-thread products on whole tiles. The trained weights are therefore the same bits on any
    number of threads, which torch's own multi-threaded products do not give. The conv weights
    and all biases step with :class:`v1rsa.training.SGD`.
    """
    if n_iterations < 1:
        raise ValueError(f"n_iterations must be positive, got {n_iterations}")
    device = pick_device(str(device))
    has_val = val_responses is not None
    if has_val:
        _, val_responses = _as_encoding_data(images, val_responses, model,
                                             "train_encoder (validation)")
        val_responses = val_responses.to(device)
    images, responses = _as_encoding_data(images, responses, model, "train_encoder")
    images, responses = images.to(device), responses.to(device)
    model.to(device)
    model.train()
    weights = model.fc.weight
    others = [p for name, p in model.named_parameters() if name != "fc.weight"]
    optimizer = SGD(others, lr=lr, momentum=momentum)
    momentum_buffer = torch.empty_like(weights, requires_grad=False)
    scale = 2.0 / responses.numel()
    steps = dict(lr=lr, momentum=momentum, l2=l2, l1=l1)
    history: list[dict] = []
    log_every = max(1, n_iterations // 10)
    tiled = _in_tiles(device)
    n_threads = torch.get_num_threads() if n_threads is None else int(n_threads)
    weights.requires_grad_(False)
    with contextlib.ExitStack() as stack:
        stack.callback(weights.requires_grad_, True)
        if tiled:
            read_out = _TiledReadOut(weights, model.fc.bias.detach(), responses, val_responses,
                                     momentum_buffer, scale=scale, **steps)
            stack.enter_context(_torch_threads(1))
            n_threads = min(n_threads, len(read_out.tiles))
            # each worker sets its own thread count: a fresh thread's OpenMP (torch, MKL) would
            # otherwise run on OMP_NUM_THREADS threads, whose split of a product changes its bits
            pool = (stack.enter_context(ThreadPoolExecutor(
                n_threads, "train_encoder", initializer=torch.set_num_threads, initargs=(1,)))
                    if n_threads > 1 else None)
        with torch.no_grad():  # on the CPU on one thread, too: a parallel sum has other bits
            sum_squares, sum_abs = weights.square().sum().item(), weights.abs().sum().item()
        for iteration in logs.progress(range(1, n_iterations + 1), desc="train_encoder",
                                       unit="step", enabled=progress):
            first = iteration == 1
            features = model.conv(images).flatten(1)
            if tiled:
                # every tile steps before the loss is known: a non-finite loss stops training
                # all the same, below
                train_sse, val_sse, d_features, d_bias, new_sums = read_out.iterate(
                    features.detach(), first, pool)
                mse = train_sse / responses.numel()
                val_mse = val_sse / responses.numel() if has_val else None
            else:
                predicted = torch.addmm(model.fc.bias, features, weights.T)
                with torch.no_grad():
                    residual = predicted - responses
                    mse = residual.square().mean().item()
                    if has_val:
                        val_mse = (predicted - val_responses).square().mean().item()
            loss = mse + l2 * sum_squares + l1 * sum_abs
            if not math.isfinite(loss):
                raise RuntimeError(
                    f"train_encoder: the loss became {loss} at iteration {iteration}; lower "
                    f"the learning rate (lr={lr}; the course's lr=2 suits ≈ 23,600 neurons, "
                    f"this model has {model.fc.out_features})")
            train_row = {"iteration": iteration, "split": "train", "loss": loss, "mse": mse}
            history.append(train_row)
            if has_val:
                history.append({"iteration": iteration, "split": "validation",
                                "loss": val_mse + l2 * sum_squares + l1 * sum_abs,
                                "mse": val_mse})
            optimizer.zero_grad()
            if tiled:
                features.backward(d_features)  # conv weights and bias
                model.fc.bias.grad = d_bias
                optimizer.step()
                sum_squares, sum_abs = new_sums
            else:
                d_predicted = residual.mul_(scale)  # d mse / d predicted
                predicted.backward(d_predicted)  # conv weights, conv and fc biases
                optimizer.step()
                with torch.no_grad():
                    sum_squares, sum_abs = _read_out_step(
                        weights, d_predicted, features.detach(), momentum_buffer, first=first,
                        **steps)
            if iteration % log_every == 0 or iteration == n_iterations:
                log.info(f"iteration {iteration}/{n_iterations}: loss {train_row['loss']:.5f} "
                         f"mse {train_row['mse']:.5f}")
    model.eval()
    return history


def _in_tiles(device: torch.device) -> bool:
    """Whether :func:`train_encoder` steps the read-out in tiles (the CPU) or whole (GPUs)."""
    return device.type == "cpu"


@contextlib.contextmanager
def _torch_threads(n_threads: int):
    """torch's intra-op threads set to ``n_threads`` inside the ``with`` block, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: Read-out rows (neurons) per tile on the CPU: a tile's weights (1024 × 1152 float32, 4.7 MB)
#: and gradient go through their products and step at once. Fixed, so that the products, and
#: with them the trained weights, are the same on any number of threads. Measured on one core
#: at 23,589 neurons (ms per iteration): 256 rows 188, 512 rows 164, 1024 rows 154, 2048 rows 159.
_TILE_ROWS = 1024


class _TiledReadOut:
    """The read-out's part of one full-batch iteration on the CPU, a tile of neurons at a time.

    For the rows ``t`` of a tile (weights W_t, bias b_t, momentum buffer B_t), with features F
    (n_images, n_features) and responses Y: predictions P_t = F W_tᵀ + b_t, errors R_t = P_t −
    Y_t and their sums of squares (also against the held-out responses), D_t = scale·R_t (the
    MSE's gradient for P_t), the features' gradient share D_t W_t and the bias gradient Σ D_t
    (before W_t steps), the weight gradient D_tᵀ F, and the step of W_t and B_t with the
    penalties (:func:`v1rsa._kernels.penalised_momentum_rows`). Each tile is computed by one
    thread with one-thread products, and the tiles' shares are added in a fixed order, so the
    numbers do not depend on how many threads share the tiles.
    """

    def __init__(self, weights: torch.Tensor, bias: torch.Tensor, responses: torch.Tensor,
                 val_responses: torch.Tensor | None, buffer: torch.Tensor, *, scale: float,
                 lr: float, momentum: float, l2: float, l1: float, tile_rows: int | None = None):
        from v1rsa._kernels import penalised_momentum_rows  # numba: only the CPU's path

        tile_rows = tile_rows or _TILE_ROWS
        self.step_rows = penalised_momentum_rows
        self.weights, self.bias, self.buffer = weights, bias, buffer
        self.responses, self.val_responses = responses, val_responses
        self.scale, self.steps = scale, (lr, momentum, l2, l1)
        n_neurons, n_features = weights.shape
        self.tiles = [(start, min(n_neurons, start + tile_rows))
                      for start in range(0, n_neurons, tile_rows)]
        self.d_features = weights.new_empty((len(self.tiles), responses.shape[0], n_features))
        self.d_bias = weights.new_empty(n_neurons)
        self.squares = np.empty(n_neurons)
        self.absolutes = np.empty(n_neurons)

    def iterate(self, features: torch.Tensor, first: bool, pool: ThreadPoolExecutor | None):
        """One iteration; ``first``: the momentum starts at the gradient. Returns the sums of
        squared errors (train, held out: 0.0 without), the features' and the bias' gradient,
        and (Σ w², Σ |w|) of the updated weights."""
        def run(index):
            return self._tile(index, features, first)

        indices = range(len(self.tiles))
        sums = list(pool.map(run, indices) if pool is not None else map(run, indices))
        train_sse = math.fsum(train for train, _ in sums)
        val_sse = math.fsum(val for _, val in sums)
        penalties = (math.fsum(self.squares), math.fsum(self.absolutes))
        return train_sse, val_sse, self.d_features.sum(0), self.d_bias.clone(), penalties

    def _tile(self, index: int, features: torch.Tensor, first: bool) -> tuple[float, float]:
        start, stop = self.tiles[index]
        weights = self.weights[start:stop]
        predicted = torch.addmm(self.bias[start:stop], features, weights.T)
        residual = predicted - self.responses[:, start:stop]
        train_sse = residual.square().sum(dtype=torch.float64).item()
        val_sse = 0.0
        if self.val_responses is not None:
            val_sse = ((predicted - self.val_responses[:, start:stop]).square()
                       .sum(dtype=torch.float64).item())
        d_predicted = residual.mul_(self.scale)
        torch.sum(d_predicted, 0, out=self.d_bias[start:stop])
        torch.mm(d_predicted, weights, out=self.d_features[index])
        gradient = d_predicted.T @ features
        self.step_rows(
            weights.numpy(), gradient.numpy(), self.buffer[start:stop].numpy(), *self.steps,
            first, self.squares[start:stop], self.absolutes[start:stop])
        return train_sse, val_sse


def _read_out_step(weights: torch.Tensor, d_predicted: torch.Tensor, features: torch.Tensor,
                   buffer: torch.Tensor, *, lr: float, momentum: float, l2: float, l1: float,
                   first: bool) -> tuple[float, float]:
    """One SGD-with-momentum step of the read-out ``weights`` (n_neurons, n_features), in place,
    on the gradient d_predictedᵀ · features + 2·l2·w + l1·sign(w), with whole-matrix torch
    operations (the GPU's path; the CPU's is :class:`_TiledReadOut`).

    d_predicted: (n_images, n_neurons), ∂MSE/∂predicted; features: (n_images, n_features);
    buffer: the momentum, like ``weights`` (any values when ``first``: SGD with momentum starts
    it at the first gradient). Returns Σ w² and Σ |w| of the updated weights.
    """
    gradient = d_predicted.T @ features
    gradient.add_(weights, alpha=2.0 * l2).add_(torch.sign(weights), alpha=l1)
    if first:
        buffer.copy_(gradient)
    else:
        buffer.mul_(momentum).add_(gradient)
    weights.sub_(buffer, alpha=lr)
    return weights.square().sum().item(), weights.abs().sum().item()


def predict(model: ConvFC, images, device: str | torch.device = "cpu") -> np.ndarray:
    """(n, n_neurons) float32 predicted responses to images (n, H, W) or (n, 1, H, W).

    torch's CPU operations run on one thread, so that the predictions are the same bits however
    many threads torch has (a few hundred images take milliseconds)."""
    device = pick_device(str(device))
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32).to(device)
    model.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _torch_threads(1):
            return model(images).cpu().numpy()
    finally:
        model.train(was_training)


def _check_pair(predicted, measured, names=("predicted", "measured")):
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    if measured.ndim != 2 or predicted.shape != measured.shape:
        raise ValueError(f"{names[0]} and {names[1]} must both be (n_conditions, n_neurons), got "
                         f"shapes {predicted.shape} and {measured.shape}")
    if measured.shape[0] < 2:
        raise ValueError(f"need at least 2 conditions to compute R², got {measured.shape[0]}")
    return predicted, measured


def r2_per_neuron(predicted, measured) -> np.ndarray:
    """Coefficient of determination of each neuron's tuning: (n_neurons,) float64.

    predicted, measured: (n_conditions, n_neurons). R² = 1 − SS_res / SS_tot with SS_tot taken
    around each neuron's mean over conditions (as ``sklearn.metrics.r2_score`` with
    ``multioutput="raw_values"``); NaN for a neuron whose measured responses are constant.
    """
    predicted, measured = _check_pair(predicted, measured)
    ss_res = np.sum((measured - predicted) ** 2, axis=0)
    ss_tot = np.sum((measured - measured.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def split_half_noise_ceiling(fold_a, fold_b) -> np.ndarray:
    """The R² on ``fold_b`` that each neuron's noise-free tuning curve would reach: (n_neurons,).

    fold_a, fold_b: (n_conditions, n_neurons) mean responses from two disjoint halves of the
    trials (``response_fold``); fold_b is the held-out half the model is scored on.

    One half predicting the other reaches R²_ab = ``r2_per_neuron(fold_a, fold_b)``, but its
    errors carry the noise of both halves: E Σ(a − b)² = 2·n·σ², while the true tuning curve f
    leaves only E Σ(b − f)² = n·σ² (σ²: the noise variance of a half's mean, equal in both halves
    when they hold equal numbers of trials). Hence the ceiling is 1 − Σ(a − b)² / (2·SS_tot,b)
    = (1 + R²_ab) / 2. No Spearman–Brown step: that would give the reliability of the mean of
    *both* halves, but the model is scored against one half only. About 0 for a neuron with no
    tuning, it can come out slightly negative through noise.
    """
    return (1.0 + r2_per_neuron(fold_a, fold_b)) / 2.0


def normalised_r2(r2, noise_ceiling) -> np.ndarray:
    """R² as a fraction of the noise ceiling: r2 / noise_ceiling, NaN where the ceiling ≤ 0."""
    r2 = np.asarray(r2, dtype=np.float64)
    noise_ceiling = np.asarray(noise_ceiling, dtype=np.float64)
    if r2.shape != noise_ceiling.shape:
        raise ValueError(f"r2 and noise_ceiling must have the same shape, got {r2.shape} "
                         f"and {noise_ceiling.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise_ceiling > 0, r2 / noise_ceiling, np.nan)


def mean_tuning_baseline(train_responses) -> np.ndarray:
    """Predictions of a model of the mean tuning: (n_conditions, n_neurons) float64.

    train_responses: (n_conditions, n_neurons), the fold the encoding model is trained on. The
    population-mean tuning curve m(c) (mean over neurons per condition) is fitted to each
    neuron i by least squares, r_i(c) ≈ a_i + b_i·m(c), and the fit is returned for the same
    conditions, to be scored on the held-out fold with :func:`r2_per_neuron`. It captures what
    every neuron shares with the population (overall gain, e.g. for cardinal orientations)
    but no neuron's own preference: the encoding model has to beat it to show it learnt tuning.
    """
    responses = np.asarray(train_responses, dtype=np.float64)
    if responses.ndim != 2 or responses.shape[0] < 2:
        raise ValueError(f"train_responses must be (n_conditions ≥ 2, n_neurons), got shape "
                         f"{responses.shape}")
    mean_tuning = responses.mean(axis=1)
    centred_tuning = mean_tuning - mean_tuning.mean()
    variance = np.sum(centred_tuning**2)
    neuron_means = responses.mean(axis=0)
    if variance > 0:
        gain = centred_tuning @ (responses - neuron_means) / variance
    else:
        gain = np.zeros(responses.shape[1])
    return neuron_means + np.outer(centred_tuning, gain)


def held_out_halves(trials: xr.Dataset, conditions: xr.Dataset, bin_width_deg: float) -> xr.Dataset:
    """Binned responses in two disjoint halves of the trials: ``response_fold(fold=2, condition,
    neuron)`` with fold 0 for training and fold 1 held out, and ``orientation(condition)``.

    From single trials, the trials are binned at ``bin_width_deg`` and dealt alternately to the
    two halves; a pre-binned source must already carry two folds (the 6-degree NMA split file).
    """
    if trials.attrs.get("single_trials", 1):
        return bin_conditions(trials, bin_width_deg=bin_width_deg, n_folds=2)
    if "response_fold" not in conditions or conditions.sizes.get("fold") != 2:
        raise ValueError(
            "the encoding model needs two disjoint halves of the trials: this source is "
            "pre-binned without them (conditions.nc has no response_fold with 2 folds); use a "
            "raw recording or the oribinned6_split file"
        )
    return conditions


def fit_encoder(
    halves: xr.Dataset,
    *,
    sf: float,
    res: float,
    handmade_init: bool,
    seed: int,
    device: str | torch.device = "cpu",
    **training,
) -> tuple[ConvFC, list[dict], dict, xr.Dataset]:
    """Train a ConvFC on fold 0 of ``halves`` and score it on fold 1 (held-out trials).

    The network sees the course's grating at each bin's orientation, values shifted by −0.5.
    ``training``: keyword arguments of :func:`train_encoder` (lr, momentum, n_iterations, l2, l1).
    Returns the trained model, its history, the metrics (medians over neurons of held-out R²,
    split-half noise ceiling, normalised R², and of the mean-tuning baseline's R²), and per-neuron
    scores with the held-out predictions: ``r2(neuron)``, ``noise_ceiling(neuron)``,
    ``normalised_r2(neuron)``, ``baseline_r2(neuron)``, ``predicted(condition, neuron)``,
    ``measured(condition, neuron)``.
    """
    orientation = halves["orientation"].values
    images = gratings(orientation, sf=sf, res=res, offset=-0.5)
    train = halves["response_fold"].isel(fold=0).values
    test = halves["response_fold"].isel(fold=1).values
    model = ConvFC(train.shape[1], image_shape=images.shape[1:], handmade_init=handmade_init,
                   seed=seed)
    history = train_encoder(model, images, train, device=device, val_responses=test,
                            **training)
    with _torch_threads(1):  # the same predictions whatever the number of threads
        predicted = predict(model, images, device=device)
    r2 = r2_per_neuron(predicted, test)
    ceiling = split_half_noise_ceiling(train, test)
    baseline = r2_per_neuron(mean_tuning_baseline(train), test)
    normalised = normalised_r2(r2, ceiling)
    metrics = {
        "median_r2_test": float(np.nanmedian(r2)),
        "median_noise_ceiling": float(np.nanmedian(ceiling)),
        "median_normalised_r2": float(np.nanmedian(normalised)),
        "median_baseline_r2_test": float(np.nanmedian(baseline)),
        "n_neurons": int(train.shape[1]),
        "n_conditions": int(train.shape[0]),
        "architecture": architecture(model),
    }
    neuron = halves["neuron"].values if "neuron" in halves.coords else np.arange(train.shape[1])
    scores = xr.Dataset(
        {
            "r2": ("neuron", r2),
            "noise_ceiling": ("neuron", ceiling),
            "normalised_r2": ("neuron", normalised),
            "baseline_r2": ("neuron", baseline),
            "predicted": (("condition", "neuron"), predicted),
            "measured": (("condition", "neuron"), test.astype(np.float32)),
        },
        coords={"neuron": neuron, "orientation": ("condition", orientation)},
    )
    return model, history, metrics, scores
