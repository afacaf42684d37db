"""The tilt-task CNN of Tutorial 3: architecture, hooks, training to high held-out accuracy."""

import json

import numpy as np
import pytest
import torch

from v1rsa import normative, stimuli, training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tilt_data(n, seed):
    """n gratings at uniform random angles in (−90°, 90°) and their tilt labels."""
    angles = stimuli.random_tilt_orientations(n, seed)
    return stimuli.gratings(angles), stimuli.tilt_labels(angles)


@pytest.fixture(scope="module")
def held_out():
    """Fresh gratings, drawn with a seed no training set uses."""
    return tilt_data(500, seed=2024)


def test_architecture_is_the_course_cnn():
    model = normative.TiltCNN()
    assert model.conv.in_channels == 1 and model.conv.out_channels == 6
    assert model.conv.kernel_size == (7, 7) and model.conv.padding == (3, 3)
    assert isinstance(model.pool, torch.nn.MaxPool2d) and model.pool.kernel_size == 8
    assert (model.fc.in_features, model.fc.out_features) == (288, 10)
    assert (model.out.in_features, model.out.out_features) == (10, 1)
    np.testing.assert_array_equal(model.conv.weight.detach().numpy()[:, 0],
                                  stimuli.handmade_filters())
    assert not model.conv.bias.detach().any()
    with pytest.raises(ValueError, match="handmade_init needs n_channels=6"):
        normative.TiltCNN(n_channels=8)
    assert normative.TiltCNN(n_channels=8, handmade_init=False).fc.in_features == 8 * 6 * 8
    with pytest.raises(ValueError, match=r"expects \(n, 48, 64\)"):
        model(torch.zeros(2, 12, 16))


def test_hooks_by_name_see_post_relu_pool_and_pre_relu_fc():
    model = normative.TiltCNN(seed=3)
    images = torch.from_numpy(stimuli.gratings(np.linspace(-90, 90, 7)))
    seen = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, output, name=name: seen.__setitem__(name, output.detach()))
        for name in ("pool", "fc", "out")]
    logits = model(images)
    for handle in handles:
        handle.remove()
    assert seen["pool"].shape == (7, 6, 6, 8) and seen["pool"].flatten(1).shape[1] == 288
    assert seen["fc"].shape == (7, 10)
    assert (seen["pool"] >= 0).all(), "the pool layer must see ReLU'd activations"
    assert (seen["fc"] < 0).any(), "the fc hook must see the Linear output before its ReLU"
    expected = torch.max_pool2d(torch.relu(model.conv(images[:, None])), 8)
    torch.testing.assert_close(seen["pool"], expected)
    torch.testing.assert_close(logits, model.out(torch.relu(seen["fc"]))[:, 0])
    assert logits.shape == (7,)


def test_the_pool_without_autograd_gives_exactly_max_pool_2d():
    """Where no gradient is needed, TileMaxPool2d takes each tile's row maxima, then their
    maximum: the numbers of max_pool2d, ties, NaN and a cropped remainder included. With
    autograd it is max_pool2d itself, whose gradient goes to one maximum of a tile."""
    pool = normative.TileMaxPool2d(4)
    generator = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(3, 2, 13, 18, generator=generator)).round(decimals=1)  # ties
    x[0, 1, 5, 6] = float("nan")
    with torch.inference_mode():
        pooled = pool(x)
    assert pooled.shape == (3, 2, 3, 4)
    torch.testing.assert_close(pooled, torch.nn.functional.max_pool2d(x, 4), rtol=0, atol=0,
                               equal_nan=True)
    x = x.nan_to_num().requires_grad_()
    reference = x.detach().clone().requires_grad_()
    pool(x).sum().backward()
    torch.nn.functional.max_pool2d(reference, 4).sum().backward()
    assert torch.equal(x.grad, reference.grad)


