"""train_encoder: grating -> every neuron's binned response, scored on held-out trials."""

from v1rsa import encoding, io, provenance, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
training.limit_threads(snakemake.threads)
params = snakemake.params
halves = encoding.held_out_halves(
    io.read_netcdf(snakemake.input.trials, ["response"]),
    io.read_netcdf(snakemake.input.conditions, ["response"]),
    params.bin_width_deg,
)
model, history, metrics, scores = encoding.fit_encoder(
    halves,
    **params.stimulus,
    handmade_init=params.handmade_init,
    seed=int(snakemake.wildcards.seed),
    device=training.pick_device(params.device),
    **params.training,
)
training.save_state_dict(model, snakemake.output.model)
io.write_json(metrics, snakemake.output.metrics, provenance=made_with)
training.write_history(history, snakemake.output.history)
io.write_netcdf(scores, snakemake.output.scores, provenance=made_with)
