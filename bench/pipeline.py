"""Time the whole pipeline from a clean results/ folder, per rule and end to end.

    python bench/pipeline.py                          # the default config (full size)
    python bench/pipeline.py --configfile config/smoke.yaml

Runs the workflow in a temporary copy of the repository, then prints each job's wall time, CPU
time and peak memory from Snakemake's `benchmark:` files, the end-to-end wall time, and the time
of a no-op rerun (`snakemake` when everything is up to date), and the longest chain of jobs
each using the last one's output: no number of cores finishes the run sooner than its sum. With
--startup, also each job's
start-up: the time a fresh Python takes to run its script's imports, before any work (the part of
a job that fewer or larger jobs would save). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run_snakemake(workdir: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def benchmark_table(workdir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        record = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"job": str(path.relative_to(workdir / "benchmarks").with_suffix("")),
                     "wall_s": record["s"], "cpu_s": record["cpu_time"],
                     "max_rss_mb": record["max_rss"]})
    return pd.DataFrame(rows).sort_values("wall_s", ascending=False)


def rule_scripts(workdir: Path) -> dict[str, str]:
    """The script of each rule (``use rule a as b`` inherits a's), from workflow/rules/*.smk."""
    scripts, aliases = {}, []
    for path in sorted((workdir / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):(.*?)(?=^\S|\Z)", text, re.M | re.S):
            script = re.search(r'script:\s*"([^"]+)"', match.group(2))
            if script:
                scripts[match.group(1)] = (path.parent / script.group(1)).resolve()
        aliases.extend(re.findall(r"^use rule (\w+) as (\w+)", text, re.M))
    scripts.update({alias: scripts[rule] for rule, alias in aliases if rule in scripts})
    return {rule: str(script) for rule, script in scripts.items()}


def logged_jobs(workdir: Path) -> list[dict]:
    """The jobs of the run's first Snakemake log, in the order they started: each job's rule,
    input and output files, and benchmark name (None for a job without a benchmark file)."""
    log = sorted((workdir / ".snakemake" / "log").glob("*.log"))[0].read_text()
    jobs = []
    for block in re.split(r"^(?:local)?rule ", log, flags=re.M)[1:]:
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
        benchmark = fields.get("benchmark")
        jobs.append({
            "rule": block.split(":", 1)[0],
            "input": set(fields.get("input", "").split(", ")) - {""},
            "output": set(fields.get("output", "").split(", ")) - {""},
            "benchmark": (str(Path(benchmark).relative_to("benchmarks").with_suffix(""))
                          if benchmark else None),
        })
    return jobs


def job_rules(workdir: Path) -> dict[str, str]:
    """The rule of each benchmark file."""
    return {job["benchmark"]: job["rule"] for job in logged_jobs(workdir) if job["benchmark"]}


def longest_chain(workdir: Path, table: pd.DataFrame) -> list[tuple[str, float]]:
    """The chain of jobs, each using the previous one's output, whose wall times sum highest:
    (rule, wall time) from first to last. However many cores, a run takes at least its sum.
    Jobs without a benchmark file (the local rules) count zero."""
    wall = dict(zip(table["job"], table["wall_s"], strict=True))
    jobs = logged_jobs(workdir)  # in the order they started: every job after its inputs' jobs
    producer, ends = {}, []  # ends[i]: (the longest chain's sum up to job i, the job before i)
    for i, job in enumerate(jobs):
        before = max({producer[f] for f in job["input"] if f in producer},
                     key=lambda j: ends[j][0], default=None)
        ends.append((wall.get(job["benchmark"], 0.0) + (ends[before][0] if before is not None
                                                          else 0.0), before))
        producer.update(dict.fromkeys(job["output"], i))
    chain, i = [], max(range(len(jobs)), key=lambda j: ends[j][0])
    while i is not None:
        if jobs[i]["benchmark"]:
            chain.append((jobs[i]["rule"], wall[jobs[i]["benchmark"]]))
        i = ends[i][1]
    return chain[::-1]


def startup_seconds(script: str, workdir: Path, repeats: int = 2) -> float:
    """Wall time of a fresh Python running the top-level imports of ``script`` (best of
    ``repeats``), with the thread settings Snakemake gives a one-thread job."""
    tree = ast.parse(Path(script).read_text())
    imports = [ast.unparse(node) for node in tree.body
               if isinstance(node, ast.Import)
               or isinstance(node, ast.ImportFrom) and node.module != "__future__"]
    env = {**os.environ, **{name: "1" for name in
                            ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "\n".join(imports)], cwd=workdir, env=env, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def add_startup(table: pd.DataFrame, workdir: Path) -> pd.DataFrame:
    scripts, rules = rule_scripts(workdir), job_rules(workdir)
    per_script = {}
    for job in table["job"]:
        script = scripts[rules[job]]
        if script not in per_script:
            per_script[script] = startup_seconds(script, workdir)
    return table.assign(startup_s=[per_script[scripts[rules[job]]] for job in table["job"]])


def copy_workflow(workdir: Path) -> None:
    """Copy the workflow (Snakefile, config/, workflow/) into ``workdir``, to run it there."""
    for name in ("Snakefile", "config", "workflow"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)


def print_report(workdir: Path, table: pd.DataFrame, cold: float, noop: float | None,
                 config: str) -> None:
    """Print the per-job table, the sums, the longest chain and the end-to-end times."""
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; config: {config}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"\njobs: {len(table)}; sum of job wall times: {table['wall_s'].sum():.1f} s")
    if "startup_s" in table:
        print(f"start-up (each job's imports in a fresh Python): {table['startup_s'].sum():.1f} s "
              "of that sum")
    chain = longest_chain(workdir, table)
    print(f"longest chain of jobs (no number of cores finishes sooner): "
          f"{sum(wall for _, wall in chain):.1f} s, "
          + " → ".join(f"{rule} {wall:.1f}" for rule, wall in chain))
    print(f"end to end, cold: {cold:.1f} s")
    if noop is not None:
        print(f"no-op rerun: {noop:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=None, help="extra config file (e.g. smoke)")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    parser.add_argument("--startup", action="store_true",
                        help="also time each job's start-up (its script's imports)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="v1rsa-bench-"))
    copy_workflow(workdir)
    snakemake_args = ["--cores", args.cores]
    if args.configfile:
        # absolute: Snakemake runs in the temporary copy, which has config/ but not bench/
        snakemake_args += ["--configfile", str(Path(args.configfile).resolve())]

    cold = run_snakemake(workdir, snakemake_args)
    noop = run_snakemake(workdir, snakemake_args)
    table = benchmark_table(workdir)
    if args.startup:
        table = add_startup(table, workdir)

    print_report(workdir, table, cold, noop, args.configfile or "config/config.yaml")
    if args.keep:
        print(f"run folder kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
