# Test-only workflow (tests/test_slurm.py): one job that fails on its first attempt and succeeds
# on the next, to check that the SLURM profile's `retries:` resubmits a failed cluster job.
# The production workflow has no hook for this; the attempt number reaches the job as a resource.


rule all:
    input:
        "retried.txt",


rule fails_once:
    output:
        "retried.txt",
    resources:
        first_attempt=lambda wildcards, attempt: int(attempt == 1),
        mem_mb=100,
        runtime=5,
    log:
        "logs/fails_once.log",
    shell:
        "if [ {resources.first_attempt} = 1 ]; then"
        " echo 'first attempt: failing on purpose' > {log}; exit 1;"
        " fi; echo \"succeeded in SLURM job $SLURM_JOB_ID\" > {output}"
