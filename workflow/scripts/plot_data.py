"""plot_data: the population response raster and example tuning curves (with the simulator's
true curves when the dataset is simulated)."""

from v1rsa import io, provenance
from v1rsa.figures import data, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
trials = io.read_netcdf(snakemake.input.trials, ["response"], {"response": ("trial", "neuron")})
conditions = io.read_netcdf(snakemake.input.conditions, ["response"],
                            {"response": ("condition", "neuron")})
neuron_tuning = io.read_netcdf(snakemake.input.tuning, ["preferred_orientation", "snr"])
truth = io.read_netcdf(snakemake.input.truth) if snakemake.input.truth else None
figures = data.data_figures(trials, conditions, neuron_tuning, truth,
                           n_examples=params.n_examples, bin_width_deg=params.bin_width_deg)
style.save_figures(figures, dict(snakemake.output.items()), dpi=params.dpi, provenance=made_with,
                   note=snakemake.params.note)
