# What the HTML report shows besides figures (snakemake --report results/report.html): the RSA
# and CKA tables as rounded HTML, and the record of how the run was made.

#: The config files that made this run, in the order they were applied: the Snakefile's
#: configfile, then each --configfile (each overrides the ones before, key by key).
_CLI_CONFIG_FILES = [str(path) for path in workflow.config_settings.configfiles]
CONFIG_FILES = [
    os.path.relpath(path)
    for path in [
        *[str(p) for p in workflow.configfiles if str(p) not in _CLI_CONFIG_FILES],
        *_CLI_CONFIG_FILES,
    ]
]
RUN_RECORD = ["results/provenance/run.json", "results/provenance/run.html"]


rule rsa_tables:
    input:
        table="results/{dataset}/rsa/rsa.tsv",
        cka="results/{dataset}/rsa/cka.tsv",
        code=library("rsa_tables"),
    output:
        table=report(
            "results/{dataset}/rsa/rsa.html",
            caption="../report/rsa_table.rst",
            category="RSA",
            subcategory="{dataset}",
            labels={"figure": "RSA table"},
        ),
        cka=report(
            "results/{dataset}/rsa/cka.html",
            caption="../report/cka_table.rst",
            category="RSA",
            subcategory="{dataset}",
            labels={"figure": "CKA table"},
        ),
    group:
        "rsa"  # one cluster job with the dataset's summaries (rsa.smk)
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    log:
        "logs/{dataset}/rsa_tables.log",
    benchmark:
        "benchmarks/{dataset}/rsa_tables.tsv"
    script:
        "../scripts/rsa_tables.py"


rule run_record:
    # Remade whenever an output is: it reads the record each output carries, so it names the
    # commits and packages that made the outputs as they are now.
    input:
        outputs=lambda w: final_outputs(),
        code=library("run_record"),
    output:
        json=RUN_RECORD[0],
        html=report(
            RUN_RECORD[1],
            caption="../report/run_record.rst",
            category="How this run was made",
            labels={"record": "config files, code, packages, configuration"},
        ),
    params:
        config_files=CONFIG_FILES,
        config=config,
    localrule: True
    log:
        "logs/run_record.log",
    benchmark:
        "benchmarks/run_record.tsv"
    script:
        "../scripts/run_record.py"
