"""tuning: every neuron's preferred orientation and held-out tuning SNR (tuning.nc)."""

from v1rsa import io, provenance, tuning
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
trials = io.read_netcdf(snakemake.input.trials, ["response"], {"response": ("trial", "neuron")})
io.write_netcdf(tuning.neuron_tuning(trials), snakemake.output[0], provenance=made_with)
