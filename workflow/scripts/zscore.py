"""zscore: raw recording -> z-scored trials (trials.nc) and orientation bins (conditions.nc)."""

from v1rsa import io, load, preprocess, provenance
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
checksum = load.file_sha256(snakemake.input.raw)
if params.layout in load.RAW_LAYOUTS:
    # raw_hdf5 is read a block of neurons at a time; raw (.npy) is read whole
    with load.open_raw(snakemake.input.raw, params.layout) as raw:
        trials = preprocess.preprocess(
            raw, **params.preprocess, source=params.source, checksum=checksum
        )
    del raw
    conditions = preprocess.bin_conditions(trials, **params.binning)
else:
    conditions = load.load_binned(snakemake.input.raw, params.layout)
    conditions.attrs.update(source=params.source, checksum=checksum)
    trials = load.binned_as_trials(conditions)
io.write_netcdf(trials, snakemake.output.trials, provenance=made_with)
io.write_netcdf(conditions, snakemake.output.conditions, provenance=made_with)
