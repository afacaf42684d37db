"""plot_decoders: every decoder's test predictions and errors, training curves and first-layer
weights, on one kind of data (trials or conditions)."""

import json
from pathlib import Path

import pandas as pd

from v1rsa import decoders, io, provenance, training
from v1rsa.figures import decoders as decoder_figures
from v1rsa.figures import style
from v1rsa.logs import log_to_file

log_to_file(snakemake.log[0])
made_with = provenance.record(snakemake.params)
inputs, names = snakemake.input, snakemake.params.names
metrics = {n: json.loads(Path(p).read_text()) for n, p in zip(names, inputs.metrics, strict=True)}
models = {n: training.load_state_dict(decoders.build_decoder(**metrics[n]["architecture"]), p)
          for n, p in zip(names, inputs.models, strict=True)}
predictions = {n: pd.read_csv(p, sep="\t") for n, p in zip(names, inputs.predictions, strict=True)}
predictions["ridge"] = pd.read_csv(inputs.ridge, sep="\t")
neuron_tuning = io.read_netcdf(inputs.tuning, ["preferred_orientation"])
figures = decoder_figures.decoder_figures(
    predictions,
    histories={n: pd.read_csv(p, sep="\t") for n, p in zip(names, inputs.histories, strict=True)},
    kinds={n: m["kind"] for n, m in metrics.items()},
    weights={n: m.in_layer.weight.detach().cpu().numpy() for n, m in models.items()},
    preferred_deg=neuron_tuning["preferred_orientation"].values,
    periods={n: m.period for n, m in models.items()},
)
style.save_figures(figures, dict(snakemake.output.items()), dpi=snakemake.params.dpi,
                   provenance=made_with,
                   note=snakemake.params.note)
