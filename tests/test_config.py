"""The default config, the smoke config and the schema agree; bad configs stop clearly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, copy_workflow, snakemake

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merged(base: dict, override: dict) -> dict:
    """Snakemake's merge of a --configfile over the Snakefile's configfile (key by key)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def schema_paths(schema: dict, prefix: tuple = (), root: dict | None = None) -> set[tuple]:
    """Every fixed key path the schema names under `properties` (not pattern-keyed maps)."""
    root = root or schema
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + (key,))
        paths |= schema_paths(sub, prefix + (key,), root)
    return paths


def config_paths(config: dict, prefix: tuple = ()) -> set[tuple]:
    paths = set()
    for key, value in config.items():
        paths.add(prefix + (key,))
        if isinstance(value, dict) and key not in ("datasets", "families"):
            paths |= config_paths(value, prefix + (key,))
    return paths


def undescribed_properties(node, root: dict, where: str = "") -> list[str]:
    """Paths of the schema's properties, at any depth, that have no non-empty `description`
    (a property that is only a `$ref` may take its definition's; an `if` states a condition on
    keys described elsewhere)."""
    missing = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            missing += undescribed_properties(item, root, f"{where}[{index}]")
        return missing
    if not isinstance(node, dict):
        return missing
    for name, sub in node.get("properties", {}).items():
        described = sub
        if "description" not in sub and "$ref" in sub:
            described = root["$defs"][sub["$ref"].removeprefix("#/$defs/")]
        text = described.get("description")
        if not (isinstance(text, str) and text.strip()):
            missing.append(f"{where}.{name}".lstrip("."))
    for key, sub in node.items():
        if key not in ("description", "if"):
            missing += undescribed_properties(sub, root, f"{where}.{key}" if key != "properties"
                                              else where)
    return missing


def test_every_schema_property_has_a_description():
    """The schema documents every key (the Snakemake catalog renders these descriptions)."""
    schema = load_yaml(SCHEMA)
    assert undescribed_properties(schema, schema) == []


def test_undescribed_properties_finds_a_missing_description():
    schema = {"$defs": {"seed": {"type": "integer"}},
              "properties": {"a": {"description": "ok", "properties": {"b": {"type": "number"}}},
                             "c": {"$ref": "#/$defs/seed"},
                             "d": {"description": "ok",
                                   "oneOf": [{"properties": {"e": {"description": " "}}}]}}}
    assert sorted(undescribed_properties(schema, schema)) == ["a.b", "c", "d.oneOf[0].e"]


def test_default_config_is_valid():
    validate(load_yaml(REPO / "config" / "config.yaml"), str(SCHEMA))


def test_smoke_config_is_valid_over_the_default():
    default = load_yaml(REPO / "config" / "config.yaml")
    config = merged(default, load_yaml(REPO / "config" / "smoke.yaml"))
    validate(config, str(SCHEMA))


def test_every_schema_key_is_in_the_default_config():
    """The default config documents every knob the schema knows (and nothing else)."""
    schema = load_yaml(SCHEMA)
    config = load_yaml(REPO / "config" / "config.yaml")
    assert schema_paths(schema) == config_paths(config)


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ({"binning": {"n_folds": "two"}}, ["n_folds", "integer"]),
        ({"binning": {"bin_width": 1}}, ["bin_width"]),
        ({"device": "gpu"}, ["device"]),
        ({"datasets": {"x": {"source": "download", "layout": "raw", "url": "not a url"}}}, ["url"]),
    ],
)
def test_schema_rejects_bad_values(override, names):
    config = merged(load_yaml(REPO / "config" / "config.yaml"), override)
    with pytest.raises(WorkflowError) as err:
        validate(config, str(SCHEMA))
    for name in names:
        assert name in str(err.value)


def test_snakemake_stops_on_a_wrong_type_naming_the_key(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text("preprocess:\n  test_every: four\n")
    result = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "test_every" in result.stdout + result.stderr


def test_snakemake_stops_on_an_unknown_dataset_in_run(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text("run: [nope]\n")
    result = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "nope" in result.stdout + result.stderr


def test_the_families_config_is_valid_and_sweeps_24_variants_of_3_seeds():
    from v1rsa import families

    default = load_yaml(REPO / "config" / "config.yaml")
    sweep = load_yaml(REPO / "config" / "families.yaml")
    # a family named like a default one would inherit the keys it does not set
    assert not set(sweep["families"]) & set(default["families"])
    config = merged(default, sweep)
    validate(config, str(SCHEMA))
    variants = families.expand(config)
    assert len(variants) >= 24 and all(len(v.seeds) >= 3 for v in variants)
    assert {v.family for v in variants if v.untrained} == {"depth", "regularisers", "filters"}
    depth = [v for v in variants if v.family == "depth"]
    assert {v.training["n_epochs"] for v in depth} == {0, 8} and len(depth[0].layers) >= 4


def test_a_misspelt_key_stops_the_workflow_with_one_line_naming_it(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text("binnig:\n  bin_width_deg: 6\nnormative:\n  lr: .nan\n")
    result = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("config: "))
    assert lines[first:first + 2] == ["config: binnig: unknown key; did you mean 'binning'?",
                                      "config: normative.lr: nan is not a finite number"]
    assert len(lines) < 20  # not the schema validator's dump of the whole config


def test_what_the_schema_cannot_check_stops_the_workflow_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text(
        "run: [mine]\n"
        "datasets:\n"
        "  mine: {source: local, layout: raw, path: data/absent.npy}\n"
        "binning: {bin_width_deg: 7}\n"
    )
    result = snakemake(workdir, "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config: datasets.mine.path: 'data/absent.npy' does not exist" in output
    assert "config: binning.bin_width_deg: 7 does not divide 360" in output
    assert not any((workdir / name).exists() for name in ("results", "resources", "logs"))
