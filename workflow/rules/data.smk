# Raw data (simulate, download or link a local file) and the zscore stage.


rule simulate:
    input:
        code=library("simulate"),
    output:
        raw="resources/{dataset}/raw.npy",
        truth="resources/{dataset}/ground_truth.nc",
    wildcard_constraints:
        dataset=_alternation(SIMULATED),
    params:
        simulate=lambda w: dataset_entry(w.dataset)["simulate"],
    log:
        "logs/{dataset}/simulate.log",
    benchmark:
        "benchmarks/{dataset}/simulate.tsv"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
    script:
        "../scripts/simulate.py"


rule download:
    # No library input: editing the code must not re-fetch a verified 1 GB file.
    output:
        raw="resources/{dataset}/raw.{suffix}",
        sha256="resources/{dataset}/raw.{suffix}.sha256",
    wildcard_constraints:
        dataset=_alternation(DOWNLOADED),
        suffix="npy|npz",
    params:
        url=lambda w: dataset_entry(w.dataset)["url"],
        known_hash=lambda w: dataset_entry(w.dataset).get("known_hash"),
        retries=config["download"]["retries"],
    log:
        "logs/{dataset}/download_{suffix}.log",
    benchmark:
        "benchmarks/{dataset}/download_{suffix}.tsv"
    resources:
        runtime=lambda wildcards, attempt: 60 * attempt,
    retries: 1
    script:
        "../scripts/download.py"


rule link_local:
    output:
        raw="resources/{dataset}/raw.{suffix}",
        sha256="resources/{dataset}/raw.{suffix}.sha256",
    wildcard_constraints:
        dataset=_alternation(LOCAL),
        suffix="npy|npz",
    params:
        path=lambda w: dataset_entry(w.dataset)["path"],
        known_hash=lambda w: dataset_entry(w.dataset).get("known_hash"),
    log:
        "logs/{dataset}/link_local_{suffix}.log",
    localrule: True
    script:
        "../scripts/link_local.py"


rule zscore:
    input:
        raw=raw_path,
        code=library("zscore"),
    output:
        trials="results/{dataset}/trials.nc",
        conditions="results/{dataset}/conditions.nc",
    params:
        layout=lambda w: dataset_entry(w.dataset)["layout"],
        source=lambda w: raw_source(w.dataset),
        preprocess=config["preprocess"],
        binning=config["binning"],
    log:
        "logs/{dataset}/zscore.log",
    benchmark:
        "benchmarks/{dataset}/zscore.tsv"
    resources:
        mem_mb=lambda wildcards, attempt: 6000 * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
    script:
        "../scripts/zscore.py"
