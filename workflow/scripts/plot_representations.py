"""plot_representations: tuning of random units per layer, t-SNE maps of V1 and every layer."""

from v1rsa import io, provenance, rdm
from v1rsa.figures import representations, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
conditions = rdm.select_conditions(io.read_netcdf(snakemake.input.conditions, ["response"]),
                                   **params.conditions)
activations = io.read_netcdf(snakemake.input.activations)
figures = representations.representation_figures(
    conditions["response"].values, activations, network=params.title, n_units=params.n_units,
    seed=params.seed, perplexity=params.perplexity, n_components=params.pca_components,
    n_threads=snakemake.threads,
)
style.save_figures(figures, dict(snakemake.output.items()), dpi=params.dpi, provenance=made_with,
                   note=snakemake.params.note)
