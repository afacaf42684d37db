"""decoder_scaling: ridge decoding error vs numbers of neurons and trials (a + b/sqrt(n) fit)."""

from v1rsa import decoding, io
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
trials = io.read_netcdf(snakemake.input.trials, ["response"])
scaling = snakemake.params.scaling
n_neurons = trials.sizes["neuron"]
n_train = int((trials["split"].values == "train").sum())
table = decoding.scaling_table(
    trials["response"].values,
    trials["orientation"].values,
    trials["split"].values,
    # sizes beyond this recording's are left out, with a warning in the log
    n_neurons_list=decoding.available_sizes(
        scaling["n_neurons"], n_neurons, "decoders.scaling.n_neurons (neurons)"),
    n_trials_list=decoding.available_sizes(
        scaling["n_trials"], n_train, "decoders.scaling.n_trials (training trials)"),
    n_repeats=scaling["n_repeats"],
    seed=scaling["seed"],
    n_basis=snakemake.params.n_basis,
)
io.write_tsv(table, snakemake.output.table)
