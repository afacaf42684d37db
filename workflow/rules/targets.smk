# The final outputs of a run, the inputs of the default target (all): every stage's results and figures for each dataset
# in config['run'], and the networks shared by all datasets.


def decoder_outputs(dataset):
    """Metrics of every decoder on every data kind, and the ridge scaling table."""
    decoders = config["decoders"]
    outputs = [f"results/{dataset}/models/decoder_ridge/scaling.tsv"]
    for data in decoders["data"]:
        outputs.append(f"results/{dataset}/models/decoder_ridge/{data}/metrics.json")
        for name in DECODERS:
            outputs += expand(
                "results/{dataset}/models/decoder_{name}/{data}/seed{seed}/metrics.json",
                dataset=dataset,
                name=name,
                data=data,
                seed=decoders[name]["seeds"],
            )
    return outputs


def figure_outputs(dataset):
    """Every figure (PNG and vector copy) of a dataset, and those of the normative CNN."""
    folder = f"results/{dataset}/figures"
    outputs = _files(f"{folder}/data", DATA_FIGURES)
    for data in config["decoders"]["data"]:
        outputs += _files(f"{folder}/decoders/{data}", DECODER_FIGURES)
    outputs += _files(f"{folder}/decoders", SCALING_FIGURES)
    for seed in config["encoder"]["seeds"]:
        outputs += _files(f"{folder}/encoder/seed{seed}", ENCODER_FIGURES)
    for seed in config["normative"]["seeds"]:
        outputs += _files(f"results/figures/normative/seed{seed}", NORMATIVE_FIGURES)
    for name in network_names(NETWORKS):
        outputs += _files(f"{folder}/representations/{name}", REPRESENTATION_FIGURES)
        outputs += _files(f"{folder}/rdms/{name}", RDM_FIGURES)
    outputs += _files(f"{folder}/rsa", RSA_FIGURES)
    if FAMILY_VARIANTS:
        outputs += _files(f"{folder}/families", FAMILY_FIGURES)
    return outputs


def receptive_field_outputs():
    """Receptive-field maps, size table and figure of every network with layers to map: the
    shared networks once, the encoder per dataset in config['run']."""
    outputs = []
    for network in NETWORKS:
        if receptive_field_layers(network) is None:
            continue
        for seed in network_seeds(network):
            if network in SHARED_NETWORKS:
                outputs += [
                    f"results/models/{network}/seed{seed}/receptive_fields.{suffix}"
                    for suffix in ("nc", "tsv")
                ]
                outputs.append(f"results/figures/{network}/seed{seed}/receptive_fields.png")
            else:
                for dataset in config["run"]:
                    outputs += [
                        f"results/{dataset}/models/{network}/seed{seed}/receptive_fields.{suffix}"
                        for suffix in ("nc", "tsv")
                    ]
                    outputs.append(
                        f"results/{dataset}/figures/{network}/seed{seed}/receptive_fields.png"
                    )
    return outputs


def group_outputs():
    """Tables and figure of every group of recordings (config: groups)."""
    outputs = []
    for group in RECORDING_GROUPS:
        folder = f"results/groups/{group}"
        outputs += [f"{folder}/{name}.tsv" for name in ("rsa", "pairwise", "recordings")]
        outputs += _files(f"{folder}/figures", GROUP_FIGURES)
    return outputs


def final_outputs():
    """Every final output of every stage, for each dataset in config['run'], and of every group
    of recordings."""
    outputs = expand(
        "results/models/normative/seed{seed}/metrics.json",
        seed=config["normative"]["seeds"],
    )
    for dataset in config["run"]:
        outputs += [f"results/{dataset}/trials.nc", f"results/{dataset}/conditions.nc"]
        outputs += expand(
            "results/{dataset}/models/encoder/seed{seed}/metrics.json",
            dataset=dataset,
            seed=config["encoder"]["seeds"],
        )
        outputs += decoder_outputs(dataset)
        outputs += [
            f"results/{dataset}/rsa/{table}"
            for table in ("rsa.tsv", "rsa.html", "cka.html", "pairwise.tsv", "leaderboard.tsv")
        ]
        outputs += figure_outputs(dataset)
    outputs += receptive_field_outputs()
    outputs += group_outputs()
    return outputs
