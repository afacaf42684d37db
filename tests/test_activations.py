"""Recording layer activations with forward hooks (v1rsa.activations)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import networks
from v1rsa import activations, io
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


# ------------------------------------------------------------------------------------------------
# Networks of one's own: a factory by import path, a state_dict, an input adapter, a check
# ------------------------------------------------------------------------------------------------


def test_units_keeps_only_the_chosen_columns(images):
    model = tiny_cnn()
    everything = record_activations(model, images, ["pool", "fc"])
    chosen = record_activations(model, images, ["pool", "fc"], units={"pool": [40, 3, 7]})
    np.testing.assert_array_equal(chosen["pool"], everything["pool"][:, [40, 3, 7]])
    np.testing.assert_array_equal(chosen["fc"], everything["fc"])
    with pytest.raises(ValueError, match=r"units of layer 'pool': indices must be in 0…47"):
        record_activations(model, images, ["pool"], units={"pool": [48]})
    with pytest.raises(ValueError, match=r"units name layer\(s\) \['conv'\]"):
        record_activations(model, images, ["pool"], units={"conv": [0]})


def test_layer_shapes_are_per_stimulus(images):
    shapes = activations.layer_shapes(tiny_cnn(), images, ["conv", "pool", "fc"])
    assert shapes == {"conv": (3, 8, 8), "pool": (3, 4, 4), "fc": (5,)}


def test_a_factory_is_imported_by_its_path():
    assert activations.import_factory("networks:small_cnn") is networks.small_cnn
    assert activations.factory_file("networks:small_cnn") == networks.__file__
    assert activations.import_factory("networks:SmallCNN.__init__") is networks.SmallCNN.__init__


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("networks.small_cnn", "expected an import path 'package.module:function'"),
        ("no_such_package.nets:build", "cannot import module 'no_such_package.nets'.*PYTHONPATH"),
        ("networks:no_such_function", "module 'networks' has no attribute 'no_such_function'"),
        ("networks:NOT_A_FACTORY", "'NOT_A_FACTORY' is a int, not a function"),
    ],
)
def test_a_bad_factory_path_is_refused_naming_it(spec, message):
    with pytest.raises(ValueError, match=message):
        activations.import_factory(spec)


def test_a_network_of_ones_own_is_built_seeded_then_given_its_weights(tmp_path):
    torch.manual_seed(123)
    state_before = torch.random.get_rng_state()
    first = activations.build_network("networks:small_cnn", kwargs={"hidden": 6}, seed=3)
    again = activations.build_network("networks:small_cnn", kwargs={"hidden": 6}, seed=3)
    other = activations.build_network("networks:small_cnn", kwargs={"hidden": 6}, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state_before)  # the caller's state untouched
    assert first.classifier[1].out_features == 6
    assert torch.equal(first.features[0].weight, again.features[0].weight)
    assert not torch.equal(first.features[0].weight, other.features[0].weight)

    path = tmp_path / "weights.pt"
    torch.save(other.state_dict(), path)
    loaded = activations.build_network("networks:small_cnn", kwargs={"hidden": 6},
                                       weights=path, seed=3)
    for name, tensor in other.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_weights_that_do_not_fit_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "wider.pt"
    torch.save(networks.small_cnn(hidden=12).state_dict(), path)
    with pytest.raises(ValueError, match=r"(?s)wider.pt: weights do not fit the SmallCNN.*"
                                         r"size mismatch for classifier.1.weight"):
        activations.build_network("networks:small_cnn", weights=path)
    pickled = tmp_path / "pickled_module.pt"
    torch.save(networks.small_cnn(), pickled)  # the whole module, not a state_dict
    with pytest.raises(ValueError, match=r"pickled_module.pt: refused: the file holds Python "
                                         r"objects other than tensors \(it asks for networks"):
        activations.build_network("networks:small_cnn", weights=pickled)
    with pytest.raises(ValueError, match="weights file .*missing.pt does not exist"):
        activations.build_network("networks:small_cnn", weights=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"failed when called with keyword arguments "
                                         r"\{'depth': 3\}"):
        activations.build_network("networks:small_cnn", kwargs={"depth": 3})
    with pytest.raises(ValueError, match="returned a dict; expected a torch.nn.Module"):
        activations.build_network("builtins:dict", kwargs={"x": 4})


def test_the_input_adapter_maps_values_resizes_and_repeats_channels():
    grey = np.array([[[0.0, 1.0], [1.0, 0.0]]], np.float32)  # (1, 2, 2)
    adapted = activations.adapt_images(grey, value_range=[-1, 1], n_channels=3)
    assert adapted.shape == (1, 3, 2, 2) and adapted.dtype == torch.float32
    for channel in adapted[0]:
        np.testing.assert_array_equal(channel.numpy(), 2 * grey[0] - 1)
    normalised = activations.adapt_images(grey, n_channels=3, mean=[0.5, 0.4, 0.3],
                                          std=[0.25, 0.5, 1.0])
    np.testing.assert_allclose(normalised[0, 1].numpy(), (grey[0] - 0.4) / 0.5)
    uniform = activations.adapt_images(np.full((2, 12, 16), 0.5), size=[6, 8])
    assert uniform.shape == (2, 1, 6, 8)
    np.testing.assert_allclose(uniform.numpy(), 0.5, rtol=1e-6)
    # downsampling by 2 with antialiasing averages 2 × 2 blocks of a checkerboard: all grey
    checkerboard = (np.indices((12, 16)).sum(axis=0) % 2).astype(np.float32)[None]
    np.testing.assert_allclose(activations.adapt_images(checkerboard, size=[6, 8]).numpy(), 0.5,
                               atol=0.02)
    with pytest.raises(ValueError, match="std must be positive"):
        activations.adapt_images(grey, std=0)
    with pytest.raises(ValueError, match=r"mean must be a number or one value per channel \(3\)"):
        activations.adapt_images(grey, n_channels=3, mean=[0.1, 0.2])


def test_grating_activations_go_through_the_input_adapter():
    network = activations.build_network("networks:small_cnn")
    adapter = {"value_range": [-1, 1], "n_channels": 3, "size": [24, 32]}
    recorded = activations.grating_activations(network, [0.0, 45.0], ["features.0", "classifier"],
                                               sf=1 / 28, res=0.1, input_adapter=adapter)
    images = activations.adapt_images(
        activations.grating_images([0.0, 45.0], sf=1 / 28, res=0.1), **adapter)
    with torch.no_grad():
        expected = network(images).numpy()
    np.testing.assert_allclose(recorded["classifier"], expected, rtol=1e-5, atol=1e-6)
    assert recorded["features.0"].shape == (2, 4 * 24 * 32)


def test_the_check_runs_one_grating_and_names_what_does_not_fit():
    network = activations.build_network("networks:small_cnn")
    adapter = {"n_channels": 3, "size": [24, 32]}
    n_units = activations.check_network(network, ["features.2", "classifier.3"], sf=1 / 28,
                                        res=0.1, input_adapter=adapter)
    assert n_units == {"features.2": 4 * 6 * 8, "classifier.3": 2}
    with pytest.raises(ValueError, match=r"\['features.9'\] not found.*'features.0'"):
        activations.check_network(network, ["features.9"], sf=1 / 28, res=0.1,
                                  input_adapter=adapter)
    with pytest.raises(ValueError, match=r"could not take a grating of 48 × 64 pixels"):
        activations.check_network(network, ["features.0"], sf=1 / 28, res=0.1)  # 1 channel
