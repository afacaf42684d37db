"""rdm_v1: the V1 RDM of the selected conditions, with one RDM per disjoint trial fold."""

from v1rsa import io, provenance, rdm
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
conditions = rdm.select_conditions(
    io.read_netcdf(snakemake.input.conditions, ["response"]), **snakemake.params.conditions
)
rdm_v1 = rdm.rdm_from_conditions(conditions, snakemake.params.method)
io.write_netcdf(rdm_v1, snakemake.output[0], provenance=made_with)
