# Raw data (simulate, download or link a local file) and the zscore stage.


def _datasets_with(source):
    return [name for name, entry in config["datasets"].items() if entry["source"] == source]


SIMULATED = _datasets_with("simulate")
DOWNLOADED = _datasets_with("download")
LOCAL = _datasets_with("local")

#: the file suffix of each layout's raw file: resources/{dataset}/raw.{suffix}
RAW_SUFFIXES = {"raw": "npy", "raw_hdf5": "h5", "oribinned1": "npz", "oribinned6_split": "npz"}


def raw_file(wildcards):
    """The raw file of a dataset, as published or simulated: resources/{dataset}/raw.{suffix}."""
    layout = dataset_entry(wildcards.dataset)["layout"]
    return f"resources/{wildcards.dataset}/raw.{RAW_SUFFIXES[layout]}"


def raw_source(dataset):
    """A short description of where a dataset's raw file comes from (stored in attrs)."""
    entry = dataset_entry(dataset)
    if entry["source"] == "simulate":
        return "simulate " + json.dumps(entry.get("simulate", {}), sort_keys=True)
    if entry["source"] == "download":
        return f"download {entry['url']}"
    return f"local {entry['path']}"


def _simulated_as(layout):
    return [name for name in SIMULATED if dataset_entry(name)["layout"] == layout]


def zscore_mem_mb(wildcards, attempt):
    """Memory (MB) of a zscore job: 6 GB, or more for a large simulated recording: its float32
    trials (4 bytes a value), the whole float64 recording when the layout is read at once (raw),
    three float64 chunks of neurons and 1 GB. Times the attempt, as every data rule."""
    entry = dataset_entry(wildcards.dataset)
    needed_mb = 6000
    if entry["source"] == "simulate":
        n_values = entry["simulate"]["n_neurons"] * entry["simulate"]["n_trials"]
        bytes_per_value = 4 + (8 if entry["layout"] == "raw" else 0)
        chunks = 3 * config["preprocess"]["chunk_neurons"] * entry["simulate"]["n_trials"] * 8
        needed_mb = max(needed_mb, (n_values * bytes_per_value + chunks) // 10**6 + 1000)
    return needed_mb * attempt


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
    log:
        "logs/{dataset}/simulate.log",
    benchmark:
        "benchmarks/{dataset}/simulate.tsv"
    # every stage waits for the data: made before anything else that is ready (the encoder,
    # the longest job, has priority 20 too)
    priority: 20
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
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
        known_hash=lambda w: dataset_entry(w.dataset).get("known_hash"),
        retries=config["download"]["retries"],
    log:
        "logs/{dataset}/download_{suffix}.log",
    benchmark:
        "benchmarks/{dataset}/download_{suffix}.tsv"
    priority: 20  # the data first, as simulate's
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
        dataset=one_of(LOCAL),
        suffix=one_of(["npy", "npz", "h5"]),
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
    log:
        "logs/{dataset}/zscore.log",
    benchmark:
        "benchmarks/{dataset}/zscore.tsv"
    priority: 20  # the data first, as simulate's
    resources:
        mem_mb=zscore_mem_mb,
        runtime=lambda wildcards, attempt: 20 * attempt,
    script:
        "../scripts/zscore.py"
