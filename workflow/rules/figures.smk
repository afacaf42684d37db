# Figures of every stage (results/{dataset}/figures/, results/figures/normative/) for people and
# for the HTML report: snakemake --report results/report.html
# Each figure is a PNG (flagged for the report, with a caption in workflow/report/) and a vector
# copy (figures: vector_format) beside it; the drawing lives in workflow/src/v1rsa/figures/.
# The figures' names, captions and output files are in figure_files.smk.


rule tuning:
    # One fit of every neuron's tuning curve, shared by the data and decoder figures.
    input:
        trials="results/{dataset}/trials.nc",
        code=library("tuning"),
    output:
        "results/{dataset}/tuning.nc",
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=10,
    log:
        "logs/{dataset}/tuning.log",
    benchmark:
        "benchmarks/{dataset}/tuning.tsv"
    script:
        "../scripts/tuning.py"


rule plot_data:
    input:
        trials="results/{dataset}/trials.nc",
        conditions="results/{dataset}/conditions.nc",
        tuning="results/{dataset}/tuning.nc",
        truth=lambda w: (f"resources/{w.dataset}/ground_truth.nc" if w.dataset in SIMULATED else []),
        code=library("plot_data"),
    output:
        **figure_files("results/{dataset}/figures/data", DATA_FIGURES, "Data", "{dataset}"),
    params:
        n_examples=FIGURES["n_example_neurons"],
        bin_width_deg=FIGURES["tuning_bin_width_deg"],
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/{dataset}/figures/data.log",
    benchmark:
        "benchmarks/{dataset}/figures/data.tsv"
    script:
        "../scripts/plot_data.py"


rule plot_decoders:
    input:
        tuning="results/{dataset}/tuning.nc",
        models=lambda w: decoder_files(w, "model.pt"),
        metrics=lambda w: decoder_files(w, "metrics.json"),
        histories=lambda w: decoder_files(w, "history.tsv"),
        predictions=lambda w: decoder_files(w, "predictions.tsv"),
        ridge="results/{dataset}/models/decoder_ridge/{data}/predictions.tsv",
        code=library("plot_decoders"),
    output:
        **figure_files(
            "results/{dataset}/figures/decoders/{data}",
            DECODER_FIGURES,
            "Decoders",
            "{dataset}",
            data="{data}",
        ),
    wildcard_constraints:
        data=one_of(["trials", "conditions"]),
    params:
        names=DECODERS,
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/{dataset}/figures/decoders_{data}.log",
    benchmark:
        "benchmarks/{dataset}/figures/decoders_{data}.tsv"
    script:
        "../scripts/plot_decoders.py"


rule plot_decoder_scaling:
    input:
        table="results/{dataset}/models/decoder_ridge/scaling.tsv",
        code=library("plot_decoder_scaling"),
    output:
        **figure_files(
            "results/{dataset}/figures/decoders",
            SCALING_FIGURES,
            "Decoders",
            "{dataset}",
            data="trials",
        ),
    params:
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/{dataset}/figures/decoder_scaling.log",
    benchmark:
        "benchmarks/{dataset}/figures/decoder_scaling.tsv"
    script:
        "../scripts/plot_decoder_scaling.py"


rule plot_normative:
    input:
        model="results/models/normative/seed{seed}/model.pt",
        metrics="results/models/normative/seed{seed}/metrics.json",
        history="results/models/normative/seed{seed}/history.tsv",
        code=library("plot_normative"),
    output:
        **figure_files(
            "results/figures/normative/seed{seed}",
            NORMATIVE_FIGURES,
            "Normative CNN",
            "all datasets",
            seed="{seed}",
        ),
    params:
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/figures/normative_seed{seed}.log",
    benchmark:
        "benchmarks/figures/normative_seed{seed}.tsv"
    script:
        "../scripts/plot_normative.py"


rule plot_encoder:
    input:
        scores="results/{dataset}/models/encoder/seed{seed}/scores.nc",
        history="results/{dataset}/models/encoder/seed{seed}/history.tsv",
        code=library("plot_encoder"),
    output:
        **figure_files(
            "results/{dataset}/figures/encoder/seed{seed}",
            ENCODER_FIGURES,
            "Encoding model",
            "{dataset}",
            seed="{seed}",
        ),
    params:
        n_examples=FIGURES["n_example_neurons"],
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    log:
        "logs/{dataset}/figures/encoder_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/figures/encoder_seed{seed}.tsv"
    script:
        "../scripts/plot_encoder.py"


