"""Receptive fields by occlusion with noise (v1rsa.receptive_fields), checked against the
footprints that hand-built networks have by construction."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage, stats
from torch import nn

from v1rsa import io, normative
from v1rsa import receptive_fields as rf
from v1rsa.stimuli import gratings

HEIGHT, WIDTH = 24, 32  # gratings at res 0.05


def conv_network(n_channels=2, kernel_size=7, pool_size=None, seed=0):
    """conv (kernel_size², 'same' padding, weights ±[0.5, 1], no bias) [→ ReLU → max-pool]."""
    conv = nn.Conv2d(1, n_channels, kernel_size, padding=kernel_size // 2, bias=False)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.0, conv.weight.shape) * rng.choice([-1, 1], conv.weight.shape)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights))
    layers = [("conv", conv)]
    if pool_size:
        layers += [("relu", nn.ReLU()), ("pool", nn.MaxPool2d(pool_size))]
    return nn.Sequential(OrderedDict(layers))


class BoxReader(nn.Module):
    """fc: Linear(H·W → 3) whose weights are zero outside rows 5…9, columns 10…17."""

    box = (slice(5, 10), slice(10, 18))

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(HEIGHT * WIDTH, 3)
        weights = torch.zeros(3, HEIGHT, WIDTH)
        weights[:, self.box[0], self.box[1]] = torch.linspace(0.5, 1.0, 3)[:, None, None]
        with torch.no_grad():
            self.fc.weight.copy_(weights.reshape(3, -1))
            self.fc.bias.fill_(0.1)

    def forward(self, images):
        return torch.relu(self.fc(images.flatten(1)))


@pytest.fixture(scope="module")
def images():
    return gratings([0.0, 45.0], res=0.05)  # (2, 24, 32) in {0, 1}


def footprint(centre, half_width, shape=(HEIGHT, WIDTH)):
    """True on the pixels within ``half_width`` of ``centre`` (a square kernel's footprint)."""
    y, x = np.ogrid[:shape[0], :shape[1]]
    return (np.abs(y - centre[0]) <= half_width) & (np.abs(x - centre[1]) <= half_width)


def conv_unit(channel, y, x, n_channels=2):
    return np.ravel_multi_index((channel, y, x), (n_channels, HEIGHT, WIDTH))


def nonzero(maps, relative=1e-4):
    return maps > relative * maps.max(axis=(-2, -1), keepdims=True)


def test_a_one_pixel_patch_maps_exactly_the_conv_kernel_footprint(images):
    # an interior unit, and one whose 7 × 7 footprint is clipped by the image border
    centres = [(0, 12, 15), (1, 1, 30)]
    maps = rf.discrepancy_maps(conv_network(), images,
                               {"conv": [conv_unit(*c) for c in centres]},
                               patch_size=1, stride=1, n_draws=3, progress=False)["conv"]
    assert maps.shape == (2, HEIGHT, WIDTH) and maps.dtype == np.float32
    for unit_map, (_, y, x) in zip(maps, centres, strict=True):
        expected = footprint((y, x), 3)
        np.testing.assert_array_equal(nonzero(unit_map), expected)
        assert unit_map[~expected].max() <= 1e-6 * unit_map.max()


def test_larger_patches_and_strides_map_the_footprint_dilated_by_the_patch(images):
    unit = conv_unit(0, 12, 15)
    expected = ndimage.binary_dilation(footprint((12, 15), 3), structure=np.ones((3, 3)))
    maps = rf.discrepancy_maps(conv_network(), images, {"conv": [unit]}, patch_size=3,
                               stride=1, n_draws=2, progress=False)["conv"][0]
    np.testing.assert_array_equal(nonzero(maps), expected)
    coarse = rf.discrepancy_maps(conv_network(), images, {"conv": [unit]}, patch_size=3,
                                 stride=2, n_draws=2, progress=False)["conv"][0]
    assert coarse.shape == (HEIGHT // 2, WIDTH // 2)  # centres 0, 2, 4, …
    np.testing.assert_array_equal(nonzero(coarse), expected[::2, ::2])
    # an even patch is centred up-left: a 2-pixel patch at c covers rows (columns) c and c + 1
    even = rf.discrepancy_maps(conv_network(), images, {"conv": [unit]}, patch_size=2,
                               n_draws=2, progress=False)["conv"][0]
    expected = np.zeros((HEIGHT, WIDTH), bool)
    expected[12 - 3 - 1:12 + 3 + 1, 15 - 3 - 1:15 + 3 + 1] = True
    np.testing.assert_array_equal(nonzero(even), expected)


def test_a_unit_that_ignores_a_region_has_a_zero_map_there(images):
    model = BoxReader()
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[model.box] = True
    for noise in rf.NOISE_DISTRIBUTIONS:  # binary noise equals the pixel half the time
        maps = rf.discrepancy_maps(model, images, {"fc": [0, 1, 2]}, patch_size=1, n_draws=16,
                                   noise=noise, progress=False)["fc"]
        assert (maps[:, ~box] == 0).all()
        np.testing.assert_array_equal(nonzero(maps), np.broadcast_to(box, maps.shape))
    maps = rf.discrepancy_maps(model, images, {"fc": [2]}, patch_size=5, stride=2, n_draws=2,
                               progress=False)["fc"][0]
    dilated = ndimage.binary_dilation(box, structure=np.ones((5, 5)))
    assert (maps[~dilated[::2, ::2]] == 0).all() and (maps[dilated[::2, ::2]] > 0).all()


def test_a_pooled_unit_sees_only_the_footprints_of_its_pooling_window(images):
    """Max-pool 4 after a 7 × 7 conv: pool unit (i, j) reads conv rows 4i…4i+3, which read
    image rows 4i−3…4i+6 (and columns alike); nothing outside that box can change it."""
    model = conv_network(pool_size=4)
    i, j = 3, 4
    unit = np.ravel_multi_index((1, i, j), (2, HEIGHT // 4, WIDTH // 4))
    maps = rf.discrepancy_maps(model, images, {"pool": [unit]}, patch_size=1, n_draws=4,
                               progress=False)["pool"][0]
    window = np.zeros((HEIGHT, WIDTH), bool)
    window[4 * i - 3:4 * i + 7, 4 * j - 3:4 * j + 7] = True
    assert (maps[~window] == 0).all()
    assert (maps[window] > 0).mean() > 0.5


@pytest.mark.parametrize(
    ("noise", "expected"),
    [
        ("uniform", 0.5),  # E|U(0, 1) − x| for x in {0, 1}
        ("binary", 0.5),   # the noise pixel differs from x with probability ½
        ("gaussian", stats.foldnorm(c=1.0, scale=0.5).mean()),  # |N(±½, ½²)|
    ],
)
def test_a_linear_unit_changes_by_its_weight_times_the_mean_noise_difference(noise, expected):
    """For the conv unit at the centre of a 9 × 9 grating, D(y, x) = |w_k| · E|noise − x|."""
    model = conv_network(n_channels=1)
    image = gratings([30.0], res=0.01875)[:, :9, :9]
    maps = rf.discrepancy_maps(model, image, {"conv": [np.ravel_multi_index((0, 4, 4),
                                                                          (1, 9, 9))]},
                               patch_size=1, n_draws=3000, noise=noise, batch_size=30_000,
                               progress=False)["conv"][0]
    weight = np.abs(model.conv.weight.detach().numpy()[0, 0])  # footprint rows 1…7, cols 1…7
    np.testing.assert_allclose(maps[1:8, 1:8] / weight, expected,
                               atol=0.04)


def test_the_maps_depend_on_the_seed_but_not_on_the_batch_size(images):
    model = conv_network(pool_size=4)
    units = {"conv": [conv_unit(0, 12, 15)], "pool": [5, 17]}
    settings = {"patch_size": 3, "stride": 2, "n_draws": 3, "progress": False}
    whole = rf.discrepancy_maps(model, images, units, batch_size=4096, seed=1, **settings)
    batched = rf.discrepancy_maps(model, images, units, batch_size=7, seed=1, **settings)
    other = rf.discrepancy_maps(model, images, units, batch_size=4096, seed=2, **settings)
    for layer in units:
        np.testing.assert_allclose(batched[layer], whole[layer], rtol=1e-5, atol=1e-7)
        assert not np.allclose(other[layer], whole[layer])


def test_the_maps_are_the_definition_computed_one_occluded_image_at_a_time(images):
    """The module docstring's D_u(y, x), written out with numpy loops: every image, patch
    centre and noise draw (seeded by (seed, image, position)), the patch clipped at the
    border. 2 images × 48 centres × 3 draws = 288 occluded images: one batch, which runs
    through the network in passes of at most rf.CPU_PASS_SIZE on the CPU."""
    model = conv_network(pool_size=4)
    units = {"conv": [conv_unit(0, 12, 15), conv_unit(1, 0, 31)], "pool": [5, 40]}
    patch_size, stride, n_draws, seed = 4, 4, 3, 7  # an even patch: centred up-left
    assert len(images) * (HEIGHT // stride) * (WIDTH // stride) * n_draws > rf.CPU_PASS_SIZE
    maps = rf.discrepancy_maps(model, images, units, patch_size=patch_size, stride=stride,
                               n_draws=n_draws, seed=seed, batch_size=1024, progress=False)

    def activations(stimuli):  # (n, H, W) → {layer: (n, n_units)}, by the layers themselves
        conv = model.conv(torch.from_numpy(stimuli)[:, None])
        pool = model.pool(model.relu(conv))
        return {"conv": conv.flatten(1)[:, units["conv"]].numpy(),
                "pool": pool.flatten(1)[:, units["pool"]].numpy()}

    centres_y, centres_x = rf.patch_centres(HEIGHT, WIDTH, stride)
    occluded, index = [], []
    for g, image in enumerate(images):
        for k, (y, x) in enumerate((y, x) for y in centres_y for x in centres_x):
            noise = rf.draw_noise(np.random.default_rng([seed, g, k]),
                                  (n_draws, patch_size, patch_size), "uniform", (0.0, 1.0))
            for draw in noise:
                stimulus = image.copy()
                for i in range(patch_size):
                    for j in range(patch_size):
                        row, column = y - (patch_size - 1) // 2 + i, x - (patch_size - 1) // 2 + j
                        if 0 <= row < HEIGHT and 0 <= column < WIDTH:
                            stimulus[row, column] = draw[i, j]
                occluded.append(stimulus)
                index.append((g, k))
    with torch.no_grad():
        original, changed = activations(images), activations(np.stack(occluded))
    image_of, position_of = np.array(index).T
    for layer, recorded in changed.items():
        change = np.abs(recorded.astype(np.float64) - original[layer][image_of])
        expected = np.stack([change[position_of == k].mean(axis=0)
                             for k in range(centres_y.size * centres_x.size)])
        np.testing.assert_allclose(maps[layer], expected.T.reshape(-1, *maps[layer].shape[1:]),
                                   rtol=1e-6, atol=1e-7)
        assert (maps[layer].max(axis=(1, 2)) > 0).all()


def test_default_units_are_the_centre_of_each_channel_or_every_unit():
    units = rf.default_units({"conv": (6, 48, 64), "pool": (6, 6, 8), "fc": (10,),
                              "wide": (1000,)}, max_units=64)
    np.testing.assert_array_equal(
        np.unravel_index(units["conv"], (6, 48, 64)),
        [np.arange(6), np.full(6, 24), np.full(6, 32)])
    np.testing.assert_array_equal(np.unravel_index(units["pool"], (6, 6, 8))[1:],
                                  [np.full(6, 3), np.full(6, 4)])
    np.testing.assert_array_equal(units["fc"], np.arange(10))
    assert units["wide"].size == 64 and units["wide"][0] == 0 and units["wide"][-1] == 999


def test_the_receptive_field_is_where_the_map_exceeds_a_fraction_of_its_maximum(tmp_path):
    block = np.zeros((2, 6, 8), np.float32)
    block[0, 1:4, 2:7] = 1.0          # 3 × 5 centres at the maximum
    block[0, 0, 0] = 0.2              # below half the maximum: outside the field
    fields = rf.receptive_field_dataset(
        {"fc": block}, {"fc": [3, 4]}, {"fc": (5,)}, image_shape=(12, 16), stride=2,
        threshold=0.5, attrs={"model": "toy"})
    assert fields["discrepancy"].dims == ("unit", "y", "x")
    np.testing.assert_array_equal(fields["y"].values, np.arange(0, 12, 2))
    np.testing.assert_array_equal(fields["receptive_field"].values[0], block[0] == 1.0)
    assert fields["area_px"].values[0] == 15 * 2**2
    assert fields["area_fraction"].values[0] == pytest.approx(15 / 48)
    assert (fields["height_px"].values[0], fields["width_px"].values[0]) == (3 * 2, 5 * 2)
    # a unit that nothing changes has no receptive field
    assert not fields["responsive"].values[1]
    assert np.isnan(fields["area_px"].values[1]) and not fields["receptive_field"][1].any()
    assert list(fields["unit_index"].values) == [3, 4] and set(fields["layer"].values) == {"fc"}
    assert np.isnan(fields["unit_y_px"].values).all()

    path = tmp_path / "receptive_fields.nc"
    io.write_netcdf(fields, path)
    back = io.read_netcdf(path, ["discrepancy", "receptive_field"])
    assert back["receptive_field"].dtype == bool
    assert back.attrs["model"] == "toy" and back.attrs["threshold"] == 0.5


def test_unit_positions_are_mapped_onto_the_image():
    maps = {"conv": np.ones((1, 24, 32), np.float32), "pool": np.ones((1, 24, 32), np.float32)}
    units = {"conv": [conv_unit(1, 12, 15)],
             "pool": [np.ravel_multi_index((1, 3, 4), (2, 6, 8))]}
    fields = rf.receptive_field_dataset(
        maps, units, {"conv": (2, 24, 32), "pool": (2, 6, 8)}, image_shape=(24, 32), stride=1,
        threshold=0.5)
    np.testing.assert_array_equal(fields["channel"].values, [1, 1])
    # a 'same' conv unit sits on its own pixel; a pool-4 unit at its window's centre
    np.testing.assert_allclose(fields["unit_y_px"].values, [12, 4 * 3 + 1.5])
    np.testing.assert_allclose(fields["unit_x_px"].values, [15, 4 * 4 + 1.5])


def test_sizes_per_layer_are_medians_over_responsive_units():
    maps = np.zeros((3, 4, 4), np.float32)
    maps[0, :1, :1] = maps[1, :2, :2] = 1.0  # areas 1 and 4 centres; unit 2 silent
    fields = rf.receptive_field_dataset({"fc": maps}, {"fc": [0, 1, 2]}, {"fc": (3,)},
                                        image_shape=(4, 4), stride=1, threshold=0.5)
    sizes = rf.receptive_field_sizes(fields)
    expected = pd.DataFrame([{"layer": "fc", "n_units": 3, "n_responsive": 2, "area_px": 2.5,
                              "area_fraction": 2.5 / 16, "height_px": 1.5, "width_px": 1.5,
                              "area_px_min": 1.0, "area_px_max": 4.0}])
    pd.testing.assert_frame_equal(sizes, expected)


def test_receptive_fields_of_the_normative_cnn_grow_with_depth():
    network = normative.TiltCNN(seed=12)  # the course's hand-made filters, untrained fc
    fields = rf.grating_receptive_fields(
        network, ["conv", "pool", "fc"], n_gratings=2, sf=1 / 28, res=0.1, patch_size=4,
        stride=4, n_draws=2, threshold=0.25, seed=0)
    assert fields.sizes["y"] == 12 and fields.sizes["x"] == 16
    assert fields.attrs["patch_size"] == 4 and list(fields.attrs["orientation_deg"]) == [-90, 0]
    sizes = rf.receptive_field_sizes(fields).set_index("layer")
    assert list(sizes["n_units"]) == [6, 6, 10]
    area = sizes["area_px"]
    assert area["conv"] < area["pool"] < area["fc"]
    assert sizes.loc["fc", "area_fraction"] > 0.2  # the fc layer reads the whole image


def test_an_input_adapter_is_applied_after_the_occlusion():
    """A 3-channel network that needs 12 × 16 inputs maps 24 × 32 gratings (map in grating
    pixels), and its units see the occlusion through the resize."""
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 2, 3, padding=1)))
    fields = rf.grating_receptive_fields(
        model, ["conv"], n_gratings=2, sf=1 / 28, res=0.05, patch_size=2, stride=2, n_draws=2,
        input_adapter={"n_channels": 3, "size": [12, 16], "value_range": [-1, 1]})
    assert (fields.sizes["y"], fields.sizes["x"]) == (12, 16)
    np.testing.assert_allclose(fields["unit_y_px"].values, 2 * 6 + 0.5)  # conv unit (6, 8)
    assert fields["responsive"].values.all()
    assert fields["height_px"].values.max() < 24


def test_bad_settings_are_refused(images):
    model = conv_network()
    with pytest.raises(ValueError, match="noise distribution 'salt'"):
        rf.discrepancy_maps(model, images, {"conv": [0]}, patch_size=1, noise="salt")
    with pytest.raises(ValueError, match="patch_size must be a positive integer"):
        rf.discrepancy_maps(model, images, {"conv": [0]}, patch_size=0)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        rf.discrepancy_maps(model, images, {"conv": [0]}, patch_size=1, stride=0)
    with pytest.raises(ValueError, match="indices must be in 0…1535"):
        rf.discrepancy_maps(model, images, {"conv": [5000]}, patch_size=1)
    with pytest.raises(ValueError, match=r"units name layer\(s\) \['fc'\]"):
        rf.grating_receptive_fields(model, ["conv"], units={"fc": [0]}, n_gratings=1,
                                    sf=1 / 28, res=0.05, patch_size=1)
    with pytest.raises(ValueError, match="threshold"):
        rf.receptive_field_dataset({"fc": np.ones((1, 2, 2))}, {"fc": [0]}, {"fc": (1,)},
                                   image_shape=(2, 2), stride=1, threshold=1.5)


def test_the_figure_draws_example_maps_per_layer_and_the_sizes():
    from matplotlib.image import AxesImage

    from v1rsa.figures import receptive_fields as figures

    fields = rf.grating_receptive_fields(
        normative.TiltCNN(seed=12), ["conv", "pool", "fc"], n_gratings=1, sf=1 / 28, res=0.1,
        patch_size=4, stride=4, n_draws=1)
    fig = figures.receptive_fields_figure(fields, n_units=4, title="normative")
    maps_figure, size_figure = fig.subfigs
    shown = [ax for ax in maps_figure.axes if ax.get_visible() and ax.images]
    assert len(shown) == 3 * 4
    assert all(isinstance(ax.images[0], AxesImage) for ax in shown)
    assert shown[0].images[0].get_clim() == (0, 1)
    sizes_axes = size_figure.axes[0]
    assert [t.get_text() for t in sizes_axes.get_xticklabels()] == ["conv", "pool", "fc"]
    assert "%" in sizes_axes.get_ylabel()
