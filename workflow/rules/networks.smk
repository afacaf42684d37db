# Every network of the workflow: the trained ones' settings (decoders, normative CNN), and the
# registry of the networks compared with V1 (built-in, one's own and families of networks), with
# the input functions of their rules (models.smk, activations.smk).

from v1rsa.families import expand as expand_families

#: the variants of the families that run, by network name (v1rsa.families), checked here
FAMILY_VARIANTS = {variant.network: variant for variant in expand_families(config)}

DECODERS = ["mlp", "classifier", "circular"]
TILT_SETS = ["tilt_train", "tilt_validation", "tilt_test"]
#: networks trained on the tilt task, shared by all datasets: the normative CNN and every member
#: of a family ({family}-{variant}, v1rsa.families)
TILT_NETWORKS = ["normative", *FAMILY_VARIANTS]


def normative_architecture(network="normative"):
    """TiltCNN keyword arguments of the normative CNN or of a family member."""
    if network in FAMILY_VARIANTS:
        return FAMILY_VARIANTS[network].architecture
    return select(
        config["normative"],
        "n_blocks",
        "n_channels",
        "kernel_size",
        "pool_size",
        "hidden",
        "handmade_init",
        "dropout",
        "batch_norm",
    )


def normative_training(network="normative"):
    """Training settings of the normative CNN or of a family member on the tilt task."""
    if network in FAMILY_VARIANTS:
        return FAMILY_VARIANTS[network].training
    return select(
        config["normative"], "lr", "momentum", "batch_size", "n_epochs", "weight_decay", "l1"
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
#: built-in networks, then those of one's own, in config order: each gets its own figures
NETWORKS = [*BUILT_IN_NETWORKS, *CUSTOM_NETWORKS]
#: the members of families ({family}-{variant}), trained on the tilt task like the normative CNN
#: and shared by all datasets; compared with V1 like the others, summarised in one leaderboard
#: and one set of figures per dataset instead of figures of their own
FAMILY_NETWORKS = list(FAMILY_VARIANTS)


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
    """Where a trained network lives: those trained on the tilt task are shared by all
    datasets."""
    if wildcards.network in TILT_NETWORKS:
        return f"results/models/{wildcards.network}/seed{wildcards.seed}"
    return f"results/{wildcards.dataset}/models/{wildcards.network}/seed{wildcards.seed}"


def network_inputs(wildcards):
    """The files a network is rebuilt from: model.pt and metrics.json of a trained network (a
    family member of a network of one's own: its trained weights); the weights file (when
    given) and the factory's source file of a network of one's own."""
    variant = FAMILY_VARIANTS.get(wildcards.network)
    if variant and variant.factory:
        folder = network_folder(wildcards)
        files = {"weights": f"{folder}/model.pt", "metrics": f"{folder}/metrics.json"}
        if variant.base in FACTORY_SOURCES:
            files["factory_source"] = FACTORY_SOURCES[variant.base]
        return files
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
    """How to build a network of one's own: its factory and keyword arguments (a family
    member's: the variant's), or None for the project's own networks."""
    variant = FAMILY_VARIANTS.get(network)
    if variant:
        return (
            {"factory": variant.factory, "kwargs": variant.architecture}
            if variant.factory
            else None
        )
    if network not in CUSTOM_NETWORKS:
        return None
    return select(CUSTOM_NETWORKS[network], "factory", "kwargs")


def network_kind(network):
    """How a trained network is rebuilt (v1rsa.activations.NETWORK_BUILDERS): a family member
    of the normative CNN as the normative CNN."""
    variant = FAMILY_VARIANTS.get(network)
    return variant.base if variant else network


def network_layers(network):
    """The layers of a network whose activations are recorded."""
    if network in FAMILY_VARIANTS:
        return list(FAMILY_VARIANTS[network].layers)
    if network in CUSTOM_NETWORKS:
        return CUSTOM_NETWORKS[network]["layers"]
    return config["activations"][network]["layers"]


def grating_params(network):
    """The gratings a network sees: its resolution, value offset and angle shift (a family
    member's: its base network's)."""
    network = network_kind(network)
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
    network = network_kind(network)
    if network not in CUSTOM_NETWORKS:
        return None
    return select(
        CUSTOM_NETWORKS[network]["input"], "value_range", "n_channels", "size", "mean", "std"
    )


def network_seeds(network):
    if network in FAMILY_VARIANTS:
        return list(FAMILY_VARIANTS[network].seeds)
    if network in CUSTOM_NETWORKS:
        return CUSTOM_NETWORKS[network]["seeds"]
    return config[network]["seeds"]


def network_names(networks=None):
    """Every network as "{network}/seed{seed}", in a fixed order: built-in ones, one's own, then
    family members (by family, then by their settings); or those of ``networks``."""
    networks = [*NETWORKS, *FAMILY_NETWORKS] if networks is None else networks
    return [f"{network}/seed{seed}" for network in networks for seed in network_seeds(network)]


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


def _check_family_networks():
    """Build each variant of a family of a network of one's own, run a grating through its
    layers and check that it returns one logit per grating (it is trained on the tilt task),
    before any job starts."""
    import torch

    from v1rsa import activations, normative
    from v1rsa.families import check_custom_variants

    def check(network, variant):
        grating = {k: v for k, v in grating_params(variant.network).items() if k != "shift_deg"}
        adapter = input_adapter(variant.network)
        activations.check_network(network, list(variant.layers), **grating, input_adapter=adapter)
        images = activations.grating_images([0.0, 30.0], **grating)
        with torch.no_grad():
            normative.tilt_logits(
                network.eval(),
                (
                    activations.adapt_images(images, **adapter)
                    if adapter
                    else torch.as_tensor(images)[:, None]
                ),
            )

    check_custom_variants(
        list(FAMILY_VARIANTS.values()),
        lambda factory, kwargs: activations.build_network(factory, kwargs=kwargs),
        check,
    )


if CUSTOM_NETWORKS and workflow.is_main_process:
    _check_custom_networks()
    _check_family_networks()
FACTORY_SOURCES = _factory_sources() if CUSTOM_NETWORKS else {}


def network_files(dataset, kind):
    """The rdms/ or activations/ file of every network of network_names()."""
    return [f"results/{dataset}/{kind}/{name}.nc" for name in network_names()]


def tilt_metrics():
    """The names ("{network}/seed{seed}") and metrics.json of the networks trained on the tilt
    task: their held-out accuracy goes in the leaderboard."""
    names = network_names(TILT_NETWORKS)
    return names, [f"results/models/{name}/metrics.json" for name in names]


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
