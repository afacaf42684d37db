# Layer activations of every network to one grating per selected V1 condition, and the
# receptive fields of network units mapped by occlusion with noise.

# Networks of one's own (config: custom_networks): each is built by a factory named by its import
# path and has no training seed of its own: it is "seed0" unless its `seeds` say otherwise (the
# seed seeds torch before the factory runs, so a randomly initialised network is reproducible).
BUILT_IN_NETWORKS = ["normative", "encoder"]
CUSTOM_NETWORKS = config["custom_networks"]
#: networks whose files do not depend on the dataset (results/models/{network}/...)
SHARED_NETWORKS = ["normative", *CUSTOM_NETWORKS]
#: built-in networks, then those of one's own, in config order
NETWORKS = [*BUILT_IN_NETWORKS, *CUSTOM_NETWORKS]


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


if CUSTOM_NETWORKS and workflow.is_main_process:
    _check_custom_networks()
FACTORY_SOURCES = _factory_sources() if CUSTOM_NETWORKS else {}


def network_files(dataset, kind):
    """The rdms/ or activations/ file of every network of network_names()."""
    return [f"results/{dataset}/{kind}/{name}.nc" for name in network_names()]


rule activations:
    input:
        unpack(network_inputs),
        conditions="results/{dataset}/conditions.nc",
        code=library("activations"),
    output:
        "results/{dataset}/activations/{network}/seed{seed}.nc",
    wildcard_constraints:
        network=one_of(NETWORKS),
    params:
        layers=lambda w: network_layers(w.network),
        grating=lambda w: grating_params(w.network),
        input_adapter=lambda w: input_adapter(w.network),
        custom=lambda w: custom_network(w.network),
        conditions=config["rdm"]["conditions"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    # on the way from the encoding model to the RSA, the pipeline's longest chain of jobs
    priority: 10
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
        gpu=gpu_request(),
    log:
        "logs/{dataset}/activations/{network}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/activations/{network}_seed{seed}.tsv"
    script:
        "../scripts/activations.py"


def receptive_field_figure(folder, network="{network}"):
    """The receptive-field figure's PNG (flagged for the report) and its vector copy."""
    return {
        "figure": report(
            f"{folder}/receptive_fields.png",
            caption="../report/receptive_fields.rst",
            category="Receptive fields",
            subcategory=network,
            labels={"network": network, "seed": "{seed}", "figure": "discrepancy maps"},
        ),
        "figure_vector": f"{folder}/receptive_fields.{config['figures']['vector_format']}",
    }


rule receptive_fields:
    input:
        unpack(network_inputs),
        code=library("receptive_fields"),
    output:
        fields="results/models/{network}/seed{seed}/receptive_fields.nc",
        table="results/models/{network}/seed{seed}/receptive_fields.tsv",
        **receptive_field_figure("results/figures/{network}/seed{seed}"),
    wildcard_constraints:
        network=one_of(SHARED_NETWORKS),
    params:
        mapped=lambda w: receptive_field_layers(w.network),
        grating=lambda w: grating_params(w.network),
        input_adapter=lambda w: input_adapter(w.network),
        custom=lambda w: custom_network(w.network),
        mapping=select(config["receptive_fields"], "n_gratings", "patch_size", "stride", "noise",
                       "n_draws", "threshold", "seed", "batch_size"),
        title=lambda w: f"{w.network} (seed {w.seed}): receptive fields",
        n_units=config["figures"]["n_units"],
        dpi=config["figures"]["dpi"],
        note=config["figures"]["note"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=gpu_request(),
    log:
        "logs/models/{network}/seed{seed}_receptive_fields.log",
    benchmark:
        "benchmarks/models/{network}/seed{seed}_receptive_fields.tsv"
    script:
        "../scripts/receptive_fields.py"


# The encoding model is trained per dataset: its maps are too.
use rule receptive_fields as receptive_fields_encoder with:
    output:
        fields="results/{dataset}/models/{network}/seed{seed}/receptive_fields.nc",
        table="results/{dataset}/models/{network}/seed{seed}/receptive_fields.tsv",
        **receptive_field_figure("results/{dataset}/figures/{network}/seed{seed}"),
    wildcard_constraints:
        network="encoder",
    log:
        "logs/{dataset}/models/{network}/seed{seed}_receptive_fields.log",
    benchmark:
        "benchmarks/{dataset}/models/{network}/seed{seed}_receptive_fields.tsv"
