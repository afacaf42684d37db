# Representational dissimilarity matrices of V1 and of every network layer, and their comparison.
#
# On a cluster, a dataset's summaries (V1's RDM, the RSA, its tables and figure, the leaderboard
# and the families' figures) run as one job per dataset (group "rsa"): each of them is seconds of
# work, while each cluster job starts Snakemake anew (about 10 s on the test cluster) and waits
# for a status check before the next can be submitted. Each network's RDM is a job of its own: a
# group asks for one CPU per job it can run at once, and a family of 72 networks would ask for 72.
# A local run ignores groups. (Snakemake's job groups, not the groups of recordings of rule
# rsa_group, groups.smk.)


rule rdm_v1:
    input:
        conditions="results/{dataset}/conditions.nc",
        code=library("rdm_v1"),
    output:
        "results/{dataset}/rdms/v1.nc",
    params:
        method=config["rdm"]["method"],
        conditions=config["rdm"]["conditions"],
    # a second of work: on one thread it need not wait for both cores to be free at once
    priority: 10
    group:
        "rsa"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    log:
        "logs/{dataset}/rdm/v1.log",
    benchmark:
        "benchmarks/{dataset}/rdm/v1.tsv"
    script:
        "../scripts/rdm_v1.py"


rule rdm:
    input:
        activations="results/{dataset}/activations/{network}/seed{seed}.nc",
        code=library("rdm"),
    output:
        "results/{dataset}/rdms/{network}/seed{seed}.nc",
    wildcard_constraints:
        network=one_of(NETWORKS + FAMILY_NETWORKS),
    params:
        method=config["rdm"]["method"],
    priority: 10
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 1000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    log:
        "logs/{dataset}/rdm/{network}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/rdm/{network}_seed{seed}.tsv"
    script:
        "../scripts/rdm.py"


rule rsa:
    input:
        v1="results/{dataset}/rdms/v1.nc",
        conditions="results/{dataset}/conditions.nc",
        networks=lambda w: network_files(w.dataset, "rdms"),
        activations=lambda w: network_files(w.dataset, "activations"),
        code=library("rsa"),
    output:
        table="results/{dataset}/rsa/rsa.tsv",
        samples="results/{dataset}/rsa/rsa.nc",
        cka="results/{dataset}/rsa/cka.tsv",
        pairwise="results/{dataset}/rsa/pairwise.tsv",
    params:
        names=lambda w: network_names(),
        comparators=config["rsa"]["comparators"],
        statistics=lambda w: select(
            config["rsa"], "n_bootstrap", "n_permutations", "seed", "ci_level"
        ),
        max_all_pairs=config["rsa"]["max_all_pairs"],
        conditions=config["rdm"]["conditions"],
    priority: 10
    group:
        "rsa"
    # one thread: 0.3 s slower than two, but a 2-thread job waits until both cores are free
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
    log:
        "logs/{dataset}/rsa.log",
    benchmark:
        "benchmarks/{dataset}/rsa.tsv"
    script:
        "../scripts/rsa.py"


rule leaderboard:
    input:
        v1="results/{dataset}/rdms/v1.nc",
        networks=lambda w: network_files(w.dataset, "rdms"),
        metrics=tilt_metrics()[1],
        code=library("leaderboard"),
    output:
        table=report(
            "results/{dataset}/rsa/leaderboard.tsv",
            caption="../report/leaderboard.rst",
            category="RSA",
        ),
        seeds="results/{dataset}/rsa/leaderboard_seeds.tsv",
    params:
        names=network_names(),
        trained=tilt_metrics()[0],
        families={network: variant.describe() for network, variant in FAMILY_VARIANTS.items()},
        comparators=config["rsa"]["comparators"],
    priority: 10
    group:
        "rsa"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    log:
        "logs/{dataset}/leaderboard.log",
    benchmark:
        "benchmarks/{dataset}/leaderboard.tsv"
    script:
        "../scripts/leaderboard.py"


rule rsa_group:
    input:
        unpack(group_rdm_files),
        code=library("rsa_group"),
    output:
        table="results/groups/{group}/rsa.tsv",
        recordings="results/groups/{group}/recordings.tsv",
        pairwise="results/groups/{group}/pairwise.tsv",
        samples="results/groups/{group}/rsa.nc",
    wildcard_constraints:
        group=one_of(list(RECORDING_GROUPS)),
    params:
        datasets=lambda w: group_datasets(w.group),
        names=lambda w: group_network_names(w.group),
        comparators=config["rsa"]["comparators"],
        statistics=lambda w: select(
            config["rsa"], "n_bootstrap", "seed", "ci_level", "max_all_pairs"
        ),
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    log:
        "logs/groups/{group}/rsa.log",
    benchmark:
        "benchmarks/groups/{group}/rsa.tsv"
    script:
        "../scripts/rsa_group.py"
