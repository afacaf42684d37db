# The datasets of the config: where each raw file comes from, its layout and file, and what
# its preprocessing needs (input functions of the data rules in data.smk).


def _datasets_with(source):
    return [name for name, entry in config["datasets"].items() if entry["source"] == source]


SIMULATED = _datasets_with("simulate")
DOWNLOADED = _datasets_with("download")
LOCAL = _datasets_with("local")

#: the file suffix of each layout's raw file: resources/{dataset}/raw.{suffix}
RAW_SUFFIXES = {
    "raw": "npy",
    "raw_hdf5": "h5",
    "oribinned1": "npz",
    "oribinned6_split": "npz",
}


def raw_file(wildcards):
    """The raw file of a dataset, as published or simulated: resources/{dataset}/raw.{suffix}."""
    layout = dataset_entry(wildcards.dataset)["layout"]
    return f"resources/{wildcards.dataset}/raw.{RAW_SUFFIXES[layout]}"


def raw_source(dataset):
    """A short description of where a dataset's raw file comes from (stored in attrs)."""
    entry = dataset_entry(dataset)
    if entry["source"] == "simulate":
        return f"simulate {json.dumps(entry.get('simulate', {}), sort_keys=True)}"
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
