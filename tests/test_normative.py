"""The tilt-task CNN of Tutorial 3: architecture, hooks, training to high held-out accuracy."""

import json

import numpy as np
import pytest
import torch

from v1rsa import blocks, normative, stimuli, training

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


def test_one_block_keeps_the_weights_and_module_names_of_the_course_cnn():
    """Blocks are added after the first, so a one-block network is the network of before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        conv = torch.nn.Conv2d(1, 4, 5, padding=2)
        torch.nn.Identity(), normative.TileMaxPool2d(4), torch.nn.Dropout(0.0)
        fc, out = torch.nn.Linear(4 * 12 * 16, 10), torch.nn.Linear(10, 1)
    model = normative.TiltCNN(n_channels=4, kernel_size=5, pool_size=4, handmade_init=False,
                              seed=7)
    expected = {"conv.weight": conv.weight, "conv.bias": conv.bias, "fc.weight": fc.weight,
                "fc.bias": fc.bias, "out.weight": out.weight, "out.bias": out.bias}
    state = model.state_dict()
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    assert [name for name, _ in model.named_children()] == [
        "conv", "conv_norm", "pool", "dropout", "fc", "out"]


def test_deeper_networks_add_numbered_blocks_of_conv_relu_pool():
    model = normative.TiltCNN(n_blocks=3, pool_size=2, batch_norm=True, seed=1).eval()
    assert [name for name, _ in model.named_children()] == [
        "conv", "conv_norm", "pool", "conv2", "conv2_norm", "pool2", "conv3", "conv3_norm",
        "pool3", "dropout", "fc", "out"]
    assert (model.conv2.in_channels, model.conv2.out_channels) == (6, 6)
    assert model.pool_shape == (6, 6, 8) and model.fc.in_features == 288
    images = torch.from_numpy(stimuli.gratings(np.linspace(-80, 80, 5)))
    recorded = {}
    modules = dict(model.named_modules())
    for name in ("pool", "pool2", "pool3"):
        modules[name].register_forward_hook(
            lambda _m, _i, output, name=name: recorded.__setitem__(name, output))
    with torch.no_grad():
        logits = model(images)
        block = torch.max_pool2d(torch.relu(model.conv_norm(model.conv(images[:, None]))), 2)
        torch.testing.assert_close(recorded["pool"], block)
        block = torch.max_pool2d(torch.relu(model.conv2_norm(model.conv2(block))), 2)
        torch.testing.assert_close(recorded["pool2"], block)
        block = torch.max_pool2d(torch.relu(model.conv3_norm(model.conv3(block))), 2)
        expected = model.out(torch.relu(model.fc(block.flatten(1))))[:, 0]
    assert recorded["pool3"].shape == (5, 6, 6, 8)
    torch.testing.assert_close(logits, expected)
    assert blocks.block_layers(["conv", "pool", "fc", "out"], 3) == [
        "conv", "pool", "conv2", "pool2", "conv3", "pool3", "fc", "out"]
    assert blocks.block_layers(["pool", "fc"], 1) == ["pool", "fc"]


def test_a_depth_the_image_cannot_take_is_refused():
    # 48 x 64 pooled by 4: 12 x 16, 3 x 4, then nothing
    assert normative.TiltCNN(n_blocks=2, pool_size=4).pool_shape == (6, 3, 4)
    with pytest.raises(ValueError, match="3 block.*leave no pixel.*after block 3"):
        normative.TiltCNN(n_blocks=3, pool_size=4)
    with pytest.raises(ValueError, match="n_blocks must be a positive integer"):
        normative.TiltCNN(n_blocks=0)


def test_zero_epochs_keep_the_initial_weights():
    images, labels = tilt_data(100, seed=3)
    model = normative.TiltCNN(n_blocks=2, pool_size=2, seed=5)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    history = normative.train_normative(model, images, labels, n_epochs=0, seed=5,
                                        val_images=images, val_labels=labels, progress=False)
    assert history == []
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, initial[name]), name
    assert not model.training


def test_regularisers_shrink_the_weights():
    images, labels = tilt_data(200, seed=8)

    def trained(**regularisers):
        model = normative.TiltCNN(handmade_init=False, seed=2)
        normative.train_normative(model, images, labels, lr=2e-3, batch_size=50, n_epochs=3,
                                  seed=2, progress=False, **regularisers)
        return model

    plain, l2, l1 = trained(), trained(weight_decay=0.5), trained(l1=0.05)
    with torch.no_grad():
        assert float((l2.fc.weight ** 2).sum()) < 0.9 * float((plain.fc.weight ** 2).sum())
        assert float(l1.fc.weight.abs().sum()) < 0.9 * float(plain.fc.weight.abs().sum())
    with pytest.raises(ValueError, match="weight_decay and l1 must be"):
        normative.train_normative(plain, images, labels, l1=-1.0, progress=False)


def test_held_out_scores_leave_out_gratings_seen_in_training():
    """Nearby angles give the same binarised image: a test image equal to a training image
    is not held out, and is not scored."""
    def stimulus_set(angles):
        return stimuli.stimulus_set(angles, labels=stimuli.tilt_labels(angles))

    train_angles = stimuli.random_tilt_orientations(150, seed=1)
    fresh = stimuli.random_tilt_orientations(60, seed=2)
    # 20 test angles a hair from training angles: the same images
    test_angles = np.concatenate([train_angles[:20] + 1e-6, fresh])
    train, test = stimulus_set(train_angles), stimulus_set(test_angles)
    assert stimuli.unseen(test["image"].values, train["image"].values)[:20].sum() == 0
    keep = stimuli.unseen(test["image"].values, train["image"].values)
    model, history, metrics = normative.fit_normative(
        train, test, test, arch={"pool_size": 8}, seed=0, lr=2e-3, batch_size=50, n_epochs=2,
        progress=False)
    assert metrics["n_test"] == keep.sum()
    assert metrics["n_test_seen_in_training"] == len(keep) - keep.sum() >= 20
    expected = normative.evaluate_tilt(model, test["image"].values[keep],
                                       test["label"].values[keep])
    assert metrics["test_accuracy"] == expected["accuracy"]
    assert metrics["device"] == "cpu" and metrics["n_epochs_run"] == 2
