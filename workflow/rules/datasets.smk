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


def raw_path(dataset):
    """The raw file of a dataset, as published or simulated: resources/{dataset}/raw.{suffix}."""
    return f"resources/{dataset}/raw.{RAW_SUFFIXES[dataset_entry(dataset)['layout']]}"


def raw_file(wildcards):
    return raw_path(wildcards.dataset)


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


@functools.cache
def pinned_at(dataset):
    """Where a dataset's known_hash is set, for messages: 'datasets.<name>.known_hash in <the
    last config file that sets it>' (a --configfile overrides config/config.yaml)."""
    key = f"datasets.{dataset}.known_hash"
    given = [str(path) for path in workflow.config_settings.configfiles]  # --configfile, in order
    base = [str(path) for path in workflow.configfiles if str(path) not in given]
    for path in [*reversed(given), *reversed(base)]:
        with open(path) as file:
            entry = ((yaml.safe_load(file) or {}).get("datasets") or {}).get(dataset) or {}
        if "known_hash" in entry:
            return f"{key} in {os.path.relpath(path)}"
    return key


def pin_settings(wildcards, output):
    """How a download or link job checks its file: the pin and where it is set. Computed from
    the job's output, so Snakemake does not rerun the job when they change (a param derived
    from input or output files is no rerun trigger): the pin accepts or refuses a file but does
    not change it. A pin the file already in resources/ lacks is refused when the workflow
    starts (check_pins below), before Snakemake could remove the file to remake it; so pinning
    the hash a file already has reruns nothing."""
    return {
        "known_hash": dataset_entry(wildcards.dataset).get("known_hash"),
        "pinned_at": pinned_at(wildcards.dataset),
    }


def download_settings(wildcards, output):
    """How a download job fetches and checks its file, not which file it is (that is the URL):
    the pin (see pin_settings), the retries and the layout it must read as. No rerun trigger:
    changing them does not fetch a verified file again."""
    return {
        **pin_settings(wildcards, output),
        "retries": config["download"]["retries"],
        "layout": dataset_entry(wildcards.dataset)["layout"],
    }


def check_pins():
    """Refuse, before any job, a pin that a dataset's file in resources/ does not have (its
    record resources/<name>/raw.<suffix>.sha256 says which it has): the file is kept."""
    pinned = [
        name
        for name in [*DOWNLOADED, *LOCAL]
        if dataset_entry(name).get("known_hash") and os.path.exists(raw_path(name))
    ]
    if pinned:
        from v1rsa.download import check_pin

        for name in pinned:
            entry = dataset_entry(name)
            check_pin(
                raw_path(name),
                entry["known_hash"],
                pinned_at=pinned_at(name),
                source=entry["url"] if name in DOWNLOADED else entry["path"],
            )


if workflow.is_main_process:
    check_pins()
