# The figures of each plot rule: names, captions, report labels and output files (figures.smk,
# targets.smk).

FIGURES = config["figures"]
VECTOR_FORMAT = FIGURES["vector_format"]
NETWORK_TITLES = {"normative": "normative network", "encoder": "encoding model"}


def figure_files(folder, figures, category, subcategory, **labels):
    """Outputs of a plot rule: for each figure ``name: (caption, description)``, its PNG
    ``{folder}/{name}.png`` flagged for the report, and its vector copy as ``{name}_vector``.
    """
    files = {}
    for name, (caption, description) in figures.items():
        files[name] = report(
            f"{folder}/{name}.png",
            caption=f"../report/{caption}.rst",
            category=category,
            subcategory=subcategory,
            labels={**labels, "figure": description},
        )
        files[f"{name}_vector"] = f"{folder}/{name}.{VECTOR_FORMAT}"
    return files


DATA_FIGURES = {
    "raster": ("data_raster", "response raster"),
    "tuning": ("data_tuning", "tuning curves"),
}
DECODER_FIGURES = {
    "predictions": ("decoders_predictions", "decoded vs true"),
    "training": ("decoders_training", "loss curves"),
    "weights": ("decoders_weights", "first-layer weights"),
}
SCALING_FIGURES = {"scaling": ("decoders_scaling", "error vs neurons and trials")}
NORMATIVE_FIGURES = {
    "filters": ("normative_filters", "filters"),
    "training": ("normative_training", "loss and accuracy"),
}
ENCODER_FIGURES = {
    "tuning": ("encoder_tuning", "predicted vs measured"),
    "scores": ("encoder_scores", "R² distribution"),
}
REPRESENTATION_FIGURES = {
    "tuning": ("representations_tuning", "unit tuning"),
    "tsne": ("representations_tsne", "t-SNE"),
}
RDM_FIGURES = {"matrices": ("rdms_matrices", "RDMs"), "rows": ("rdms_rows", "RDM rows")}
RSA_FIGURES = {
    "rsa": ("rsa_figure", "similarity to V1"),
    "comparison": ("rsa_comparison", "model comparison"),
}
GROUP_FIGURES = {"rsa": ("rsa_group_figure", "group: similarity to V1")}
FAMILY_FIGURES = {
    "accuracy": ("families_accuracy", "task accuracy vs similarity to V1"),
    "depth": ("families_depth", "similarity vs layer depth"),
    "layers": ("families_layers", "variants x layers"),
}


def _files(folder, figures):
    return [f"{folder}/{name}.{suffix}" for name in figures for suffix in ("png", VECTOR_FORMAT)]


def decoder_files(wildcards, filename):
    """A file of each course decoder on one data kind, from the first seed in its config."""
    return [
        f"results/{wildcards.dataset}/models/decoder_{name}/{wildcards.data}/"
        f"seed{config['decoders'][name]['seeds'][0]}/{filename}"
        for name in DECODERS
    ]


def network_title(wildcards):
    return f"{NETWORK_TITLES.get(wildcards.network, wildcards.network)} (seed {wildcards.seed})"
