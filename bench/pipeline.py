"""Time the whole pipeline from a clean results/ folder, per rule and end to end.

    python bench/pipeline.py                          # the default config (full size)
    python bench/pipeline.py --configfile config/smoke.yaml

Runs the workflow in a temporary copy of the repository, then prints each job's wall time, CPU
time and peak memory from Snakemake's `benchmark:` files, the end-to-end wall time, and the time
of a no-op rerun (`snakemake` when everything is up to date). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=None, help="extra config file (e.g. smoke)")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="v1rsa-bench-"))
    for name in ("Snakefile", "config", "workflow"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)
    snakemake_args = ["--cores", args.cores]
    if args.configfile:
        snakemake_args += ["--configfile", args.configfile]

    cold = run_snakemake(workdir, snakemake_args)
    noop = run_snakemake(workdir, snakemake_args)
    table = benchmark_table(workdir)

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; config: {args.configfile or 'config/config.yaml'}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"\njobs: {len(table)}; sum of job wall times: {table['wall_s'].sum():.1f} s")
    print(f"end to end, cold: {cold:.1f} s")
    print(f"no-op rerun: {noop:.1f} s")
    if args.keep:
        print(f"run folder kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
