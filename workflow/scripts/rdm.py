"""rdm: the RDM of every recorded layer of one network."""

import xarray as xr

from v1rsa import io, rdm
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
activations = xr.load_dataset(snakemake.input.activations, engine=io.ENGINE)
io.write_netcdf(rdm.layer_rdms(activations, snakemake.params.method), snakemake.output[0])
