"""bench/rsa.py's scaling table runs end to end on a tiny problem, and its GPU timing (here on
torch's CPU device) checks the products against numpy's; the lead runs it on a GPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_rsa", Path(__file__).resolve().parents[1] / "bench" / "rsa.py")
bench_rsa = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_rsa)


def test_the_scaling_table_runs_on_a_tiny_problem(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [
        "rsa.py", "--conditions", "12", "--bootstrap", "20", "--permutations", "30",
        "--candidates-list", "3", "--recordings-list", "1", "2", "--pairwise-candidates", "3",
        "--group-candidates", "3", "--skip-rsatoolbox"])
    bench_rsa.main()
    out = capsys.readouterr().out
    assert "rsa_table + pairwise, 3 candidates, pearson + spearman" in out
    assert "group: 2 recording(s) x 3 candidates, dual bootstrap, Pearson" in out
    assert "floors: float64 matrix product" in out


def test_device_products_agree_with_numpy():
    pytest.importorskip("torch")
    lines = bench_rsa.cuda_products("cpu", 20, 5, 16, 2000)
    assert len(lines) == 2
    for line in lines:
        assert float(line.rsplit(" ", 1)[1]) < 1e-10  # max relative difference
