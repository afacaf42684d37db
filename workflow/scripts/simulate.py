"""simulate: write a synthetic recording in the layout of the NMA file, and its ground truth."""

from v1rsa import io, simulate
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
raw, truth = simulate.simulate_recording(**snakemake.params.simulate)
simulate.save_raw(raw, snakemake.output.raw)
io.write_netcdf(truth, snakemake.output.truth)
