"""leaderboard: each network's task accuracy, layer similarities and cross-validated best layer."""

import json
from pathlib import Path

from v1rsa import io, rsa
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
params = snakemake.params
v1 = io.read_netcdf(snakemake.input.v1, ["rdm"])
seeds = rsa.seeds_table(
    {name: io.read_netcdf(path, ["rdm"])
     for name, path in zip(params.names, snakemake.input.networks, strict=True)},
    v1["rdm"].values,
    v1["rdm_fold"].values if "rdm_fold" in v1 else None,
    params.comparators,
    {name: json.loads(Path(path).read_text())
     for name, path in zip(params.trained, snakemake.input.metrics, strict=True)},
)
table, seeds = rsa.leaderboard_table(seeds, params.families)
io.write_tsv(table, snakemake.output.table)
io.write_tsv(seeds, snakemake.output.seeds)
