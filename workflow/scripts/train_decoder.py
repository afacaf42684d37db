"""train_decoder: one of the course's decoders (neurons -> orientation), scored on the test set."""

from v1rsa import decoders, io, provenance, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
training.limit_threads(snakemake.threads)
params = snakemake.params
model, history, metrics, predictions = decoders.fit_decoder(
    io.read_netcdf(snakemake.input.data, ["response"]),
    snakemake.wildcards.decoder,
    hyper=params.hyper,
    test_fraction=params.test_fraction,
    split_seed=params.split_seed,
    seed=int(snakemake.wildcards.seed),
    device=training.pick_device(params.device),
)
training.save_state_dict(model, snakemake.output.model)
io.write_json(metrics, snakemake.output.metrics, provenance=made_with)
training.write_history(history, snakemake.output.history)
io.write_tsv(predictions, snakemake.output.predictions)
