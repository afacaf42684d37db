"""plot_normative: the tilt CNN's filters before and after training, its loss and accuracy."""

import json
from pathlib import Path

import pandas as pd

from v1rsa import activations, provenance, stimuli
from v1rsa.figures import normative, style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
inputs = snakemake.input
metrics = json.loads(Path(inputs.metrics).read_text())
network = activations.load_network("normative", inputs.metrics, inputs.model)
figures = normative.normative_figures(
    stimuli.handmade_filters(),
    network.conv.weight.detach().cpu().numpy()[:, 0],
    pd.read_csv(inputs.history, sep="\t"),
    metrics.get("test_accuracy"),
    handmade_init=metrics["architecture"].get("handmade_init", True),
)
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
