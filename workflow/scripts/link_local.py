"""link_local: check a file the user already has and link it into resources/."""

from v1rsa import download
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
digest = download.link_local(
    snakemake.params.path, snakemake.output.raw, snakemake.params.known_hash
)
download.write_hash_record(snakemake.output.sha256, digest)
