"""rdm_v1: the V1 RDM of the selected conditions, with one RDM per disjoint trial fold."""

from v1rsa import io, rdm
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
conditions = rdm.select_conditions(
    io.read_netcdf(snakemake.input.conditions, ["response"]), **snakemake.params.conditions
)
io.write_netcdf(rdm.rdm_from_conditions(conditions, snakemake.params.method), snakemake.output[0])
