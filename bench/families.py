"""What a variant of a family of networks costs: adding N variants to a finished run.

    python bench/families.py                                   # smoke config, 8 variants
    python bench/families.py --variants 16 --configfile config/config.yaml

Runs the workflow in a temporary copy of the repository without any family (cold), then adds a
family of N variants of the normative CNN (its hidden units, so every variant trains as long as
the normative CNN) and runs again: only the variants' jobs and the summaries run. Prints the
second run's end-to-end time per variant, each job kind's mean wall time per variant (training,
extraction, RDM) with its start-up (the script's imports in a fresh Python), and how much the
jobs that see every network (rsa, leaderboard, the figures) grew. Not a test: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import (  # noqa: E402
    copy_workflow,
    rule_scripts,
    run_snakemake,
    startup_seconds,
)

PER_VARIANT = ("train_normative", "activations", "rdm")
#: the jobs that see every network, by their benchmark file's name under benchmarks/{dataset}/
SUMMARIES = {"rsa": "rsa", "leaderboard": "leaderboard", "plot_families": "figures/families",
             "plot_rsa": "figures/rsa"}


def benchmarks(workdir: Path) -> pd.DataFrame:
    """Every benchmark file's last record: job (its path), wall and CPU seconds."""
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        record = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"job": str(path.relative_to(workdir / "benchmarks").with_suffix("")),
                     "wall_s": float(record["s"]), "cpu_s": float(record["cpu_time"])})
    return pd.DataFrame(rows).set_index("job")


def family_config(n_variants: int, seeds: int) -> str:
    """A family of ``n_variants`` variants of the normative CNN (hidden 11, 12, …)."""
    hidden = ", ".join(str(11 + i) for i in range(n_variants))
    seed_list = ", ".join(str(i) for i in range(seeds))
    return (f"families:\n  bench:\n    network: normative\n    grid: {{hidden: [{hidden}]}}\n"
            f"    seeds: [{seed_list}]\nrun_families: [bench]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/smoke.yaml")
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="v1rsa-bench-families-"))
    copy_workflow(workdir)
    (workdir / "none.yaml").write_text("run_families: []\n")
    (workdir / "family.yaml").write_text(family_config(args.variants, args.seeds))
    base = ["--cores", args.cores, "--configfile", str(Path(args.configfile).resolve())]

    cold = run_snakemake(workdir, [*base, "none.yaml"])
    before = benchmarks(workdir)
    added = run_snakemake(workdir, [*base, "family.yaml"])
    after = benchmarks(workdir)
    new = after.loc[[job for job in after.index if job not in before.index
                     or after.loc[job, "wall_s"] != before.loc[job, "wall_s"]]]
    n_networks = args.variants * args.seeds

    scripts = rule_scripts(workdir)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; config: {args.configfile}; --cores {args.cores}")
    print(f"without a family, cold: {cold:.1f} s")
    print(f"adding {args.variants} variants x {args.seeds} seed(s) = {n_networks} networks: "
          f"{added:.1f} s end to end, {added / n_networks:.2f} s per network\n")
    rows = []
    for rule in PER_VARIANT:
        jobs = [job for job in new.index if "/bench-" in job and (
            (rule == "train_normative" and job.startswith("models/"))
            or (rule != "train_normative" and f"/{rule}/" in job))]
        rows.append({"job": f"{rule} (per network)", "n": len(jobs),
                     "wall_s": new.loc[jobs, "wall_s"].mean(),
                     "cpu_s": new.loc[jobs, "cpu_s"].mean(),
                     "startup_s": startup_seconds(scripts[rule], workdir)})
    for rule, name in SUMMARIES.items():
        for job in (job for job in new.index if job.partition("/")[2] == name):
            earlier = before.loc[job, "wall_s"] if job in before.index else float("nan")
            rows.append({"job": f"{rule} (once)", "n": 1, "wall_s": new.loc[job, "wall_s"],
                         "cpu_s": new.loc[job, "cpu_s"], "startup_s": float("nan"),
                         "without_family_s": earlier})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    per_network = table.iloc[:len(PER_VARIANT)]
    print(f"\nper network, job time: {per_network['wall_s'].sum():.2f} s, of which start-up "
          f"{per_network['startup_s'].sum():.2f} s")
    if args.keep:
        print(f"run folder kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
