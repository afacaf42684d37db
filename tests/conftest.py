"""Fixtures for the workflow tests: a copy of the workflow in a temporary folder, and snakemake."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config", "workflow")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (Snakefile, config, workflow/) into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the snakemake CLI in ``workdir``; on failure show its output in the assertion."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def correlation_rdm(patterns):
    """1 − Pearson correlation between the rows of patterns (n_conditions, n_units), symmetric
    with a zero diagonal: the tests' reference, in numpy alone."""
    import numpy as np

    rdm = 1 - np.corrcoef(patterns)
    rdm = (rdm + rdm.T) / 2
    np.fill_diagonal(rdm, 0)
    return rdm


def peak_traced_bytes(function) -> int:
    """Peak bytes allocated through Python and numpy while ``function`` runs (tracemalloc)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: on a busy shared CPU, extra torch threads only wait on each other."""
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, pytestconfig) -> Path:
    """A finished run of config/smoke.yaml in a temporary copy of the workflow (read-only)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    started = time.perf_counter()
    snakemake(workdir, "--configfile", "config/smoke.yaml")
    pytestconfig.stash[SMOKE_RUN] = workdir, time.perf_counter() - started
    return workdir


SMOKE_RUN = pytest.StashKey[tuple[Path, float]]()


def pytest_terminal_summary(terminalreporter, config):
    """Nothing gets slower in silence: the smoke run's per-job and end-to-end times (2 cores,
    cold), as bench/pipeline.py prints them, after the tests that made it."""
    if SMOKE_RUN not in config.stash:
        return
    workdir, seconds = config.stash[SMOKE_RUN]
    spec = importlib.util.spec_from_file_location("bench_pipeline", REPO / "bench" / "pipeline.py")
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    terminalreporter.section("the smoke run of the tests, timed (bench/pipeline.py)")
    with contextlib.redirect_stdout(io.StringIO()) as report:
        pipeline.print_report(workdir, pipeline.benchmark_table(workdir), seconds, None,
                              "config/smoke.yaml, the tests' smoke_run")
    terminalreporter.write(report.getvalue())


@pytest.fixture
def smoke_copy(smoke_run, tmp_path) -> Path:
    """A private copy of the finished smoke run (outputs, metadata and mtimes kept) to change."""
    dest = tmp_path / "run"
    shutil.copytree(smoke_run, dest, symlinks=True)
    return dest
