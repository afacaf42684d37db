"""plot_rdms: V1's RDM beside every layer's on one colour scale, and RDM rows."""

from v1rsa import io, provenance
from v1rsa.figures import rdms, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
v1 = io.read_netcdf(snakemake.input.v1, ["rdm"])
network = io.read_netcdf(snakemake.input.network, ["rdm", "method"])
figures = rdms.rdm_figures(v1, network, network_name=snakemake.params.title,
                           at_deg=snakemake.params.rows_deg)
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
