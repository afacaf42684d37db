"""activations: forward hooks on named layers of a network, one grating per condition."""

from v1rsa import activations, io, provenance, rdm, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
training.limit_threads(snakemake.threads)
params, inputs, seed = snakemake.params, snakemake.input, int(snakemake.wildcards.seed)
name = snakemake.wildcards.network
conditions = rdm.select_conditions(
    io.read_netcdf(inputs.conditions, ["response"]), **params.conditions
)
network = activations.open_network(
    params.kind, seed=seed, custom=params.custom, weights=inputs.get("weights"),
    metrics=inputs.get("metrics"), model=inputs.get("model"),
)
dataset = activations.condition_activations(
    network, conditions["orientation"].values, name=name, seed=seed, layers=params.layers,
    grating=params.grating, input_adapter=params.input_adapter, custom=params.custom,
    batch_size=params.batch_size, device=training.pick_device(params.device),
)
io.write_netcdf(dataset, snakemake.output[0], provenance=made_with)
