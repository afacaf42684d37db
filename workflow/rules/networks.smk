# Every network of the workflow: the trained ones' settings (decoders, normative CNN), and the
# registry of the networks compared with V1 (built-in and one's own), with the input functions
# of their rules (models.smk, activations.smk).

DECODERS = ["mlp", "classifier", "circular"]
TILT_SETS = ["tilt_train", "tilt_validation", "tilt_test"]


def normative_architecture():
    return select(
        config["normative"],
        "n_channels",
        "kernel_size",
        "pool_size",
        "hidden",
        "handmade_init",
        "dropout",
        "batch_norm",
    )


def decoder_settings(name, data):
    """A torch decoder's architecture and training settings; single trials use minibatches."""
    settings = {k: v for k, v in config["decoders"][name].items() if k != "seeds"}
    if data == "trials":
        settings.update(config["decoders"]["trials"])
    return settings


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
                entry["factory"],
                kwargs=entry["kwargs"],
                weights=entry["weights"],
                seed=entry["seeds"][0],
            )
            n_units = activations.check_network(
                network,
                layers,
                **{k: v for k, v in grating_params(name).items() if k != "shift_deg"},
                input_adapter=input_adapter(name),
            )
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
        for layer, indices in rf_entry.get("units", {}).items():
            if layer not in n_units or max(indices, default=0) >= n_units[layer]:
                raise ValueError(
                    f"{key}.receptive_fields.units: layer {layer!r} must be one of the "
                    f"receptive_fields layers {rf_entry.get('layers', [])} and its indices below "
                    f"its number of units ({n_units.get(layer)}), got {indices}"
                )


def _factory_sources():
    """The source file of each custom network's factory module: an input of the network's
    rules, so that editing the network's code reruns them (found without running the module).
    """
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
    weights file (when given) and the factory's source file of a network of one's own.
    """
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
        return {
            "sf": config["gratings"]["sf"],
            "res": entry["input"]["res"],
            "offset": 0.0,
            "shift_deg": entry["shift_deg"],
        }
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
    return select(
        CUSTOM_NETWORKS[network]["input"],
        "value_range",
        "n_channels",
        "size",
        "mean",
        "std",
    )


def network_seeds(network):
    if network in CUSTOM_NETWORKS:
        return CUSTOM_NETWORKS[network]["seeds"]
    return config[network]["seeds"]


def network_names():
    """Every network as "{network}/seed{seed}", in a fixed order: built-in ones, then one's own."""
    return [f"{network}/seed{seed}" for network in NETWORKS for seed in network_seeds(network)]


def receptive_field_layers(network):
    """The layers and units of a network whose receptive fields are mapped (config
    receptive_fields.{normative,encoder}, or a network of one's own's receptive_fields), or None.
    """
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
