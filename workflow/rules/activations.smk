# Layer activations of every trained network to one grating per selected V1 condition.

NETWORKS = ["normative", "encoder"]


rule activations:
    input:
        conditions="results/{dataset}/conditions.nc",
        model=lambda w: network_folder(w) + "/model.pt",
        metrics=lambda w: network_folder(w) + "/metrics.json",
        code=library("activations"),
    output:
        "results/{dataset}/activations/{network}/seed{seed}.nc",
    wildcard_constraints:
        network="|".join(NETWORKS),
    params:
        layers=lambda w: config["activations"][w.network]["layers"],
        grating=lambda w: grating_params(w.network),
        conditions=config["rdm"]["conditions"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    threads: 2
    resources:
        mem_mb=2000,
        runtime=15,
        gpu=gpu_request(),
    log:
        "logs/{dataset}/activations/{network}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/activations/{network}_seed{seed}.tsv"
    script:
        "../scripts/activations.py"
