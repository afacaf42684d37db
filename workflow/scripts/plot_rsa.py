"""plot_rsa: every layer's similarity to V1 per comparator (CIs, q, noise ceiling) and CKA, and
the model comparison (units sorted by similarity, pairwise tests)."""

import pandas as pd

from v1rsa import provenance
from v1rsa.figures import rsa, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
table = pd.read_csv(snakemake.input.table, sep="\t", dtype={"network_seed": "Int64"})
cka = pd.read_csv(snakemake.input.cka, sep="\t")
pairwise = pd.read_csv(snakemake.input.pairwise, sep="\t")
figures = {
    # family members are summarised by plot_families, but take part in the model comparison
    "rsa": rsa.rsa_figure(table, cka, networks=snakemake.params.networks),
    "comparison": rsa.comparison_figure(table, pairwise),
}
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with, note=snakemake.params.note)
