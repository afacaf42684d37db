"""Families of networks in the config: variants, their names, and what is refused."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from v1rsa import families


def config_with(families_entry: dict, **sections) -> dict:
    """The default config with these families, all run (and sections replaced)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["families"] = copy.deepcopy(families_entry)
    config["run_families"] = list(families_entry)
    config.update(sections)
    return config


def names(config) -> list[str]:
    return [variant.network for variant in families.expand(config)]


DEPTH = {"depth": {"base": {"pool_size": 2, "n_epochs": 10},
                   "grid": {"n_blocks": [1, 2, 3], "n_epochs": [0, 10]}, "seeds": [0, 1]}}


def test_a_grid_gives_every_combination_named_by_what_differs_from_the_base():
    variants = families.expand(config_with(DEPTH))
    assert [v.name for v in variants] == [
        "epochs0", "base", "blocks2-epochs0", "blocks2", "blocks3-epochs0", "blocks3"]
    blocks2 = variants[3]
    assert blocks2.network == "depth-blocks2" and blocks2.seeds == (0, 1)
    assert blocks2.architecture["n_blocks"] == 2 and blocks2.architecture["pool_size"] == 2
    assert blocks2.architecture["hidden"] == 10  # the normative section's value
    assert blocks2.training["n_epochs"] == 10 and blocks2.training["lr"] == 5e-4
    assert blocks2.changed == {"n_blocks": 2}
    assert blocks2.layers == ("conv", "pool", "conv2", "pool2", "fc", "out")
    assert [v.untrained for v in variants] == [True, False] * 3


def test_names_do_not_depend_on_the_order_of_the_config():
    shuffled = {"depth": {"seeds": [0, 1], "grid": {"n_epochs": [10, 0], "n_blocks": [3, 1, 2]},
                          "base": {"n_epochs": 10, "pool_size": 2}}}
    assert families.expand(config_with(shuffled)) == families.expand(config_with(DEPTH))
    two = {"b": {"grid": {"dropout": [0.5, 0.0]}}, "a": {"variants": [{"hidden": 20}, {}]}}
    reordered = {"a": {"variants": [{}, {"hidden": 20}]}, "b": {"grid": {"dropout": [0.0, 0.5]}}}
    assert names(config_with(two)) == names(config_with(reordered)) == [
        "a-base", "a-hidden20", "b-base", "b-dropout0.5"]


def test_only_the_families_that_run_are_expanded_but_all_are_checked():
    both = {"a": {"grid": {"hidden": [5, 10]}}, "b": {"grid": {"dropout": [0.5]}}}
    assert names(config_with(both, run_families=["b"])) == ["b-dropout0.5"]
    assert names(config_with(both, run_families=[])) == []
    both["a"]["grid"]["hidden"] = []
    with pytest.raises(ValueError, match=r"families\.a\.grid\.hidden"):
        families.expand(config_with(both, run_families=["b"]))
    with pytest.raises(ValueError, match=r"^config: run_families names \['c'\], not keys"):
        families.expand(config_with(both, run_families=["c"]))


def test_adding_a_variant_renames_nothing():
    before = set(names(config_with(DEPTH)))
    more = copy.deepcopy(DEPTH)
    more["depth"]["grid"]["n_blocks"].append(4)
    more["depth"]["variants"] = [{"weight_decay": 1e-3}, {"handmade_init": False, "l1": 1e-05}]
    after = set(names(config_with(more)))
    assert before < after
    assert after - before == {"depth-blocks4-epochs0", "depth-blocks4", "depth-l2_0.001",
                              "depth-random-l1_1e-05"}


