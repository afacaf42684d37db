"""download: fetch a published file through pooch, check it, and record its hash."""

from v1rsa import download
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
digest = download.fetch(
    snakemake.params.url,
    snakemake.output.raw,
    snakemake.params.known_hash,
    retries=snakemake.params.retries,
)
download.write_hash_record(snakemake.output.sha256, digest)
