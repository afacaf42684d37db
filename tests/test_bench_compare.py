"""bench/compare.py: how speed changes are checked not to change results, so it must not miss
a difference nor invent one."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from v1rsa import training

SPEC = importlib.util.spec_from_file_location(
    "bench_compare", Path(__file__).resolve().parents[1] / "bench" / "compare.py")
compare_module = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(compare_module)


def write_run(root: Path, *, r2: float, error: float, response: np.ndarray, png: bytes,
              extra: bool = False, bias: float = 0.0, units: str = "deg") -> Path:
    results = root / "results" / "synthetic"
    (results / "models").mkdir(parents=True)
    (results / "models" / "metrics.json").write_text(json.dumps(
        {"n_neurons": 5, "scores": {"median_r2": r2, "per_fold": [0.1, 0.2]}, "name": "encoder"}))
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.fill_(bias)
    # as save_state_dict once did: to a temporary path, whose name torch writes into the file
    torch.save(layer.state_dict(), results / "models" / f"{root.name}.pt")
    (results / "models" / f"{root.name}.pt").rename(results / "models" / "model.pt")
    fixed = torch.nn.Linear(2, 2)
    torch.nn.init.ones_(fixed.weight), torch.nn.init.zeros_(fixed.bias)
    training.save_state_dict(fixed, results / "models" / "same_weights.pt")
    (results / "models" / "same.json").write_text(json.dumps({"a": 1.5}))
    pd.DataFrame({"label": ["x", "y"], "error_deg": [2.0, error]}).to_csv(
        results / "table.tsv", sep="\t", index=False)
    xr.Dataset({"response": (("trial", "neuron"), response)},
               coords={"trial": [0, 1], "neuron": [0, 1, 2]}).to_netcdf(
        results / "trials.nc", engine="h5netcdf")
    xr.Dataset({"angle": ("trial", [1.0, 2.0], {"units": units})}).to_netcdf(
        results / "angles.nc", engine="h5netcdf")
    (results / "figure.png").write_bytes(png)
    if extra:
        (results / "extra.tsv").write_text("a\n1\n")
    return root


def test_compare_finds_each_difference_and_where_it_is(tmp_path):
    response = np.arange(6, dtype=np.float32).reshape(2, 3)
    changed = response.copy()
    changed[1, 2] += 0.25
    run_a = write_run(tmp_path / "a", r2=0.5, error=3.0, response=response, png=b"\x89PNG-a")
    run_b = write_run(tmp_path / "b", r2=0.5 + 1e-6, error=3.5, response=changed,
                      png=b"\x89PNG-b", extra=True, bias=0.125, units="rad")

    table = compare_module.compare(run_a, run_b).set_index("file")

    assert table.loc["synthetic/models/same.json", "status"] == "identical"
    assert table.loc["synthetic/extra.tsv", "status"] == "only in B"
    metrics = table.loc["synthetic/models/metrics.json"]
    assert metrics["status"] == "differs" and metrics["where"] == "scores.median_r2"
    assert math.isclose(metrics["largest_difference"], 1e-6, rel_tol=1e-6)
    tsv = table.loc["synthetic/table.tsv"]
    assert (tsv["where"], tsv["largest_difference"]) == ("error_deg", 0.5)
    netcdf = table.loc["synthetic/trials.nc"]
    assert (netcdf["where"], netcdf["largest_difference"]) == ("response", 0.25)
    assert table.loc["synthetic/angles.nc", "where"] == "angle (attributes)"
    assert table.loc["synthetic/angles.nc", "largest_difference"] == math.inf
    weights = table.loc["synthetic/models/model.pt"]
    assert (weights["where"], weights["largest_difference"]) == ("bias", 0.125)
    assert table.loc["synthetic/models/same_weights.pt", "status"] == "identical"
    figure = table.loc["synthetic/figure.png"]
    assert figure["status"] == "differs" and figure["largest_difference"] == math.inf
    assert figure["where"] == "not a readable PNG"
    # results/ folders themselves are accepted too, and a run equals itself
    same = compare_module.compare(run_a / "results", run_a)
    assert set(same["status"]) == {"identical"} and len(same) == 8


def test_compare_tells_other_bytes_with_the_same_numbers(tmp_path):
    """torch.save names the archive's folder after the file: other bytes, the same weights."""
    run_a = write_run(tmp_path / "a", r2=0.5, error=3.0, response=np.zeros((2, 3)), png=b"p")
    run_b = write_run(tmp_path / "run_b", r2=0.5, error=3.0, response=np.zeros((2, 3)), png=b"p")
    (run_b / "results" / "synthetic" / "models" / "metrics.json").write_text(json.dumps(
        {"name": "encoder", "n_neurons": 5.0,
         "scores": {"median_r2": 0.5, "per_fold": [0.1, 0.2]}}))
    for run in (run_a, run_b):  # NaN (json writes it) equals NaN
        metrics = run / "results" / "synthetic" / "models" / "metrics.json"
        metrics.write_text(metrics.read_text()[:-1] + ', "ceiling": NaN}')

    table = compare_module.compare(run_a, run_b).set_index("file")

    assert table.loc["synthetic/models/model.pt", "status"] == "same numbers"
    assert table.loc["synthetic/models/metrics.json", "status"] == "same numbers"
    assert (table.drop(["synthetic/models/model.pt", "synthetic/models/metrics.json"])["status"]
            == "identical").all()


