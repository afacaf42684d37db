"""Recording layer activations with forward hooks (v1rsa.activations)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from v1rsa import io
from v1rsa.activations import activations_dataset, record_activations


class TinyCNN(nn.Module):
    """conv → relu → pool → fc → relu → out, on 1 × 8 × 8 images (the normative CNN's shape)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.out = nn.Linear(5, 1)

    def forward(self, x):
        x = self.pool(self.relu(self.conv(x)))
        return self.out(F.relu(self.fc(x.flatten(1))))


def tiny_cnn(seed=0):
    """A TinyCNN with weights drawn from a seeded numpy Generator (not torch's global state)."""
    model = TinyCNN()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.from_numpy(rng.normal(size=tuple(parameter.shape))))
    return model


@pytest.fixture
def images():
    return np.random.default_rng(1).random((11, 8, 8)).astype(np.float32)


def test_activations_equal_a_manual_forward_pass(images):
    model = tiny_cnn()
    acts = record_activations(model, images, ["pool", "fc"], device="cpu")

    x = torch.from_numpy(images)[:, None]
    pool = F.max_pool2d(F.relu(F.conv2d(x, model.conv.weight, model.conv.bias, padding=1)), 2)
    fc = pool.flatten(1) @ model.fc.weight.T + model.fc.bias
    assert acts["pool"].shape == (11, 3 * 4 * 4) and acts["pool"].dtype == np.float32
    assert acts["fc"].shape == (11, 5) and acts["fc"].dtype == np.float32
    np.testing.assert_allclose(acts["pool"], pool.flatten(1).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(acts["fc"], fc.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_batch_size_and_channel_dim_do_not_change_results(images):
    model = tiny_cnn()
    whole = record_activations(model, images, ["pool", "fc"], batch_size=256)
    batched = record_activations(model, images, ["pool", "fc"], batch_size=3)
    with_channel = record_activations(model, torch.from_numpy(images)[:, None], ["pool", "fc"])
    for layer in ("pool", "fc"):
        np.testing.assert_allclose(batched[layer], whole[layer], rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(with_channel[layer], whole[layer])


def test_missing_layer_names_the_available_ones(images):
    with pytest.raises(ValueError, match=r"'pool2'.*available module names.*'pool'"):
        record_activations(tiny_cnn(), images, ["pool2"])


def test_hooks_are_removed_and_mode_restored_even_on_error(images):
    model = tiny_cnn()
    model.train()
    record_activations(model, images, ["conv", "pool", "fc"])
    wrong_size = np.zeros((2, 12, 12), np.float32)  # fc expects 8 × 8 images
    with pytest.raises(RuntimeError):
        record_activations(model, wrong_size, ["pool"])
    assert all(not module._forward_hooks for module in model.modules())
    assert model.training


def test_a_module_run_twice_per_forward_pass_is_refused(images):
    class SharedReLU(TinyCNN):
        def forward(self, x):
            x = self.pool(self.relu(self.conv(x)))
            return self.out(self.relu(self.fc(x.flatten(1))))

    with pytest.raises(ValueError, match="'relu' ran 2 times"):
        record_activations(SharedReLU(), images, ["relu"])


def test_activations_dataset_follows_the_contract(images, tmp_path):
    acts = record_activations(tiny_cnn(), images, ["pool", "fc"])
    orientation_deg = np.linspace(-90, 90, len(images))
    ds = activations_dataset(acts, orientation_deg, model_name="tiny", attrs={"seed": 0})
    assert ds["pool"].dims == ("condition", "pool_unit")
    assert ds["fc"].dims == ("condition", "fc_unit")
    assert ds["fc"].dtype == np.float32
    np.testing.assert_array_equal(ds["orientation"].values, orientation_deg)
    assert ds.attrs == {"model": "tiny", "layers": "pool,fc", "seed": 0}

    path = tmp_path / "activations" / "tiny.nc"
    io.write_netcdf(ds, path)
    back = io.read_netcdf(path, ["pool", "fc"], {"pool": ("condition", "pool_unit")})
    np.testing.assert_array_equal(back["pool"].values, acts["pool"])


def test_activations_dataset_checks_rows_match_orientations(images):
    acts = record_activations(tiny_cnn(), images, ["fc"])
    with pytest.raises(ValueError, match=r"layer 'fc': expected \(10, n_units\)"):
        activations_dataset(acts, np.zeros(10), model_name="tiny")
