"""activations: forward hooks on named layers of a trained network, one grating per condition."""

from v1rsa import activations, io, rdm, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
training.limit_threads(snakemake.threads)
params = snakemake.params
conditions = rdm.select_conditions(
    io.read_netcdf(snakemake.input.conditions, ["response"]), **params.conditions
)
network = activations.load_network(
    snakemake.wildcards.network, snakemake.input.metrics, snakemake.input.model
)
recorded = activations.grating_activations(
    network,
    conditions["orientation"].values,
    params.layers,
    **params.grating,
    batch_size=params.batch_size,
    device=training.pick_device(params.device),
)
dataset = activations.activations_dataset(
    recorded, conditions["orientation"].values, model_name=snakemake.wildcards.network,
    attrs={"seed": int(snakemake.wildcards.seed), **params.grating},
)
io.write_netcdf(dataset, snakemake.output[0])
