"""link_local: check a file the user already has, link it into resources/, record its hash."""

from v1rsa import download
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
users_file = snakemake.input[0]
digest = download.link_local(users_file, snakemake.output.raw, **snakemake.params.settings)
download.write_hash_record(snakemake.output.sha256, digest, source=users_file)
