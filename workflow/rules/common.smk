# Config validation and the input functions every stage shares.
import ast
import json
import os
import re
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


# NumPy asks the kernel for transparent huge pages for every large array (madvise). Where the
# kernel then compacts memory before the first touch (THP defrag "madvise", a common default),
# a fresh array costs up to ~2 ms per MB: 0.6 s for one copy of the 0.33 GB training trials, ten
# times the copy itself (bench/README.md). Jobs inherit this environment; set the variable to 1
# before running Snakemake to keep NumPy's default.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


LIBRARY = Path(workflow.basedir) / "workflow" / "src" / "v1rsa"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def _v1rsa_imports(path):
    """The files of the v1rsa modules a Python file imports, subpackages (v1rsa.figures.x)
    included: a module also runs the __init__.py of each package above it."""
    modules = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "v1rsa" or node.module.startswith("v1rsa."):
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.startswith("v1rsa."))
    files = set()
    for module in modules:
        parts = module.split(".")[1:]
        for depth in range(1, len(parts) + 1):
            base = LIBRARY.joinpath(*parts[:depth])
            files.update(f for f in (base.with_suffix(".py"), base / "__init__.py") if f.exists())
    return files


def library(script):
    """The library files a rule's script runs: the v1rsa modules it imports, transitively.

    Rules list them as input, so that editing the library reruns exactly the stages whose code
    changed (and what depends on them), as editing the script itself does.
    """
    seen, todo = set(), list(_v1rsa_imports(SCRIPTS / f"{script}.py"))
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += _v1rsa_imports(path)
    # relative to the working directory, so that moving a finished project reruns nothing
    return sorted(os.path.relpath(path) for path in seen)


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


