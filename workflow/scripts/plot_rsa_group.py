"""plot_rsa_group: a group's mean similarity to V1 per comparator, one dot per recording, the
between- and within-recording noise ceilings, and the pairwise tests."""

import pandas as pd

from v1rsa import provenance
from v1rsa.figures import rsa, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
table = pd.read_csv(snakemake.input.table, sep="\t")
recordings = pd.read_csv(snakemake.input.recordings, sep="\t")
pairwise = pd.read_csv(snakemake.input.pairwise, sep="\t")
style.save_figures({"rsa": rsa.group_figure(table, recordings, pairwise)},
                   dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with, note=snakemake.params.note)
