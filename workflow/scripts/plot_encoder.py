"""plot_encoder: predicted vs measured held-out tuning curves, per-neuron R² distributions."""

import pandas as pd

from v1rsa import io, provenance
from v1rsa.figures import encoding, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
scores = io.read_netcdf(snakemake.input.scores,
                        ["predicted", "measured", "r2", "noise_ceiling", "normalised_r2"])
history = pd.read_csv(snakemake.input.history, sep="\t")
figures = encoding.encoding_figures(scores, history, n_examples=snakemake.params.n_examples)
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
