# Layer activations of every network to one grating per selected V1 condition, and the
# receptive fields of network units mapped by occlusion with noise.

# built-in networks, then those of one's own (config: custom_networks), in config order
NETWORKS = [*BUILT_IN_NETWORKS, *CUSTOM_NETWORKS]


rule activations:
    input:
        unpack(network_inputs),
        conditions="results/{dataset}/conditions.nc",
        code=library("activations"),
    output:
        "results/{dataset}/activations/{network}/seed{seed}.nc",
    wildcard_constraints:
        network="|".join(NETWORKS),
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
        network=_alternation(SHARED_NETWORKS),
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
