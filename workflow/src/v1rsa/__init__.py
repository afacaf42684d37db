"""v1rsa: compare deep networks with mouse primary visual cortex (V1).

The library behind the Snakemake workflow, usable on its own. Modules are named after the stage
of the science they serve, in the order of the pipeline:

- ``simulate``: the embedded simulator of a Stringer et al. (2021) grating recording;
- ``download``: fetch a published recording (pooch) or take a local copy, checked by hash;
- ``load``: read the published layouts safely (allow-list unpickler, ``.npz``, HDF5);
- ``preprocess``: spontaneous normalisation, PC removal, z-scoring, orientation bins and folds;
- ``tuning``: single-neuron tuning curves, preferred orientation and held-out SNR;
- ``stimuli``: the course's gratings and hand-made filters;
- ``decoding``: what every decoder shares, and the ridge decoder of Stringer et al. (no torch);
- ``decoders``: the course's torch decoders (MLP regression, classifier, circular);
- ``normative``: the course's tilt CNN, of one or more conv blocks (their layout, without torch:
  ``blocks``);
- ``families``: families of networks: variants of a base network, their names and checks;
- ``encoding``: the encoding model (grating image → every neuron);
- ``training``: what every trained network shares: device, seeding, history, checkpoints;
- ``activations``: layer activations of any torch module, one's own networks included;
- ``receptive_fields``: receptive fields of network units by occlusion with noise;
- ``rdm``: representational dissimilarity matrices, and conversion to and from rsatoolbox;
- ``rsa``: comparators, bootstrap, permutation tests, noise ceilings and the RSA table;
- ``figures``: every figure, drawn into given Axes in one style;
- ``io``: the on-disk contracts (atomic writes, checked reads of NetCDF4);
- ``provenance``: the package versions, commit and settings that each output records;
- ``report``: the report's pages besides figures (the RSA and CKA tables, the run record);
- ``logs``: a stage's log file and its progress; ``sources``: the library files a workflow
  script runs; ``config_checks``: the workflow's config checked before any job runs.

``rdm``, ``rsa``, ``figures``, ``io`` and the data stages need only the base install (numpy,
scipy, xarray, pandas, numba, matplotlib); the networks need the ``workflow`` extra (torch).
"""

__version__ = "0.1.0"
