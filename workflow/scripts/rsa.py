"""rsa: compare every layer's RDM with V1's: CIs, permutation p, FDR q, tests against zero and
the noise ceiling, seed means, pairwise comparisons, CKA."""

from v1rsa import io, provenance, rdm, rsa
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
v1 = io.read_netcdf(snakemake.input.v1, ["rdm"])
networks = {name: io.read_netcdf(path, ["rdm"])
            for name, path in zip(params.names, snakemake.input.networks, strict=True)}
table, samples = rsa.rsa_table(
    v1["rdm"].values,
    v1["rdm_fold"].values if "rdm_fold" in v1 else None,
    rsa.network_candidates(networks),
    params.comparators,
    **params.statistics,
    n_threads=snakemake.threads,
)
io.write_tsv(rsa.split_candidate_names(table), snakemake.output.table)
io.write_netcdf(samples, snakemake.output.samples, provenance=made_with)
io.write_tsv(rsa.pairwise_from_dataset(samples, max_all_pairs=params.max_all_pairs),
             snakemake.output.pairwise)

conditions = rdm.select_conditions(io.read_netcdf(snakemake.input.conditions), **params.conditions)
activations = {name: io.read_netcdf(path)
               for name, path in zip(params.names, snakemake.input.activations, strict=True)}
cka = rsa.cka_table(conditions["response"].values, activations)
io.write_tsv(rsa.split_candidate_names(cka), snakemake.output.cka)
