"""gratings: a set of the course's gratings at random angles in (-90, 90), labelled by tilt."""

import numpy as np

from v1rsa import io, provenance, stimuli
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
params = snakemake.params
angles = stimuli.random_tilt_orientations(params.n, np.random.default_rng(params.seed))
stimulus_set = stimuli.stimulus_set(
    angles, sf=params.sf, res=params.res, labels=stimuli.tilt_labels(angles)
)
io.write_netcdf(stimulus_set, snakemake.output[0], provenance=made_with)