def test_compare_reports_changed_shapes_and_missing_numbers_as_infinite(tmp_path):
    run_a = write_run(tmp_path / "a", r2=0.5, error=3.0, response=np.zeros((2, 3)), png=b"p")
    run_b = write_run(tmp_path / "b", r2=0.5, error=3.0, response=np.zeros((2, 3)), png=b"p")
    results_b = run_b / "results" / "synthetic"
    pd.DataFrame({"label": ["x"], "error_deg": [2.0]}).to_csv(
        results_b / "table.tsv", sep="\t", index=False)
    (results_b / "models" / "metrics.json").write_text(json.dumps(
        {"n_neurons": 5, "scores": {"median_r2": 0.5, "per_fold": [0.1, 0.2]}, "name": "mlp"}))

    table = compare_module.compare(run_a, run_b).set_index("file")

    assert table.loc["synthetic/table.tsv", "largest_difference"] == math.inf
    assert table.loc["synthetic/table.tsv", "where"] == "rows: 2 vs 1"
    assert table.loc["synthetic/models/metrics.json", "largest_difference"] == math.inf
    assert table.loc["synthetic/models/metrics.json", "where"] == "name"


def test_netcdf_variables_are_compared_block_by_block_to_the_last_row():
    a = xr.DataArray(np.zeros((10, 7), dtype=np.float32))
    b = a.copy()
    b[9, 6] = 2.5
    assert compare_module._variable_difference(a, b, block=7) == 2.5  # one row per block
    assert compare_module._variable_difference(a, a.copy(), block=7) == 0.0


def test_outputs_that_differ_only_in_their_provenance_have_the_same_numbers(tmp_path):
    """Runs at two commits write the same numbers into files whose bytes differ (the record of
    the commit); real pixel changes are still found."""
    from v1rsa import io
    from v1rsa.figures import style

    def run(name, commit, pixel):
        made_with = {"commit": commit, "packages": {"numpy": "2"}, "settings": {}}
        results = tmp_path / name / "results"
        io.write_json({"r2": 0.5}, results / "metrics.json", provenance=made_with)
        io.write_netcdf(xr.Dataset({"x": ("i", [1.0, 2.0])}), results / "x.nc", made_with)
        for figure, value in (("same", 0.5), ("changed", pixel)):
            fig, axes = style.figure(1.0, width_in=1.0)
            axes[0, 0].imshow([[value, 1.0]], vmin=0, vmax=1)
            style.save(fig, results / f"{figure}.png", provenance=made_with, dpi=50)
        return tmp_path / name

    table = compare_module.compare(run("a", "abc", 0.0), run("b", "def", 1.0)).set_index("file")

    for name in ("metrics.json", "x.nc", "same.png"):
        assert table.loc[name, "status"] == "same numbers", name
    assert table.loc["changed.png", "status"] == "differs"
    assert table.loc["changed.png", "where"] == "pixels"