def test_names_show_values_compactly_and_are_safe_in_paths():
    entry = {"f": {"variants": [{"batch_norm": True, "dropout": 0.25, "lr": 2.0,
                                 "handmade_init": False, "n_channels": 8, "kernel_size": 5},
                                {"batch_norm": False}]}}
    assert names(config_with(entry)) == ["f-base", "f-channels8-kernel5-random-bn-dropout0.25-lr2"]
    for name in names(config_with(DEPTH)) + names(config_with(entry)):
        assert re.fullmatch(r"[A-Za-z0-9_.+-]+", name) and "/" not in name
    assert families.format_value(5e-4) == "0.0005" and families.format_value(10.0) == "10"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"f": {"grid": {"n_layers": [1, 2]}}},
         r"^config: families\.f\.grid: unknown option 'n_layers' of the normative CNN"),
        ({"f": {"grid": {"n_blocks": []}}},
         r"^config: families\.f\.grid\.n_blocks: expected a non-empty list"),
        ({"f": {"grid": {}}}, r"^config: families\.f: no variants"),
        ({"f": {"base": {"pool_size": 2}, "grid": {"n_blocks": [1, 2]},
                "variants": [{"n_blocks": 2}]}},
         r"^config: families\.f\.variants\[0\]: variant 'blocks2' has the same settings as one "
         r"from config: families\.f\.grid"),
        ({"f": {"grid": {"n_epochs": [25, 0]}, "variants": [{}]}},
         r"^config: families\.f\.variants\[0\]: variant 'base' has the same settings"),
        ({"f": {"grid": {"n_blocks": [1, 2]}}},
         r"^config: families\.f\.grid: variant 'blocks2': 2 block\(s\) of pool_size 8 leave no "
         r"pixel of the 48 × 64 image after block 2"),
        ({"f": {"grid": {"n_channels": [6, 8]}}},
         r"^config: families\.f\.grid: variant 'channels8': handmade_init needs n_channels 6"),
        ({"f": {"grid": {"dropout": [0.5, 1.0]}}},
         r"^config: families\.f\.grid: dropout must be a number in \[0, 1\), got 1\.0"),
        ({"f": {"base": {"n_epochs": -1}, "grid": {"hidden": [5]}}},
         r"^config: families\.f\.base: n_epochs must be an integer ≥ 0"),
        ({"f": {"grid": {"kernel_size": [4]}, "base": {"handmade_init": False}}},
         r"kernel_size must be an odd positive integer"),
        ({"my-family": {"grid": {"hidden": [5]}}},
         r"^config: families\.my-family: a family's name"),
        ({"f": {"network": "resnet", "grid": {"hidden": [5]}}},
         r"^config: families\.f\.network: 'resnet' is neither 'normative' nor a network"),
    ],
)
def test_bad_families_are_refused_with_one_line_naming_the_key(entry, message):
    with pytest.raises(ValueError, match=message) as error:
        families.expand(config_with(entry))
    assert "\n" not in str(error.value)


CUSTOM = {"mine": {"factory": "my_networks:build", "kwargs": {"width": 8, "use_bn": False},
                   "weights": None, "layers": ["conv", "fc"], "seeds": [0]}}


def test_a_family_of_ones_own_network_varies_its_factorys_keyword_arguments():
    entry = {"own": {"network": "mine", "grid": {"width": [8, 16], "use_bn": [False, True]},
                     "variants": [{"n_epochs": 0, "channels": [4, 8]}]}}
    variants = families.expand(config_with(entry, custom_networks=CUSTOM))
    assert [v.name for v in variants] == [
        "epochs0-channels4x8", "base", "width16", "use_bn", "use_bn-width16"]
    assert variants[4].architecture == {"width": 16, "use_bn": True}
    assert variants[4].factory == "my_networks:build" and variants[4].layers == ("conv", "fc")
    assert variants[0].architecture == {"width": 8, "use_bn": False, "channels": [4, 8]}
    assert variants[0].training["n_epochs"] == 0

    built = []

    def build(factory, kwargs):
        built.append(kwargs)
        if kwargs["width"] == 16 and kwargs["use_bn"]:
            raise ValueError("factory failed: no such combination")
        return object()

    with pytest.raises(ValueError, match=r"^config: families\.own: variant 'use_bn-width16': "
                                         r"factory failed"):
        families.check_custom_variants(variants, build, lambda network, variant: None)
    bad_value = {"own": {"network": "mine", "grid": {"width": ["a/b"]}}}
    with pytest.raises(ValueError, match=r"families\.own\.grid: width must be .*file names"):
        families.expand(config_with(bad_value, custom_networks=CUSTOM))
    with_weights = copy.deepcopy(CUSTOM)
    with_weights["mine"]["weights"] = "mine.pt"
    with pytest.raises(ValueError, match=r"custom_networks\.mine has weights"):
        families.expand(config_with(entry, custom_networks=with_weights))


def test_expanding_families_imports_no_torch():
    """The workflow expands families while it builds the DAG, in every cluster job too."""
    code = ("import sys, yaml; from v1rsa import families; "
            f"config = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r})); "
            f"config['families'] = {DEPTH!r}; config['run_families'] = {list(DEPTH)!r}; "
            "families.expand(config); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": str(REPO / "workflow" / "src")})
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("script", ["rdm", "leaderboard", "plot_families"])
def test_jobs_that_need_no_torch_do_not_import_it(script):
    """Each family member has an RDM job, and the summaries read every member: a torch import
    would cost each of them a second of start-up."""
    import ast

    tree = ast.parse((REPO / "workflow" / "scripts" / f"{script}.py").read_text())
    imports = "\n".join(ast.unparse(node) for node in tree.body
                        if isinstance(node, (ast.Import, ast.ImportFrom)))
    code = f"import sys\n{imports}\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": str(REPO / "workflow" / "src")})
    assert result.stdout.strip() == "False"
