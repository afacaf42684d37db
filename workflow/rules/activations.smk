# Layer activations of every network to one grating per selected V1 condition, and the
# receptive fields of network units mapped by occlusion with noise.
# The networks (built-in and one's own) and their inputs are in networks.smk.


rule activations:
    input:
        unpack(network_inputs),
        conditions="results/{dataset}/conditions.nc",
        code=library("activations"),
    output:
        "results/{dataset}/activations/{network}/seed{seed}.nc",
    wildcard_constraints:
        network=one_of(NETWORKS + FAMILY_NETWORKS),
    params:
        kind=lambda w: network_kind(w.network),
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


rule receptive_fields:
    input:
        unpack(network_inputs),
        code=library("receptive_fields"),
    output:
        **receptive_field_figure("results/figures/{network}/seed{seed}"),
        fields="results/models/{network}/seed{seed}/receptive_fields.nc",
        table="results/models/{network}/seed{seed}/receptive_fields.tsv",
    wildcard_constraints:
        network=one_of(SHARED_NETWORKS),
    params:
        mapped=lambda w: receptive_field_layers(w.network),
        grating=lambda w: grating_params(w.network),
        input_adapter=lambda w: input_adapter(w.network),
        custom=lambda w: custom_network(w.network),
        mapping=select(
            config["receptive_fields"],
            "n_gratings",
            "patch_size",
            "stride",
            "noise",
            "n_draws",
            "threshold",
            "seed",
            "batch_size",
        ),
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
        **receptive_field_figure("results/{dataset}/figures/{network}/seed{seed}"),
        fields="results/{dataset}/models/{network}/seed{seed}/receptive_fields.nc",
        table="results/{dataset}/models/{network}/seed{seed}/receptive_fields.tsv",
    wildcard_constraints:
        network="encoder",
    log:
        "logs/{dataset}/models/{network}/seed{seed}_receptive_fields.log",
    benchmark:
        "benchmarks/{dataset}/models/{network}/seed{seed}_receptive_fields.tsv"
