"""v1rsa: compare deep networks with mouse primary visual cortex (V1).

The library behind the Snakemake workflow. Modules are named after the science:
``simulate``, ``load``, ``download``, ``preprocess``, ``stimuli``, ``decoders``, ``normative``,
``encoding``, ``activations``, ``rdm``, ``rsa``; ``io`` holds the on-disk contracts.
"""

__version__ = "0.1.0"
