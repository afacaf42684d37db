"""The encoding model (grating → neurons), its R², noise ceiling and mean-tuning baseline."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from v1rsa import encoding, stimuli, training

N_NEURONS = 150
ORIENTATIONS = np.arange(3.0, 360.0, 6.0)  # the 6°-binned conditions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synthetic_folds():
    """Two folds of 'neurons' that read the hand-made conv features of ±0.5 gratings out linearly.

    Each neuron mixes a tuning shared by the whole population with its own random read-out of
    the 1152 features, z-scored across conditions; each fold adds independent noise.
    """
    rng = np.random.default_rng(0)
    images = stimuli.gratings(ORIENTATIONS, res=0.025, offset=-0.5)[:, None]
    with torch.no_grad():
        features = torch.nn.functional.conv2d(
            torch.from_numpy(images),
            torch.from_numpy(stimuli.handmade_filters(zero_mean=True))[:, None],
            padding=3).flatten(1).double().numpy()
    assert features.shape == (60, 1152)
    def zscore(x):
        return (x - x.mean(0)) / x.std(0)

    own = features @ rng.normal(size=(1152, N_NEURONS))
    shared = features @ rng.normal(size=(1152, 1))
    tuning = zscore(zscore(own) + 1.5 * zscore(shared))
    fold_a = tuning + rng.normal(scale=0.6, size=tuning.shape)
    fold_b = tuning + rng.normal(scale=0.6, size=tuning.shape)
    return images, tuning, fold_a, fold_b


def test_convfc_is_the_course_encoding_model():
    model = encoding.ConvFC(N_NEURONS, seed=1)
    assert model.conv.padding == (3, 3) and model.conv.out_channels == 6
    assert (model.fc.in_features, model.fc.out_features) == (1152, N_NEURONS)
    np.testing.assert_array_equal(model.conv.weight.detach().numpy()[:, 0],
                                  stimuli.handmade_filters(zero_mean=True))
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
    images = torch.from_numpy(stimuli.gratings([0.0, 30.0], res=0.025, offset=-0.5))
    expected = model.fc(model.conv(images[:, None]).flatten(1))  # no nonlinearity anywhere
    torch.testing.assert_close(model(images), expected)
    with pytest.raises(ValueError, match=r"expects \(n, 12, 16\)"):
        model(torch.zeros(1, 48, 64))


def test_held_out_r2_beats_the_mean_tuning_baseline(synthetic_folds):
    images, _, fold_a, fold_b = synthetic_folds
    model = encoding.ConvFC(N_NEURONS, seed=0)
    # The course's lr = 2 is for ≈ 23,600 neurons; the MSE averages over neurons, so scale it.
    history = encoding.train_encoder(model, images, fold_a, lr=2.0 * N_NEURONS / 23_589 * 5,
                                     val_responses=fold_b, progress=False)
    train_rows = [row for row in history if row["split"] == "train"]
    assert [row["iteration"] for row in train_rows] == list(range(1, 201))
    assert len(history) == 400 and train_rows[-1]["mse"] < 0.5 * train_rows[0]["mse"]

    r2_model = encoding.r2_per_neuron(encoding.predict(model, images), fold_b)
    r2_baseline = encoding.r2_per_neuron(encoding.mean_tuning_baseline(fold_a), fold_b)
    ceiling = encoding.split_half_noise_ceiling(fold_a, fold_b)
    assert np.median(r2_baseline) > 0.2, "the shared tuning should give the baseline some R²"
    assert np.median(r2_model) > np.median(r2_baseline) + 0.1
    assert np.mean(r2_model > r2_baseline) > 0.8
    assert np.median(encoding.normalised_r2(r2_model, ceiling)) < 1.05


def test_course_learning_rate_with_few_neurons_fails_with_advice(synthetic_folds):
    images, _, fold_a, _ = synthetic_folds
    with pytest.raises(RuntimeError, match="lower the learning rate"):
        encoding.train_encoder(encoding.ConvFC(N_NEURONS), images, fold_a, progress=False)


def test_loss_is_mse_plus_l2_and_l1_on_fc_weights(synthetic_folds):
    images, _, fold_a, _ = synthetic_folds
    model = encoding.ConvFC(N_NEURONS, seed=2)
    with torch.no_grad():
        predicted = model(torch.from_numpy(images)).double().numpy()
        weights = model.fc.weight.double().numpy()
    history = encoding.train_encoder(model, images, fold_a, lr=1e-3, n_iterations=1,
                                     l2=0.1, l1=0.01, progress=False)
    mse = np.mean((predicted - fold_a) ** 2)
    assert history[0]["mse"] == pytest.approx(mse, rel=1e-5)
    expected = mse + 0.1 * np.sum(weights**2) + 0.01 * np.sum(np.abs(weights))
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-5)


# one tile of the 150 neurons; four, the last partial; the GPU's whole-matrix step, on the CPU
@pytest.mark.parametrize("tile_rows", [None, 40, "whole"])
def test_steps_follow_the_gradient_of_the_whole_objective(synthetic_folds, tile_rows,
                                                          monkeypatch):
    """The analytic penalty gradient gives the same steps as autograd through the objective."""
    if tile_rows == "whole":
        monkeypatch.setattr(encoding, "_in_tiles", lambda device: False)
    elif tile_rows:
        monkeypatch.setattr(encoding, "_TILE_ROWS", tile_rows)
    images, _, fold_a, fold_b = synthetic_folds
    settings = {"lr": 0.05, "momentum": 0.9, "l2": 0.01, "l1": 0.001}
    model = encoding.ConvFC(N_NEURONS, seed=3)
    reference = encoding.ConvFC(N_NEURONS, seed=3)
    history = encoding.train_encoder(model, images, fold_a, n_iterations=5, val_responses=fold_b,
                                     progress=False, **settings)

    # the plain recipe: autograd through MSE + l2·Σw² + l1·Σ|w|, torch's SGD with momentum
    x, y = torch.from_numpy(images), torch.from_numpy(fold_a).float()
    optimizer = torch.optim.SGD(reference.parameters(), lr=settings["lr"],
                                momentum=settings["momentum"])
    losses = []
    for _ in range(5):
        weights = reference.fc.weight
        loss = (torch.nn.functional.mse_loss(reference(x), y)
                + settings["l2"] * weights.square().sum() + settings["l1"] * weights.abs().sum())
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_losses = [row["loss"] for row in history if row["split"] == "train"]
    np.testing.assert_allclose(train_losses, losses, rtol=1e-5)
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name].numpy(), value.numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    validation = [row for row in history if row["split"] == "validation"]
    assert len(validation) == 5
    first_mse = np.mean((reference_first_prediction(images, 3) - fold_b) ** 2)
    assert validation[0]["mse"] == pytest.approx(first_mse, rel=1e-5)


def reference_first_prediction(images, seed):
    with torch.no_grad():
        return encoding.ConvFC(N_NEURONS, seed=seed)(torch.from_numpy(images)).double().numpy()


def test_r2_per_neuron_matches_sklearn():
    rng = np.random.default_rng(1)
    measured = rng.normal(size=(30, 8))
    predicted = measured + rng.normal(scale=0.8, size=(30, 8))
    np.testing.assert_allclose(encoding.r2_per_neuron(predicted, measured),
                               r2_score(measured, predicted, multioutput="raw_values"))
    measured[:, 0] = 2.0
    assert np.isnan(encoding.r2_per_neuron(predicted, measured)[0])
    with pytest.raises(ValueError, match="n_conditions, n_neurons"):
        encoding.r2_per_neuron(predicted[:, :3], measured)


def test_split_half_noise_ceiling_is_the_r2_of_the_true_tuning():
    """Monte Carlo: the estimate matches the R² that the noise-free tuning reaches on fold b."""
    rng = np.random.default_rng(2)
    n_conditions, n_neurons = 60, 4000
    signal_sd = np.repeat([0.0, 0.5, 1.0, 2.0], n_neurons // 4)
    tuning = rng.normal(size=(n_conditions, n_neurons)) * signal_sd
    fold_a = tuning + rng.normal(size=tuning.shape)
    fold_b = tuning + rng.normal(size=tuning.shape)
    ceiling = encoding.split_half_noise_ceiling(fold_a, fold_b)
    np.testing.assert_allclose(ceiling,
                               (1 + r2_score(fold_b, fold_a, multioutput="raw_values")) / 2)
    true_r2 = r2_score(fold_b, tuning, multioutput="raw_values")
    split_half_r = np.array([np.corrcoef(fold_a[:, i], fold_b[:, i])[0, 1]
                             for i in range(n_neurons)])
    for level in range(4):
        group = slice(level * 1000, (level + 1) * 1000)
        # a ratio estimate: biased by about −1/n_conditions for weakly tuned neurons
        assert ceiling[group].mean() == pytest.approx(true_r2[group].mean(), abs=0.025)
    assert abs(ceiling[:1000].mean()) < 0.05  # untuned neurons: nothing to explain
    # s² / (s² + σ²), the explainable fraction of one fold's variance
    assert ceiling[3000:].mean() == pytest.approx(4 / 5, abs=0.02)
    # Spearman–Brown would score the mean of both folds, not the one held out: too high here
    spearman_brown = 2 * split_half_r / (1 + split_half_r)
    assert spearman_brown[2000:3000].mean() - true_r2[2000:3000].mean() > 0.1


def test_normalised_r2_divides_by_a_positive_ceiling():
    normalised = encoding.normalised_r2([0.3, 0.2, 0.1], [0.6, 0.0, -0.1])
    assert normalised[0] == pytest.approx(0.5)
    assert np.isnan(normalised[1:]).all()


def test_mean_tuning_baseline_fits_offset_and_gain_per_neuron():
    rng = np.random.default_rng(3)
    responses = rng.normal(size=(60, 5)) + np.linspace(-1, 1, 60)[:, None] * [0, 1, 2, -1, 3]
    predicted = encoding.mean_tuning_baseline(responses)
    mean_tuning = responses.mean(axis=1)
    for neuron in range(5):
        gain, offset = np.polyfit(mean_tuning, responses[:, neuron], 1)
        np.testing.assert_allclose(predicted[:, neuron], offset + gain * mean_tuning)
    flat = np.ones((4, 3)) * [1.0, 2.0, 3.0]
    np.testing.assert_allclose(encoding.mean_tuning_baseline(flat), flat)


def test_state_dict_round_trips_through_metrics_architecture(tmp_path):
    model = encoding.ConvFC(7, seed=4)
    path = tmp_path / "model.pt"
    training.save_state_dict(model, path)
    arch = json.loads(json.dumps(encoding.architecture(model)))
    rebuilt = training.load_state_dict(encoding.build(arch), path)
    images = stimuli.gratings([10.0, 100.0], res=0.025, offset=-0.5)
    np.testing.assert_array_equal(encoding.predict(rebuilt, images),
                                  encoding.predict(model, images))
    with pytest.raises(ValueError, match="needs 'n_neurons'"):
        encoding.build({"n_channels": 6})


def test_tiled_read_out_equals_the_whole_matrix_step():
    """The CPU's tiles (:class:`_TiledReadOut`) and the GPU's whole-matrix step: same numbers."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(40, 30, generator=generator) * 0.1
    start[0, :3] = 0.0  # sign(0) = 0: no L1 pull
    bias = torch.randn(40, generator=generator)
    features = [torch.randn(6, 30, generator=generator) for _ in range(3)]
    responses = torch.randn(6, 40, generator=generator)
    held_out = torch.randn(6, 40, generator=generator)
    steps = {"lr": 0.1, "momentum": 0.9, "l2": 0.05, "l1": 0.01}
    scale = 2.0 / responses.numel()

    whole, buffer = start.clone(), torch.empty_like(start)
    expected = []
    for step, f in enumerate(features):
        residual = torch.addmm(bias, f, whole.T) - responses
        d_predicted = residual * scale
        d_features, d_bias = d_predicted @ whole, d_predicted.sum(0)
        sums = encoding._read_out_step(whole, d_predicted, f, buffer, first=step == 0, **steps)
        sse = (residual.double() ** 2).sum().item()
        held_out_sse = ((residual + responses - held_out).double() ** 2).sum().item()
        expected.append((sse, held_out_sse, d_features, d_bias, sums, whole.clone()))

    for tile_rows in (7, 40):
        weights = start.clone()
        read_out = encoding._TiledReadOut(weights, bias, responses, held_out,
                                          torch.empty_like(start), scale=scale,
                                          tile_rows=tile_rows, **steps)
        for step, f in enumerate(features):
            sse, held_out_sse, d_features, d_bias, sums = read_out.iterate(f, step == 0, None)
            reference = expected[step]
            assert (sse, held_out_sse) == pytest.approx(reference[:2], rel=1e-5)
            np.testing.assert_allclose(d_features, reference[2], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(d_bias, reference[3], rtol=1e-5, atol=1e-7)
            assert sums == pytest.approx(reference[4], rel=1e-5)
            np.testing.assert_allclose(weights, reference[5], rtol=1e-5, atol=1e-7)


def test_training_is_the_same_on_any_number_of_threads(synthetic_folds, monkeypatch):
    """Tiles shared by a pool of threads: the same bits as one thread, in the same process."""
    monkeypatch.setattr(encoding, "_TILE_ROWS", 40)  # four tiles of the 150 neurons
    images, _, fold_a, fold_b = synthetic_folds
    trained = []
    for n_threads in (1, 3):
        model = encoding.ConvFC(N_NEURONS, seed=3)
        history = encoding.train_encoder(model, images, fold_a, lr=0.05, n_iterations=4,
                                         val_responses=fold_b, progress=False,
                                         n_threads=n_threads)
        trained.append((model.state_dict(), history))
    (one, one_history), (three, three_history) = trained
    assert one_history == three_history
    for name, value in one.items():
        assert torch.equal(value, three[name]), name


FIT_IN_A_JOB = """
import hashlib, sys
import numpy as np
from v1rsa import encoding, stimuli, training
training.limit_threads(int(sys.argv[1]))  # as the workflow's script does with its threads
rng = np.random.default_rng(0)
images = stimuli.gratings(np.arange(0.0, 360.0, 6.0), sf=1 / 28, res=0.025, offset=-0.5)
responses = rng.normal(size=(2, 60, 2500)).astype(np.float32)
model = encoding.ConvFC(2500, seed=0)
history = encoding.train_encoder(model, images, responses[0], val_responses=responses[1],
                                 n_iterations=3, progress=False)
digest = hashlib.sha256(repr(history).encode())
for value in model.state_dict().values():
    digest.update(value.numpy().tobytes())
digest.update(encoding.predict(model, images).tobytes())
print(digest.hexdigest())
"""


@pytest.mark.parametrize("n_threads", [2, 3])
def test_a_training_job_writes_the_same_weights_on_any_number_of_threads(n_threads):
    """A job on n threads (OMP_NUM_THREADS and torch's count, as Snakemake gives them) trains the
    same bits as one on one thread: torch's own multi-threaded products would not."""
    digests = []
    for threads in (1, n_threads):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        result = subprocess.run([sys.executable, "-c", FIT_IN_A_JOB, str(threads)], env=env,
                                capture_output=True, text=True, check=True)
        digests.append(result.stdout.strip())
    assert digests[0] == digests[1]


def test_compiled_kernels_leave_torch_on_the_threads_it_was_given():
    """numba's OpenMP layer would raise the shared OpenMP runtime to all cores on launch."""
    code = ("import torch; from v1rsa import _kernels; import numba; numba.get_num_threads(); "
            "print(torch.get_num_threads())")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NUMBA_THREADING_LAYER", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "1"
