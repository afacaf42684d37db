"""train_normative: the tilt CNN (or a family's network of one's own) on gratings, scored on
fresh gratings."""

from v1rsa import io, normative, provenance, training
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
training.limit_threads(snakemake.threads)
params = snakemake.params
model, history, metrics = normative.fit_normative(
    io.read_netcdf(snakemake.input.train, ["image", "label"]),
    io.read_netcdf(snakemake.input.validation, ["image", "label"]),
    io.read_netcdf(snakemake.input.test, ["image", "label"]),
    arch=params.arch,
    seed=int(snakemake.wildcards.seed),
    device=training.pick_device(params.device),
    early_stopping_patience=params.early_stopping_patience,
    custom=params.custom,
    input_adapter=params.input_adapter,
    **params.training,
)
training.save_state_dict(model, snakemake.output.model)
io.write_json(metrics, snakemake.output.metrics, provenance=made_with)
training.write_history(history, snakemake.output.history, normative.HISTORY_COLUMNS)
