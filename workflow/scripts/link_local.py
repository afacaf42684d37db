"""link_local: check a file the user already has, link it into resources/, record its hash."""

from v1rsa import download
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
digest = download.link_local(snakemake.input[0], snakemake.output.raw,
                             **snakemake.params.settings)
download.write_hash_record(snakemake.output.sha256, digest)
