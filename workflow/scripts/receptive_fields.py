"""receptive_fields: discrepancy maps of units per layer by occlusion with noise, their
receptive-field sizes per layer, and a figure of example units."""

from v1rsa import activations, io, provenance, receptive_fields, training
from v1rsa.figures import receptive_fields as figures
from v1rsa.figures import style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
training.limit_threads(snakemake.threads)
params, inputs, seed = snakemake.params, snakemake.input, int(snakemake.wildcards.seed)
network = activations.open_network(
    snakemake.wildcards.network, seed=seed, custom=params.custom, weights=inputs.get("weights"),
    metrics=inputs.get("metrics"), model=inputs.get("model"),
)
fields = receptive_fields.grating_receptive_fields(
    network, params.mapped["layers"], units=params.mapped["units"], **params.grating,
    input_adapter=params.input_adapter, **params.mapping,
    device=training.pick_device(params.device),
)
fields.attrs.update(model=snakemake.wildcards.network, model_seed=seed)
io.write_netcdf(fields, snakemake.output.fields, provenance=made_with)
io.write_tsv(receptive_fields.receptive_field_sizes(fields), snakemake.output.table)
style.save_figures(
    figures.receptive_field_figures(fields, n_units=params.n_units, title=params.title),
    {"receptive_fields": snakemake.output.figure,
     "receptive_fields_vector": snakemake.output.figure_vector},
    dpi=params.dpi,
    provenance=made_with,
    note=params.note,
)
