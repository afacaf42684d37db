"""simulate: write a synthetic recording (NMA layout, or streamed to HDF5) and its ground truth."""

from v1rsa import io, provenance, simulate
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
if params.layout == "raw_hdf5":
    truth = simulate.simulate_to_hdf5(snakemake.output.raw, **params.simulate, progress=True)
else:
    raw, truth = simulate.simulate_recording(**params.simulate, progress=True)
    simulate.save_raw(raw, snakemake.output.raw)
io.write_netcdf(truth, snakemake.output.truth, provenance=made_with)
