"""plot_rsa: every layer's similarity to V1 per comparator (CIs, q, noise ceiling) and CKA."""

import pandas as pd

from v1rsa import provenance
from v1rsa.figures import rsa, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
table = pd.read_csv(snakemake.input.table, sep="\t")
cka = pd.read_csv(snakemake.input.cka, sep="\t")
figures = {"rsa": rsa.rsa_figure(table, cka)}
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
