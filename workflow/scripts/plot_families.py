"""plot_families: accuracy vs similarity with V1, similarity by depth, variants x layers."""

import pandas as pd

from v1rsa import provenance
from v1rsa.figures import families, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
figures = families.family_figures(
    pd.read_csv(snakemake.input.table, sep="\t"),
    pd.read_csv(snakemake.input.seeds, sep="\t"),
    params.comparator,
    correlation=params.correlation,
)
style.save_figures(figures, dict(snakemake.output.items()), dpi=params.dpi,
                   provenance=made_with, note=params.note)