def encoder_threads():
    """Threads of the encoder's job, the longest of the run. On the CPU its results are the same
    bits on any number of threads (v1rsa.encoding), so locally, with 4 cores or more, it takes
    half of them, up to 4 (on 2 threads here the job took 21 s instead of 34 s); with fewer, one,
    so that it starts beside another job instead of waiting until every core is free; one when
    the config puts training on a GPU (cuda, mps). On a cluster, one when the job asks for a GPU
    (it trains there), else 4."""
    if workflow.non_local_exec or workflow.remote_exec:
        return 1 if gpu_request() else 4
    cores = workflow.resource_settings.cores or 1
    if config["device"] in ("cuda", "mps") or cores < 4:
        return 1
    return min(4, cores // 2)


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


# Networks of one's own (config: custom_networks): each is built by a factory named by its import
# path and has no training seed of its own: it is "seed0" unless its `seeds` say otherwise (the
# seed seeds torch before the factory runs, so a randomly initialised network is reproducible).
BUILT_IN_NETWORKS = ["normative", "encoder"]
CUSTOM_NETWORKS = config["custom_networks"]
#: networks whose files do not depend on the dataset (results/models/{network}/...)
SHARED_NETWORKS = ["normative", *CUSTOM_NETWORKS]


def _check_custom_networks():
    """Build every network of one's own and run one grating through the layers it is read at,
    before any job starts: a bad import path, a missing layer, weights that do not fit the
    architecture or an input the network cannot take stop the workflow here, naming the key.

    Snakemake runs this once, in its main process (not again in every cluster job)."""
    from v1rsa import activations

    for name, entry in CUSTOM_NETWORKS.items():
        key = f"config: custom_networks.{name}"
        if name in BUILT_IN_NETWORKS:
            raise ValueError(f"{key}: {name!r} is the name of a built-in network; choose another")
        rf_entry = entry.get("receptive_fields") or {}
        layers = list(dict.fromkeys([*entry["layers"], *rf_entry.get("layers", [])]))
        try:
            network = activations.build_network(
                entry["factory"], kwargs=entry["kwargs"], weights=entry["weights"],
                seed=entry["seeds"][0])
            n_units = activations.check_network(
                network, layers, **{k: v for k, v in grating_params(name).items()
                                    if k != "shift_deg"},
                input_adapter=input_adapter(name))
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
        for layer, indices in rf_entry.get("units", {}).items():
            if layer not in n_units or max(indices, default=0) >= n_units[layer]:
                raise ValueError(
                    f"{key}.receptive_fields.units: layer {layer!r} must be one of the "
                    f"receptive_fields layers {rf_entry.get('layers', [])} and its indices below "
                    f"its number of units ({n_units.get(layer)}), got {indices}")


def _factory_sources():
    """The source file of each custom network's factory module: an input of the network's
    rules, so that editing the network's code reruns them (found without running the module)."""
    from v1rsa.activations import factory_file

    sources = {}
    for name, entry in CUSTOM_NETWORKS.items():
        source = factory_file(entry["factory"])
        if source:
            inside = not os.path.relpath(source).startswith("..")
            sources[name] = os.path.relpath(source) if inside else source
    return sources


def network_folder(wildcards):
    """Where a trained network lives: the normative CNN is shared by all datasets."""
    if wildcards.network == "normative":
        return f"results/models/normative/seed{wildcards.seed}"
    return f"results/{wildcards.dataset}/models/{wildcards.network}/seed{wildcards.seed}"


def network_inputs(wildcards):
    """The files a network is rebuilt from: model.pt and metrics.json of a trained network; the
    weights file (when given) and the factory's source file of a network of one's own."""
    if wildcards.network in CUSTOM_NETWORKS:
        files = {}
        if CUSTOM_NETWORKS[wildcards.network]["weights"]:
            files["weights"] = CUSTOM_NETWORKS[wildcards.network]["weights"]
        if wildcards.network in FACTORY_SOURCES:
            files["factory_source"] = FACTORY_SOURCES[wildcards.network]
        return files
    folder = network_folder(wildcards)
    return {"model": f"{folder}/model.pt", "metrics": f"{folder}/metrics.json"}


def custom_network(network):
    """How to build a network of one's own: its factory and keyword arguments (None if built in)."""
    if network not in CUSTOM_NETWORKS:
        return None
    return select(CUSTOM_NETWORKS[network], "factory", "kwargs")


def network_layers(network):
    """The layers of a network whose activations are recorded."""
    if network in CUSTOM_NETWORKS:
        return CUSTOM_NETWORKS[network]["layers"]
    return config["activations"][network]["layers"]


def grating_params(network):
    """The gratings a network sees: its resolution, value offset and angle shift."""
    if network in CUSTOM_NETWORKS:
        entry = CUSTOM_NETWORKS[network]
        return {"sf": config["gratings"]["sf"], "res": entry["input"]["res"], "offset": 0.0,
                "shift_deg": entry["shift_deg"]}
    return {
        "sf": config["gratings"]["sf"],
        "res": config[network]["res"],
        "offset": 0.0 if network == "normative" else -0.5,
        "shift_deg": config["activations"][network]["shift_deg"],
    }


def input_adapter(network):
    """How a network of one's own takes a grating in {0, 1} (v1rsa.activations.adapt_images);
    None for the built-in networks, which take the gratings as they are."""
    if network not in CUSTOM_NETWORKS:
        return None
    return select(CUSTOM_NETWORKS[network]["input"], "value_range", "n_channels", "size", "mean",
                  "std")


def network_seeds(network):
    if network in CUSTOM_NETWORKS:
        return CUSTOM_NETWORKS[network]["seeds"]
    return config[network]["seeds"]


def network_names():
    """Every network as "{network}/seed{seed}", in a fixed order: built-in ones, then one's own."""
    return [f"{network}/seed{seed}" for network in NETWORKS for seed in network_seeds(network)]


def receptive_field_layers(network):
    """The layers and units of a network whose receptive fields are mapped (config
    receptive_fields.{normative,encoder}, or a network of one's own's receptive_fields), or None."""
    if network in CUSTOM_NETWORKS:
        entry = CUSTOM_NETWORKS[network].get("receptive_fields")
    else:
        entry = config["receptive_fields"][network]
    if not entry or not entry["layers"]:
        return None
    return {"layers": entry["layers"], "units": entry.get("units", {})}


def receptive_field_outputs():
    """Receptive-field maps, size table and figure of every network with layers to map: the
    shared networks once, the encoder per dataset in config['run']."""
    outputs = []
    for network in NETWORKS:
        if receptive_field_layers(network) is None:
            continue
        for seed in network_seeds(network):
            if network in SHARED_NETWORKS:
                outputs += [f"results/models/{network}/seed{seed}/receptive_fields.{suffix}"
                            for suffix in ("nc", "tsv")]
                outputs.append(f"results/figures/{network}/seed{seed}/receptive_fields.png")
            else:
                for dataset in config["run"]:
                    outputs += [
                        f"results/{dataset}/models/{network}/seed{seed}/receptive_fields.{suffix}"
                        for suffix in ("nc", "tsv")]
                    outputs.append(
                        f"results/{dataset}/figures/{network}/seed{seed}/receptive_fields.png")
    return outputs


if CUSTOM_NETWORKS and workflow.is_main_process:
    _check_custom_networks()
FACTORY_SOURCES = _factory_sources() if CUSTOM_NETWORKS else {}


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
    outputs += receptive_field_outputs()
    return outputs
