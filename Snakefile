# v1rsa: deep networks against mouse V1. The table of contents of the workflow;
# each stage lives in workflow/rules/<stage>.smk, its logic in workflow/src/v1rsa/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/rsa.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
        RUN_RECORD,
    default_target: True
