"""train_decoder_ridge: the linear decoder of Stringer et al. 2021, scored on the test set."""

from v1rsa import decoding, io, provenance
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
model, metrics, predictions = decoding.fit_ridge(
    io.read_netcdf(snakemake.input.data, ["response"]),
    n_basis=params.n_basis,
    test_fraction=params.test_fraction,
    split_seed=params.split_seed,
)
io.write_netcdf(model, snakemake.output.model, provenance=made_with)
io.write_json(metrics, snakemake.output.metrics, provenance=made_with)
io.write_tsv(predictions, snakemake.output.predictions)
