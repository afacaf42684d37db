"""run_record: the config files, code and packages that made the run's outputs (report page)."""

from v1rsa import io, provenance, report
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record({"config_files": snakemake.params.config_files})
run = provenance.run_record(snakemake.input.outputs, config=snakemake.params.config,
                            config_files=snakemake.params.config_files)
io.write_json(run, snakemake.output.json, provenance=made_with)
io.write_text(report.run_record_page(run, made_with), snakemake.output.html)
