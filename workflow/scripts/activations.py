"""activations: forward hooks on named layers of a network, one grating per condition."""

import json

from v1rsa import activations, io, rdm, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
training.limit_threads(snakemake.threads)
params, inputs, seed = snakemake.params, snakemake.input, int(snakemake.wildcards.seed)
conditions = rdm.select_conditions(
    io.read_netcdf(inputs.conditions, ["response"]), **params.conditions
)
network = (
    activations.build_network(**params.custom, weights=inputs.get("weights"), seed=seed)
    if params.custom
    else activations.load_network(snakemake.wildcards.network, inputs.metrics, inputs.model)
)
recorded = activations.grating_activations(
    network,
    conditions["orientation"].values,
    params.layers,
    **params.grating,
    input_adapter=params.input_adapter,
    batch_size=params.batch_size,
    device=training.pick_device(params.device),
)
provenance = {"seed": seed, **params.grating}
if params.custom:  # a network of one's own: how it was built and shown the gratings
    provenance.update(factory=params.custom["factory"], kwargs=json.dumps(params.custom["kwargs"]),
                      input_adapter=json.dumps(params.input_adapter))
dataset = activations.activations_dataset(
    recorded, conditions["orientation"].values, model_name=snakemake.wildcards.network,
    attrs=provenance,
)
io.write_netcdf(dataset, snakemake.output[0])
