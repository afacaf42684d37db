"""rsa_group: several recordings of the same conditions together: the mean similarity over
recordings, the dual bootstrap over recordings and conditions, the between-recording ceiling."""

from v1rsa import io, provenance
from v1rsa.logs import log_to_file
from v1rsa.rsa import groups

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
paths = iter(snakemake.input.networks)
recordings = {}
for dataset, v1_path in zip(params.datasets, snakemake.input.v1, strict=True):
    networks = {name: io.read_netcdf(next(paths), ["rdm"]) for name in params.names}
    recordings[dataset] = groups.recording_rdms(io.read_netcdf(v1_path, ["rdm", "orientation"]),
                                                networks, dataset=dataset)
groups.check_same_conditions(recordings)
table, per_recording, pairwise, samples = groups.group_table(
    recordings, params.comparators, **params.statistics, n_threads=snakemake.threads)
io.write_tsv(table, snakemake.output.table)
io.write_tsv(per_recording, snakemake.output.recordings)
io.write_tsv(pairwise, snakemake.output.pairwise)
io.write_netcdf(samples, snakemake.output.samples, provenance=made_with)