def test_scores_come_from_passes_that_give_the_logits_of_one_pass(held_out):
    images, labels = held_out  # 500 gratings: passes of 128, 128, 128 and 116
    assert len(labels) % normative.EVALUATION_BATCH_SIZE
    model = normative.TiltCNN(seed=3).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.as_tensor(labels, dtype=torch.float32))
    scores = normative.evaluate_tilt(model, images, labels)
    assert scores["loss"] == pytest.approx(float(loss), rel=1e-6)
    assert scores["accuracy"] == ((logits > 0).numpy() == labels).mean()


def test_trains_quickly_to_high_held_out_accuracy(held_out):
    images, labels = tilt_data(300, seed=1)
    model = normative.TiltCNN(seed=0)
    history = normative.train_normative(model, images, labels, lr=2e-3, batch_size=50,
                                        n_epochs=10, seed=0, progress=False)
    assert [row["epoch"] for row in history] == list(range(1, 11))
    assert {row["split"] for row in history} == {"train"}
    assert history[-1]["loss"] < history[0]["loss"]
    result = normative.evaluate_tilt(model, *held_out)
    assert result["accuracy"] > 0.95
    probability_right = torch.sigmoid(model(torch.from_numpy(held_out[0])))
    assert ((probability_right > 0.5).numpy() == held_out[1]).mean() == result["accuracy"]


def test_course_defaults_reach_high_held_out_accuracy(held_out):
    images, labels = tilt_data(1000, seed=12)
    model = normative.TiltCNN(seed=12)
    normative.train_normative(model, images, labels, progress=False)
    assert normative.evaluate_tilt(model, *held_out)["accuracy"] > 0.95


def test_same_seed_gives_identical_weights_and_leaves_global_rng_alone():
    images, labels = tilt_data(200, seed=5)

    def trained(seed):
        model = normative.TiltCNN(dropout=0.3, seed=seed)
        normative.train_normative(model, images, labels, n_epochs=2, seed=seed, progress=False)
        return model.state_dict()

    rng_state = torch.get_rng_state()
    first, second, other = trained(4), trained(4), trained(5)
    assert torch.equal(rng_state, torch.get_rng_state())
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
    assert not torch.equal(first["fc.weight"], other["fc.weight"])


def test_validation_rows_and_early_stopping_keep_the_best_epoch():
    images, labels = tilt_data(200, seed=6)
    val_images, val_labels = tilt_data(200, seed=7)
    model = normative.TiltCNN(seed=1)
    history = normative.train_normative(
        model, images, labels, lr=2e-3, batch_size=50, n_epochs=6, seed=1,
        val_images=val_images, val_labels=val_labels, early_stopping_patience=2,
        progress=False)
    val_rows = [row for row in history if row["split"] == "validation"]
    assert len(val_rows) == len([row for row in history if row["split"] == "train"])
    best = min(row["loss"] for row in val_rows)
    assert normative.evaluate_tilt(model, val_images, val_labels)["loss"] == pytest.approx(best)
    with pytest.raises(ValueError, match="early_stopping_patience needs"):
        normative.train_normative(model, images, labels, early_stopping_patience=2)
    with pytest.raises(ValueError, match="labels must be 0"):
        normative.train_normative(model, images, labels * 2, progress=False)


def test_state_dict_round_trips_through_metrics_architecture(tmp_path):
    images = torch.from_numpy(stimuli.gratings([-30.0, 5.0, 70.0]))
    for model in (normative.TiltCNN(seed=2),
                  normative.TiltCNN(n_channels=4, kernel_size=5, hidden=16, dropout=0.2,
                                    batch_norm=True, handmade_init=False, seed=2)):
        path = tmp_path / "model.pt"
        training.save_state_dict(model, path)
        arch = json.loads(json.dumps(normative.architecture(model)))
        rebuilt = training.load_state_dict(normative.build(arch), path)
        model.eval()
        rebuilt.eval()
        torch.testing.assert_close(rebuilt(images), model(images))
    with pytest.raises(ValueError, match="unknown TiltCNN parameter"):
        normative.build({"n_layers": 3})
    with pytest.raises(ValueError, match="do not fit"):
        training.load_state_dict(normative.TiltCNN(hidden=20), path)
