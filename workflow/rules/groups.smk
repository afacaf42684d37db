# Groups of recordings analysed together (config: groups): which datasets and networks each
# compares, and the files its rule (rsa_group, rsa.smk) reads. Checked before any job runs.

#: groups of recordings, by name
RECORDING_GROUPS = config["groups"]
if RECORDING_GROUPS:
    from v1rsa.config_checks import check_groups_config

    check_groups_config(config, NETWORKS)


def group_datasets(group):
    return RECORDING_GROUPS[group]["datasets"]


def group_network_names(group):
    """The networks a group compares, as "{network}/seed{seed}" (network_names() by default)."""
    chosen = RECORDING_GROUPS[group].get("networks", NETWORKS)
    return [
        f"{network}/seed{seed}"
        for network in NETWORKS
        if network in chosen
        for seed in network_seeds(network)
    ]


def group_rdm_files(wildcards):
    """Each recording's V1 RDM, and then each recording's RDM of every compared network."""
    datasets = group_datasets(wildcards.group)
    return {
        "v1": [f"results/{dataset}/rdms/v1.nc" for dataset in datasets],
        "networks": [
            f"results/{dataset}/rdms/{name}.nc"
            for dataset in datasets
            for name in group_network_names(wildcards.group)
        ],
    }
