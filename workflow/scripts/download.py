"""download: fetch a published file, check it (pin, layout), and record its hash."""

from v1rsa import download
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
url = snakemake.params.url
digest = download.fetch(url, snakemake.output.raw, **snakemake.params.settings)
download.write_hash_record(snakemake.output.sha256, digest, source=url)
