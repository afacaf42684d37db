"""rdm: the RDM of every recorded layer of one network."""

from v1rsa import io, rdm
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
activations = io.read_netcdf(snakemake.input.activations)
io.write_netcdf(rdm.layer_rdms(activations, snakemake.params.method), snakemake.output[0])
