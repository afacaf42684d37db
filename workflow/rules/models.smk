# Stimuli and trained models: decoders, the normative CNN and the encoding model (their
# settings are in networks.smk).


rule gratings:
    input:
        code=library("gratings"),
    output:
        "results/stimuli/{stimset}.nc",
    wildcard_constraints:
        stimset=one_of(TILT_SETS),
    params:
        sf=config["gratings"]["sf"],
        res=config["normative"]["res"],
        n=lambda w: config["normative"]["n_train" if w.stimset == "tilt_train" else "n_test"],
        # each set draws from its own stream, so validation and test gratings are fresh
        seed=lambda w: [config["normative"]["data_seed"], TILT_SETS.index(w.stimset)],
    localrule: True
    log:
        "logs/stimuli/{stimset}.log",
    script:
        "../scripts/gratings.py"


rule train_decoder:
    input:
        data="results/{dataset}/{data}.nc",
        code=library("train_decoder"),
    output:
        model="results/{dataset}/models/decoder_{decoder}/{data}/seed{seed}/model.pt",
        metrics="results/{dataset}/models/decoder_{decoder}/{data}/seed{seed}/metrics.json",
        history="results/{dataset}/models/decoder_{decoder}/{data}/seed{seed}/history.tsv",
        predictions="results/{dataset}/models/decoder_{decoder}/{data}/seed{seed}/predictions.tsv",
    wildcard_constraints:
        decoder=one_of(DECODERS),
        data=one_of(["trials", "conditions"]),
    params:
        hyper=lambda w: decoder_settings(w.decoder, w.data),
        test_fraction=config["decoders"]["test_fraction"],
        split_seed=config["decoders"]["split_seed"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=gpu_request(),
    log:
        "logs/{dataset}/train_decoder/{decoder}_{data}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_decoder/{decoder}_{data}_seed{seed}.tsv"
    script:
        "../scripts/train_decoder.py"


# The normative CNN and every member of a family: one job per network and seed.
rule train_normative:
    input:
        train="results/stimuli/tilt_train.nc",
        validation="results/stimuli/tilt_validation.nc",
        test="results/stimuli/tilt_test.nc",
        code=library("train_normative"),
    output:
        model="results/models/{network}/seed{seed}/model.pt",
        metrics="results/models/{network}/seed{seed}/metrics.json",
        history="results/models/{network}/seed{seed}/history.tsv",
    wildcard_constraints:
        network=one_of(TILT_NETWORKS),
    params:
        arch=lambda w: normative_architecture(w.network),
        training=lambda w: normative_training(w.network),
        # a family of a network of one's own: its factory and how it takes a grating
        custom=lambda w: custom_network(w.network),
        input_adapter=lambda w: input_adapter(w.network),
        early_stopping_patience=config["normative"]["early_stopping_patience"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=gpu_request(),
    log:
        "logs/models/{network}/seed{seed}.log",
    benchmark:
        "benchmarks/models/{network}/seed{seed}.tsv"
    script:
        "../scripts/train_normative.py"


rule train_encoder:
    input:
        trials="results/{dataset}/trials.nc",
        conditions="results/{dataset}/conditions.nc",
        code=library("train_encoder"),
    output:
        model="results/{dataset}/models/encoder/seed{seed}/model.pt",
        metrics="results/{dataset}/models/encoder/seed{seed}/metrics.json",
        history="results/{dataset}/models/encoder/seed{seed}/history.tsv",
        scores="results/{dataset}/models/encoder/seed{seed}/scores.nc",
    params:
        bin_width_deg=config["encoder"]["bin_width_deg"],
        stimulus=lambda w: {
            "sf": config["gratings"]["sf"],
            "res": config["encoder"]["res"],
        },
        handmade_init=config["encoder"]["handmade_init"],
        training=lambda w: select(config["encoder"], "lr", "momentum", "n_iterations", "l2", "l1"),
        device=config["device"],
    # the longest job, and the RSA waits for it: start it as soon as its data exist, before the
    # rest of the RSA's chain (priority 10); the only job with more than one thread (on 4 cores
    # or more): its results do not depend on the thread count, unlike torch's own products
    priority: 20
    threads: encoder_threads()
    resources:
        mem_mb=lambda wildcards, attempt: 6000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=gpu_request(),
    log:
        "logs/{dataset}/train_encoder/seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_encoder/seed{seed}.tsv"
    script:
        "../scripts/train_encoder.py"


rule train_decoder_ridge:
    input:
        data="results/{dataset}/{data}.nc",
        code=library("train_decoder_ridge"),
    output:
        model="results/{dataset}/models/decoder_ridge/{data}/model.nc",
        metrics="results/{dataset}/models/decoder_ridge/{data}/metrics.json",
        predictions="results/{dataset}/models/decoder_ridge/{data}/predictions.tsv",
    wildcard_constraints:
        data=one_of(["trials", "conditions"]),
    params:
        n_basis=config["decoders"]["ridge"]["n_basis"],
        test_fraction=config["decoders"]["test_fraction"],
        split_seed=config["decoders"]["split_seed"],
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 6000 * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
    log:
        "logs/{dataset}/train_decoder/ridge_{data}.log",
    benchmark:
        "benchmarks/{dataset}/train_decoder/ridge_{data}.tsv"
    script:
        "../scripts/train_decoder_ridge.py"


rule decoder_scaling:
    input:
        trials="results/{dataset}/trials.nc",
        code=library("decoder_scaling"),
    output:
        table="results/{dataset}/models/decoder_ridge/scaling.tsv",
    params:
        scaling=config["decoders"]["scaling"],
        n_basis=config["decoders"]["ridge"]["n_basis"],
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 6000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    log:
        "logs/{dataset}/decoder_scaling.log",
    benchmark:
        "benchmarks/{dataset}/decoder_scaling.tsv"
    script:
        "../scripts/decoder_scaling.py"
