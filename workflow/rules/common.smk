# Config validation and the input functions every stage shares.
import ast
import json
import os
import re
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


LIBRARY = Path(workflow.basedir) / "workflow" / "src" / "v1rsa"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def _v1rsa_imports(path):
    """Names of the v1rsa modules a Python file imports."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "v1rsa":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("v1rsa."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("v1rsa."))
    return {name for name in names if (LIBRARY / f"{name}.py").exists()}


def library(script):
    """The library files a rule's script runs: the v1rsa modules it imports, transitively.

    Rules list them as input, so that editing the library reruns exactly the stages whose code
    changed (and what depends on them), as editing the script itself does.
    """
    seen, todo = set(), list(_v1rsa_imports(SCRIPTS / f"{script}.py"))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _v1rsa_imports(LIBRARY / f"{name}.py")
    # relative to the working directory, so that moving a finished project reruns nothing
    return sorted(os.path.relpath(LIBRARY / f"{name}.py") for name in seen)


def _datasets_with(source):
    return [name for name, entry in config["datasets"].items() if entry["source"] == source]


SIMULATED = _datasets_with("simulate")
DOWNLOADED = _datasets_with("download")
LOCAL = _datasets_with("local")

for _name in config["run"]:
    if _name not in config["datasets"]:
        raise ValueError(
            f"config: run names dataset {_name!r}, which is not a key of datasets "
            f"(known: {sorted(config['datasets'])})"
        )


def _alternation(names):
    """A wildcard constraint that matches exactly these names (and nothing when empty)."""
    return "|".join(map(re.escape, names)) if names else "(?!x)x"


def dataset_entry(dataset):
    return config["datasets"][dataset]


def raw_suffix(dataset):
    return "npy" if dataset_entry(dataset)["layout"] == "raw" else "npz"


def raw_path(wildcards):
    """The raw file of a dataset, as published or simulated: resources/{dataset}/raw.{npy,npz}."""
    return f"resources/{wildcards.dataset}/raw.{raw_suffix(wildcards.dataset)}"


def raw_source(dataset):
    """A short description of where a dataset's raw file comes from (stored in attrs)."""
    entry = dataset_entry(dataset)
    if entry["source"] == "simulate":
        return "simulate " + json.dumps(entry.get("simulate", {}), sort_keys=True)
    if entry["source"] == "download":
        return f"download {entry['url']}"
    return f"local {entry['path']}"


def select(section, *keys):
    """The named keys of a config section, as a dict (the params of a stage)."""
    return {key: section[key] for key in keys}


def gpu_request():
    """GPUs a training or extraction job asks for: none when the config forces the CPU."""
    return 0 if config["device"] in ("cpu", "mps") else 1


def normative_architecture():
    return select(
        config["normative"],
        "n_channels", "kernel_size", "pool_size", "hidden", "handmade_init", "dropout", "batch_norm",
    )


def decoder_settings(name, data):
    """A torch decoder's architecture and training settings; single trials use minibatches."""
    settings = {k: v for k, v in config["decoders"][name].items() if k != "seeds"}
    if data == "trials":
        settings.update(config["decoders"]["trials"])
    return settings


def decoder_outputs(dataset):
    """Metrics of every decoder on every data kind, and the ridge scaling table."""
    decoders = config["decoders"]
    outputs = [f"results/{dataset}/models/decoder_ridge/scaling.tsv"]
    for data in decoders["data"]:
        outputs.append(f"results/{dataset}/models/decoder_ridge/{data}/metrics.json")
        for name in DECODERS:
            outputs += expand(
                "results/{dataset}/models/decoder_{name}/{data}/seed{seed}/metrics.json",
                dataset=dataset, name=name, data=data, seed=decoders[name]["seeds"],
            )
    return outputs


def network_folder(wildcards):
    """Where a trained network lives: the normative CNN is shared by all datasets."""
    if wildcards.network == "normative":
        return f"results/models/normative/seed{wildcards.seed}"
    return f"results/{wildcards.dataset}/models/{wildcards.network}/seed{wildcards.seed}"


def grating_params(network):
    """The gratings a network sees: its resolution, value offset and angle shift."""
    return {
        "sf": config["gratings"]["sf"],
        "res": config[network]["res"],
        "offset": 0.0 if network == "normative" else -0.5,
        "shift_deg": config["activations"][network]["shift_deg"],
    }


def network_seeds(network):
    return config[network]["seeds"]


def network_names():
    """Every trained network as "{network}/seed{seed}", in a fixed order."""
    return [f"{network}/seed{seed}" for network in NETWORKS for seed in network_seeds(network)]


def network_files(dataset, kind):
    """The rdms/ or activations/ file of every network of network_names()."""
    return [f"results/{dataset}/{kind}/{name}.nc" for name in network_names()]


def final_outputs():
    """Every final output of every stage, for each dataset in config['run']."""
    outputs = expand("results/models/normative/seed{seed}/metrics.json",
                     seed=config["normative"]["seeds"])
    for dataset in config["run"]:
        outputs += [f"results/{dataset}/trials.nc", f"results/{dataset}/conditions.nc"]
        outputs += expand("results/{dataset}/models/encoder/seed{seed}/metrics.json",
                          dataset=dataset, seed=config["encoder"]["seeds"])
        outputs += decoder_outputs(dataset)
        outputs.append(f"results/{dataset}/rsa/rsa.tsv")
        outputs += figure_outputs(dataset)
    return outputs
