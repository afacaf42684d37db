"""bench/pipeline.py reads Snakemake's log for each job's rule and files: the longest chain of
jobs it reports bounds the run on any number of cores, so it must follow the real dependencies."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_pipeline", Path(__file__).resolve().parents[1] / "bench" / "pipeline.py")
pipeline = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(pipeline)

# Snakemake's log of one run: job blocks as Snakemake 9 writes them, unindented lines between.
LOG = """\
Building DAG of jobs...
Execute 2 jobs...
[Sat Nov 28 12:09:14 2026]
localrule make_data:
    input: workflow/src/v1rsa/io.py
    output: results/data.nc, results/conditions.nc
    log: logs/data.log
    jobid: 1
    benchmark: benchmarks/data.tsv
    reason: Missing output files: results/data.nc
    resources: tmpdir=/tmp
localrule gratings:
    output: results/stimuli/tilt.nc
    jobid: 2
Finished jobid: 1 (Rule: make_data)
localrule slow:
    input: results/conditions.nc
    output: results/slow.pt
    jobid: 3
    benchmark: benchmarks/slow.tsv
    wildcards: dataset=synthetic, seed=0
localrule fast:
    input: results/data.nc, results/stimuli/tilt.nc
    output: results/fast.pt
    jobid: 4
    benchmark: benchmarks/fast.tsv
localrule figure:
    input: results/slow.pt, results/fast.pt
    output: results/figure.png
    jobid: 5
    benchmark: benchmarks/figures/figure.tsv
localrule all:
    input: results/figure.png
    jobid: 0
"""


def test_the_longest_chain_follows_the_files_jobs_share(tmp_path):
    (tmp_path / ".snakemake" / "log").mkdir(parents=True)
    (tmp_path / ".snakemake" / "log" / "2026-11-28T120913.snakemake.log").write_text(LOG)
    table = pd.DataFrame({"job": ["data", "slow", "fast", "figures/figure"],
                          "wall_s": [2.0, 9.0, 3.0, 1.0]})
    assert pipeline.job_rules(tmp_path) == {"data": "make_data", "slow": "slow", "fast": "fast",
                                            "figures/figure": "figure"}
    assert pipeline.longest_chain(tmp_path, table) == [("make_data", 2.0), ("slow", 9.0),
                                                       ("figure", 1.0)]
    # a faster slow job: the chain goes through the other branch
    table.loc[table["job"] == "slow", "wall_s"] = 0.5
    assert pipeline.longest_chain(tmp_path, table) == [("make_data", 2.0), ("fast", 3.0),
                                                       ("figure", 1.0)]


@pytest.mark.workflow
def test_a_real_runs_log_names_every_benchmarked_job_and_its_chain(smoke_run):
    table = pipeline.benchmark_table(smoke_run)
    assert set(pipeline.job_rules(smoke_run)) == set(table["job"])
    chain = pipeline.longest_chain(smoke_run, table)
    rules = [rule for rule, _ in chain]
    # it starts at one of the run's roots: the recording, or a network trained on the gratings
    # (a local rule); which one depends on how long each took
    assert rules[0] in ("simulate", "train_normative", "train_encoder"), rules
    assert rules[-1] == "run_record", rules  # the record of the run waits for every output
    assert rules[-2].startswith("plot_") or rules[-2] in ("receptive_fields", "rsa_tables"), rules
    assert sum(wall for _, wall in chain) >= table["wall_s"].max()
