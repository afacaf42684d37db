"""bench/gpu.py's checks, on CPU runs: a GPU run must be caught when it did not train on CUDA
or strays beyond the stated tolerances."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

SPEC = importlib.util.spec_from_file_location(
    "bench_gpu", Path(__file__).resolve().parents[1] / "bench" / "gpu.py")
gpu = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu)

pytestmark = pytest.mark.workflow


def copy_results(smoke_run: Path, dest: Path) -> Path:
    """The files bench/gpu.py compares, from a finished smoke run."""
    for folder in ("results/models", "results/smoke/rsa", "benchmarks"):
        shutil.copytree(smoke_run / folder, dest / folder)
    return dest


def test_two_runs_that_agree_pass_and_every_number_is_compared(smoke_run):
    table, failures = gpu.compare_runs(smoke_run, smoke_run, expect_device="cpu")
    assert failures == []
    assert set(table["network"]) == {"normative", "encoder", "smoke-base", "smoke-blocks2",
                                     "smoke-epochs0"}
    assert {"test_accuracy", "best_score", "similarity_pool2"} <= set(table["quantity"])
    untrained = table[table["network"] == "smoke-epochs0"]
    assert set(untrained["tolerance_key"]) == {"test_accuracy", "similarity_untrained",
                                               "best_score_untrained"}
    assert (table["difference"] == 0).all()
    times = gpu.job_times(smoke_run, smoke_run)
    assert (times["cuda_over_cpu"] == 1).all() and "models/smoke-base/seed0" in set(times["job"])


def test_a_run_that_did_not_train_on_cuda_or_strays_is_caught(smoke_run, tmp_path):
    other = copy_results(smoke_run, tmp_path / "other")
    _, failures = gpu.compare_runs(smoke_run, other)  # trained on the CPU, not on CUDA
    assert len(failures) == 4 and all("trained on 'cpu', not on cuda" in f for f in failures)

    seeds = other / "results" / "smoke" / "rsa" / "leaderboard_seeds.tsv"
    table = pd.read_csv(seeds, sep="\t")
    trained = (table["network"] == "smoke-blocks2") & (table["comparator"] == "pearson")
    table.loc[trained, "similarity_pool2"] += 0.06  # beyond 0.05
    untrained = (table["network"] == "smoke-epochs0") & (table["comparator"] == "spearman")
    table.loc[untrained, "similarity_fc"] += 3e-3  # beyond 2e-3
    table.to_csv(seeds, sep="\t", index=False)
    weights = other / "results" / "models" / "smoke-epochs0" / "seed0" / "model.pt"
    state = torch.load(weights, weights_only=True)
    state["out.bias"] += 1e-6
    torch.save(state, weights)
    for path in (other / "results" / "models").glob("*/seed*/metrics.json"):
        metrics = json.loads(path.read_text())
        path.write_text(json.dumps({**metrics, "device": "cuda:0"}))

    _, failures = gpu.compare_runs(smoke_run, other)
    assert len(failures) == 3, failures
    assert {failure.split(":")[0] for failure in failures} == {
        "smoke-blocks2/seed0 pearson similarity_pool2", "smoke-epochs0/seed0 spearman "
        "similarity_fc", "smoke-epochs0/seed0"}
    assert "smoke-epochs0/seed0: untrained, yet its weights differ" in failures
    assert any(failure.endswith("|difference| 0.06 > 0.05") for failure in failures)
