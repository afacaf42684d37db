"""plot_decoder_scaling: ridge decoding error against numbers of neurons and of trials."""

import pandas as pd

from v1rsa import provenance
from v1rsa.figures import decoders as decoder_figures
from v1rsa.figures import style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
table = pd.read_csv(snakemake.input.table, sep="\t")
figures = {"scaling": decoder_figures.scaling_figure(table)}
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
