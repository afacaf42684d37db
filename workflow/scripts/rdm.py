"""rdm: the RDM of every recorded layer of one network."""

from v1rsa import io, provenance, rdm
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
activations = io.read_netcdf(snakemake.input.activations)
rdms = rdm.layer_rdms(activations, snakemake.params.method)
io.write_netcdf(rdms, snakemake.output[0], provenance=made_with)