rule plot_representations:
    input:
        conditions="results/{dataset}/conditions.nc",
        activations="results/{dataset}/activations/{network}/seed{seed}.nc",
        code=library("plot_representations"),
    output:
        **figure_files(
            "results/{dataset}/figures/representations/{network}/seed{seed}",
            REPRESENTATION_FIGURES,
            "Representations",
            "{dataset}",
            network="{network}",
            seed="{seed}",
        ),
    wildcard_constraints:
        network=one_of(NETWORKS),
    params:
        title=network_title,
        conditions=config["rdm"]["conditions"],
        n_units=FIGURES["n_units"],
        seed=FIGURES["seed"],
        perplexity=FIGURES["tsne_perplexity"],
        pca_components=FIGURES["pca_components"],
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    log:
        "logs/{dataset}/figures/representations_{network}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/figures/representations_{network}_seed{seed}.tsv"
    script:
        "../scripts/plot_representations.py"


rule plot_rdms:
    input:
        v1="results/{dataset}/rdms/v1.nc",
        network="results/{dataset}/rdms/{network}/seed{seed}.nc",
        code=library("plot_rdms"),
    output:
        **figure_files(
            "results/{dataset}/figures/rdms/{network}/seed{seed}",
            RDM_FIGURES,
            "RDMs",
            "{dataset}",
            network="{network}",
            seed="{seed}",
        ),
    wildcard_constraints:
        network=one_of(NETWORKS),
    params:
        title=network_title,
        rows_deg=FIGURES["rdm_rows_deg"],
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/{dataset}/figures/rdms_{network}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/figures/rdms_{network}_seed{seed}.tsv"
    script:
        "../scripts/plot_rdms.py"


rule plot_rsa:
    input:
        table="results/{dataset}/rsa/rsa.tsv",
        cka="results/{dataset}/rsa/cka.tsv",
        pairwise="results/{dataset}/rsa/pairwise.tsv",
        code=library("plot_rsa"),
    output:
        **figure_files("results/{dataset}/figures/rsa", RSA_FIGURES, "RSA", "{dataset}"),
    params:
        # family members are summarised by plot_families
        networks=NETWORKS,
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    group:
        "rsa"  # one cluster job with the dataset's summaries (rsa.smk)
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/{dataset}/figures/rsa.log",
    benchmark:
        "benchmarks/{dataset}/figures/rsa.tsv"
    script:
        "../scripts/plot_rsa.py"


# One job draws every family of a dataset, however many variants they have.
rule plot_families:
    input:
        table="results/{dataset}/rsa/leaderboard.tsv",
        seeds="results/{dataset}/rsa/leaderboard_seeds.tsv",
        code=library("plot_families"),
    output:
        **figure_files(
            "results/{dataset}/figures/families", FAMILY_FIGURES, "Families", "{dataset}"
        ),
    params:
        comparator=config["rsa"]["comparators"][0],
        correlation=lambda w: {
            "n_bootstrap": config["rsa"]["n_bootstrap"],
            "ci_level": config["rsa"]["ci_level"],
            "seed": FIGURES["seed"],
        },
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    group:
        "rsa"  # one cluster job with the dataset's summaries (rsa.smk)
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/{dataset}/figures/families.log",
    benchmark:
        "benchmarks/{dataset}/figures/families.tsv"
    script:
        "../scripts/plot_families.py"


rule plot_rsa_group:
    input:
        table="results/groups/{group}/rsa.tsv",
        recordings="results/groups/{group}/recordings.tsv",
        pairwise="results/groups/{group}/pairwise.tsv",
        code=library("plot_rsa_group"),
    output:
        **figure_files("results/groups/{group}/figures", GROUP_FIGURES, "Groups", "{group}"),
    wildcard_constraints:
        group=one_of(list(RECORDING_GROUPS)),
    params:
        dpi=FIGURES["dpi"],
        note=FIGURES["note"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/groups/{group}/figures.log",
    benchmark:
        "benchmarks/groups/{group}/figures.tsv"
    script:
        "../scripts/plot_rsa_group.py"
