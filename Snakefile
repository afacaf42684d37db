# v1rsa: deep networks against mouse V1. The table of contents of the workflow: what every stage
# shares and the config's datasets, networks, groups of recordings and figures (common,
# datasets, networks, groups, figure_files), then each stage's rules in
# workflow/rules/<stage>.smk (their logic in workflow/src/v1rsa/), and the final targets.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/networks.smk"
include: "workflow/rules/groups.smk"
include: "workflow/rules/figure_files.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/rsa.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/targets.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
        RUN_RECORD,
