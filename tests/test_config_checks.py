"""v1rsa.config_checks: every mistake is one line naming its key, found before any job runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from conftest import REPO
from v1rsa import config_checks
from v1rsa.blocks import block_layers

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def with_changes(*changes) -> dict:
    """The default config with ``(dotted.key, value)`` changes applied."""
    config = copy.deepcopy(DEFAULT)
    for key, value in changes:
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config


def problems(config) -> list[str]:
    return config_checks.schema_problems(config, SCHEMA) or config_checks.config_problems(config)


def test_the_default_and_smoke_configs_have_no_problems():
    assert problems(DEFAULT) == []
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config = copy.deepcopy(DEFAULT)
    for key, value in smoke.items():
        config[key] = ({**config[key], **value} if isinstance(value, dict) and key != "datasets"
                       else value)
    assert problems(config) == []


def test_a_misspelt_key_is_one_line_with_a_suggestion():
    config = copy.deepcopy(DEFAULT)
    config["binnig"] = {"bin_width_deg": 6}
    config["normative"]["n_epoch"] = 3

    assert config_checks.schema_problems(config, SCHEMA) == [
        "config: binnig: unknown key; did you mean 'binning'?",
        "config: normative.n_epoch: unknown key; did you mean 'n_epochs'?",
    ]


def test_an_unknown_key_without_a_close_match_lists_the_known_ones():
    config = copy.deepcopy(DEFAULT)
    config["zzz"] = 1
    [line] = config_checks.schema_problems(config, SCHEMA)
    assert line.startswith("config: zzz: unknown key; expected one of ['run', 'device'")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("normative.lr", float("nan"), "config: normative.lr: nan is not a finite number"),
        ("encoder.l2", float("inf"), "config: encoder.l2: inf is not a finite number"),
        ("normative.lr", "1e-4", "config: normative.lr: '1e-4' is text, not a number"),
        ("normative.n_epochs", 25.0, "config: normative.n_epochs: 25.0 is not an integer; "
                                     "write 25"),
        ("binning.n_folds", "two", "config: binning.n_folds: 'two' is not of type 'integer'"),
    ],
)
def test_numbers_must_be_finite_and_integers_integers(key, value, expected):
    [line] = config_checks.schema_problems(with_changes((key, value)), SCHEMA)
    assert line.startswith(expected)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"source": "local", "layout": "raw", "pth": "/data/x.npy"},
         ["config: datasets.mine.pth: unknown key; did you mean 'path'?",
          "config: datasets.mine: 'path' is a required property"]),
        ({"source": "download", "layout": "raw", "url": "osf.io/ny4ut"},
         ["config: datasets.mine.url: 'osf.io/ny4ut' does not match '^(https?|ftp)://'"]),
        ({"source": "download", "layout": "raw", "url": "https://x.org/f", "known_hash": "md5:12"},
         ["config: datasets.mine.known_hash: 'md5:12' does not match "
          "'^(md5:[0-9a-fA-F]{32}|sha256:[0-9a-fA-F]{64})$'"]),
        ({"source": "simulate", "layout": "raw",
          "simulate": {"n_neurons": 2, "n_trials": 100, "seed": 0}},
         ["config: datasets.mine.simulate.n_neurons: 2 is less than the minimum of 128"]),
        ({"source": "simulate", "layout": "oribinned1",
          "simulate": {"n_neurons": 200, "n_trials": 100, "seed": 0}},
         ["config: datasets.mine.layout: 'oribinned1' is not one of ['raw', 'raw_hdf5']"]),
        ({"source": "somewhere", "layout": "raw"},
         ["config: datasets.mine.source: 'somewhere' is not one of "
          "['simulate', 'download', 'local']"]),
    ],
    ids=["misspelt field", "url", "hash", "n_neurons", "layout", "source"],
)
def test_a_mistake_in_a_dataset_names_the_field(entry, expected):
    config = with_changes(("datasets.mine", entry))
    assert config_checks.schema_problems(config, SCHEMA) == expected


def test_a_local_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.npy").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    for name in ("mine", "simulated"):
        (tmp_path / "resources" / name).mkdir(parents=True)
        (tmp_path / "resources" / name / "raw.npy").write_bytes(b"x")

    def problems_with(path):
        entry = {"source": "local", "layout": "raw", "path": path}
        return config_checks.config_problems(with_changes(("datasets.mine", entry)))

    assert problems_with("mine.npy") == []
    assert problems_with(str(tmp_path / "mine.npy")) == []
    [missing] = problems_with("data/absent.npy")
    assert missing.startswith("config: datasets.mine.path: 'data/absent.npy' does not exist")
    assert str(tmp_path) in missing
    [folder] = problems_with("folder")
    assert folder.startswith("config: datasets.mine.path: 'folder' is a directory")
    [own_link] = problems_with("resources/mine/raw.npy")
    assert "is in resources/mine/, where the workflow links this dataset's file" in own_link
    assert problems_with("resources/simulated/raw.npy") == []  # another dataset's file


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([("binning.bin_width_deg", 7)],
         "config: binning.bin_width_deg: 7 does not divide 360"),
        ([("encoder.bin_width_deg", 50)],
         "config: encoder.bin_width_deg: 50 does not divide 360"),
        ([("rdm.conditions.min_deg", 100), ("rdm.conditions.max_deg", 10)],
         "config: rdm.conditions: min_deg 100 is above max_deg 10"),
        ([("binning.bin_width_deg", 72)],
         "config: rdm.conditions: 0…180° keeps 3 of the 72° bins (binning.bin_width_deg) of "
         "['synthetic']; an RSA needs at least 5 conditions"),
        ([("rdm.conditions.max_deg", 3)],
         "config: rdm.conditions: 0…3° keeps 3 of the 1° bins"),
        ([("figures.tsne_perplexity", 200)],
         "config: figures.tsne_perplexity: 200 must be below the number of conditions shown "
         "(180"),
        ([("normative.kernel_size", 6), ("normative.handmade_init", False)],
         "config: normative.kernel_size: 6 is even"),
        ([("normative.n_channels", 8)],
         "config: normative.handmade_init: the hand-made filters are 6 channels of 7 × 7"),
        ([("normative.pool_size", 49)],
         "config: normative.pool_size: 1 block(s) of pool_size 49 leave no pixel of the 48 × 64 "
         "image after block 1"),
        ([("normative.n_blocks", 3), ("normative.pool_size", 4)],
         "config: normative.n_blocks: 3 block(s) of pool_size 4 leave no pixel of the 48 × 64 "
         "image after block 3"),
        ([("activations.normative.layers", ["conv", "pol"])],
         "config: activations.normative.layers: ['pol'] are not layers of the normative"),
        ([("activations.normative.layers", ["conv", "pool2"])],
         "config: activations.normative.layers: ['pool2'] are not layers of the normative"),
        ([("receptive_fields.encoder.layers", ["fc"]),
          ("receptive_fields.encoder.units", {"conv": [0]})],
         "config: receptive_fields.encoder.units: ['conv'] are not among the mapped layers"),
        ([("run", ["synthetic", "nope"])],
         "config: run: 'nope' is not a key of datasets"),
    ],
    ids=["bin width", "encoder bin width", "min above max", "3 conditions", "narrow range",
         "perplexity", "even kernel", "handmade channels", "pool size", "depth", "layer name",
         "second block's layer of one block",
         "units of an unmapped layer", "run"],
)
def test_values_that_depend_on_each_other(changes, expected):
    [line] = config_checks.config_problems(with_changes(*changes))
    assert line.startswith(expected), line


def test_too_few_conditions_only_matters_for_datasets_binned_by_the_config():
    # the NMA binned files come with their own bins: the rsa job checks the count there
    config = with_changes(("binning.bin_width_deg", 72), ("run", ["nma_oribinned6_split"]))
    assert config_checks.config_problems(config) == []


def test_a_deeper_normative_cnn_may_record_the_layers_of_its_blocks():
    config = with_changes(("normative.n_blocks", 2), ("normative.pool_size", 4),
                          ("activations.normative.layers", ["conv", "pool", "pool2", "fc"]))
    assert config_checks.config_problems(config) == []


def test_check_config_raises_every_problem_at_once():
    config = with_changes(("binning.bin_width_deg", 7), ("normative.pool_size", 49))
    with pytest.raises(config_checks.ConfigError) as caught:
        config_checks.check_config(config)
    assert isinstance(caught.value, ValueError)
    assert len(str(caught.value).splitlines()) == 2


def test_what_the_checks_know_matches_the_library():
    from v1rsa import encoding, normative, preprocess, rsa, stimuli

    assert config_checks.MIN_RSA_CONDITIONS == rsa.MIN_RSA_CONDITIONS
    assert config_checks.NETWORK_MODULES["normative"] == tuple(
        name for name, _ in normative.build({}).named_children())
    for n_blocks in (1, 2, 3):
        network = normative.build({"n_blocks": n_blocks, "pool_size": 2})
        assert block_layers(config_checks.NETWORK_MODULES["normative"], n_blocks) == [
            name for name, _ in network.named_children()]
    assert config_checks.NETWORK_MODULES["encoder"] == tuple(
        name for name, _ in encoding.build({"n_neurons": 3}).named_children())
    for res in (0.1, 0.025, 0.0333):
        assert config_checks.image_shape(res) == stimuli.grating(0.0, res=res).shape
    for width in (1, 6, 7.5, 72):
        assert config_checks.divides_360(width) == (width != 7)
    trials = _trials_at(np.arange(0.5, 360, 1.0))
    conditions = preprocess.bin_conditions(trials, bin_width_deg=6, n_folds=1)
    np.testing.assert_allclose(conditions["orientation"].values,
                               config_checks.bin_centres_deg(6))


def _trials_at(orientation_deg):
    import xarray as xr

    n = len(orientation_deg)
    return xr.Dataset(
        {"response": (("trial", "neuron"), np.zeros((n, 2), np.float32))},
        coords={"trial": np.arange(n), "orientation": ("trial", orientation_deg),
                "split": ("trial", np.array(["train"] * n))})
