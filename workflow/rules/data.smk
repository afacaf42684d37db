# Raw data (simulate, download or link a local file) and the zscore stage; the datasets'
# sources, layouts and files are in datasets.smk.


rule simulate:
    input:
        code=library("simulate"),
    output:
        raw="resources/{dataset}/raw.npy",
        truth="resources/{dataset}/ground_truth.nc",
    wildcard_constraints:
        dataset=one_of(_simulated_as("raw")),
    params:
        layout="raw",
        simulate=lambda w: dataset_entry(w.dataset)["simulate"],
    # every stage waits for the data: made before anything else that is ready (the encoder,
    # the longest job, has priority 20 too)
    priority: 20
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
    log:
        "logs/{dataset}/simulate.log",
    benchmark:
        "benchmarks/{dataset}/simulate.tsv"
    script:
        "../scripts/simulate.py"


# Layout raw_hdf5: the same recording streamed to HDF5 a block of neurons at a time, for
# recordings too large for memory.
use rule simulate as simulate_hdf5 with:
    output:
        raw="resources/{dataset}/raw.h5",
        truth="resources/{dataset}/ground_truth.nc",
    wildcard_constraints:
        dataset=one_of(_simulated_as("raw_hdf5")),
    params:
        layout="raw_hdf5",
        simulate=lambda w: dataset_entry(w.dataset)["simulate"],


rule download:
    # No library input: editing the code must not re-fetch a verified 1 GB file.
    output:
        raw="resources/{dataset}/raw.{suffix}",
        sha256="resources/{dataset}/raw.{suffix}.sha256",
    wildcard_constraints:
        dataset=one_of(DOWNLOADED),
        suffix=one_of(["npy", "npz", "h5"]),
    params:
        url=lambda w: dataset_entry(w.dataset)["url"],
        settings=download_settings,  # the pin, retries, layout: no rerun trigger (datasets.smk)
    priority: 20  # the data first, as simulate's
    retries: 1
    resources:
        # the received file is read whole to check its layout (937 MB for the NMA raw file)
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    log:
        "logs/{dataset}/download_{suffix}.log",
    benchmark:
        "benchmarks/{dataset}/download_{suffix}.tsv"
    script:
        "../scripts/download.py"


rule link_local:
    input:
        # the user's file: when it changes in place, the link and its hash record are remade
        lambda w: dataset_entry(w.dataset)["path"],
    output:
        raw="resources/{dataset}/raw.{suffix}",
        sha256="resources/{dataset}/raw.{suffix}.sha256",
    wildcard_constraints:
        dataset=one_of(LOCAL),
        suffix=one_of(["npy", "npz", "h5"]),
    params:
        settings=pin_settings,  # the pin: no rerun trigger (datasets.smk)
    localrule: True
    log:
        "logs/{dataset}/link_local_{suffix}.log",
    script:
        "../scripts/link_local.py"


rule zscore:
    input:
        raw=raw_file,
        code=library("zscore"),
    output:
        trials="results/{dataset}/trials.nc",
        conditions="results/{dataset}/conditions.nc",
    params:
        layout=lambda w: dataset_entry(w.dataset)["layout"],
        source=lambda w: raw_source(w.dataset),
        preprocess=config["preprocess"],
        binning=config["binning"],
    priority: 20  # the data first, as simulate's
    resources:
        mem_mb=zscore_mem_mb,
        runtime=lambda wildcards, attempt: 20 * attempt,
    log:
        "logs/{dataset}/zscore.log",
    benchmark:
        "benchmarks/{dataset}/zscore.tsv"
    script:
        "../scripts/zscore.py"
