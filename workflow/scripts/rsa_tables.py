"""rsa_tables: rsa.tsv and cka.tsv as rounded HTML tables for the report."""

import pandas as pd

from v1rsa import io, provenance, report
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
pages = {
    snakemake.output.table: report.rsa_table_page(pd.read_csv(snakemake.input.table, sep="\t"),
                                                  made_with),
    snakemake.output.cka: report.cka_table_page(pd.read_csv(snakemake.input.cka, sep="\t"),
                                                made_with),
}
for path, page in pages.items():
    io.write_text(page, path)
