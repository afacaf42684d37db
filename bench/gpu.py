"""The smoke family on a GPU and on the CPU: did training run on CUDA, do the results agree?

    PYTHONPATH=$PWD/workflow/src:<snakemake and friends> python bench/gpu.py

Runs the smoke config up to the leaderboard and the family figures twice, in two temporary
copies of the workflow: with ``device: cpu`` and with ``device: cuda``. Then:

- checks that every network trained on the tilt task (the normative CNN and each variant of the
  smoke family) trained on CUDA: the device its training wrote in metrics.json;
- compares the two runs within the tolerances in :data:`TOLERANCES` (training on a GPU takes
  other rounding paths, and 8 epochs of SGD with momentum carry the differences along; the
  untrained variant never trains, so its weights must be the same bits and its similarities
  equal up to the rounding of the forward pass, TF32 convolutions included);
- prints each job's wall time on both, side by side.

Writes ``summary.json``, ``times.tsv``, ``comparison.tsv``, both leaderboards and the CUDA run's
accuracy-vs-similarity figure under ``$OUT`` when it is set. Exits 1 when a check fails. Needs
torch with CUDA, numpy, pandas, xarray, h5netcdf and snakemake importable (nothing is
installed). Whole script: about a minute on 16 cores. Not a test; its comparison is tested on
two CPU runs (tests/test_bench_gpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import copy_workflow  # noqa: E402

#: What the runs make: the leaderboard (every network's RDMs, the tilt networks' metrics) and
#: the family figures.
TARGETS = ("results/smoke/rsa/leaderboard.tsv", "results/smoke/figures/families/accuracy.png")
#: Largest |CUDA − CPU| allowed, per quantity.
TOLERANCES = {
    # 0.05 of ~290 held-out gratings: 14 answers
    "test_accuracy": 0.05,
    # similarity with V1 of a trained network's layer, and its cross-validated best score
    "similarity_trained": 0.05,
    "best_score_trained": 0.05,
    # the untrained variant: the same weights, a forward pass rounded differently (on Ampere
    # and newer GPUs, cuDNN convolutions use TF32 by default: 10-bit mantissas, ~1e-3 relative)
    "similarity_untrained": 2e-3,
    "best_score_untrained": 2e-3,
}


def run_workflow(workdir: Path, device: str, cores: int) -> float:
    """A copy of the workflow in ``workdir`` run with ``device``; returns its wall time."""
    copy_workflow(workdir)
    (workdir / "device.yaml").write_text(f"device: {device}\n")
    # the targets before --configfile, which takes every argument after it as a config file
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *TARGETS,
               "--configfile", "config/smoke.yaml", "device.yaml"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"snakemake with device {device} failed in {workdir}:\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return seconds


def tilt_devices(run: Path) -> dict[str, str]:
    """The device each network trained on the tilt task used: ``{network/seed: device}``."""
    return {str(path.parent.relative_to(run / "results" / "models")):
            json.loads(path.read_text()).get("device", "unknown")
            for path in sorted((run / "results" / "models").glob("*/seed*/metrics.json"))}


def job_times(cpu: Path, cuda: Path) -> pd.DataFrame:
    """Each job's wall time in both runs (Snakemake's benchmark files), the slowest first."""
    def read(run):
        return {str(path.relative_to(run / "benchmarks").with_suffix("")):
                float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
                for path in (run / "benchmarks").rglob("*.tsv")}
    cpu_times, cuda_times = read(cpu), read(cuda)
    table = pd.DataFrame({"job": sorted(set(cpu_times) | set(cuda_times))})
    table["cpu_s"] = table["job"].map(cpu_times)
    table["cuda_s"] = table["job"].map(cuda_times)
    table["cuda_over_cpu"] = table["cuda_s"] / table["cpu_s"]
    return table.sort_values("cpu_s", ascending=False, ignore_index=True)


def _differences(cpu: Path, cuda: Path) -> pd.DataFrame:
    """One row per compared number: the network, seed, comparator, quantity, both values."""
    def read(run):
        return pd.read_csv(run / "results" / "smoke" / "rsa" / "leaderboard_seeds.tsv",
                           sep="\t").set_index(["network", "seed", "comparator"])
    cpu_table, cuda_table = read(cpu), read(cuda)
    if set(cpu_table.index) != set(cuda_table.index):
        missing = set(cpu_table.index) ^ set(cuda_table.index)
        raise ValueError(f"the leaderboards list different networks: {sorted(missing)}")
    columns = ["test_accuracy", "best_score",
               *[c for c in cpu_table.columns if c.startswith("similarity_")]]
    rows = []
    for key, cpu_row in cpu_table.iterrows():
        cuda_row = cuda_table.loc[key]
        untrained = str(cpu_row.get("untrained", False)).lower() == "true"
        for column in columns:
            a, b = float(cpu_row[column]), float(cuda_row[column])
            if np.isnan(a) and np.isnan(b):
                continue
            kind = column if column == "test_accuracy" else (
                ("similarity" if column.startswith("similarity_") else column)
                + ("_untrained" if untrained else "_trained"))
            rows.append({"network": key[0], "seed": key[1], "comparator": key[2],
                         "quantity": column, "tolerance_key": kind, "cpu": a, "cuda": b,
                         "difference": abs(a - b), "tolerance": TOLERANCES[kind]})
    return pd.DataFrame(rows)


def _same_weights(cpu: Path, cuda: Path, network: str) -> bool:
    import torch

    def load(run):
        return torch.load(run / "results" / "models" / network / "model.pt", weights_only=True)
    first, second = load(cpu), load(cuda)
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def compare_runs(cpu: Path, cuda: Path, *, expect_device: str = "cuda") -> tuple[
        pd.DataFrame, list[str]]:
    """Compare a CPU run with a CUDA run of the smoke family.

    Returns the table of compared numbers and the list of failures (empty when every check
    passed): a tilt network of the second run that did not train on ``expect_device``, a number
    outside its tolerance (:data:`TOLERANCES`; NaN in one run only counts), an untrained
    variant whose weights are not the same bits, a network missing from one leaderboard.
    """
    failures = []
    for name, device in tilt_devices(cuda).items():
        if not device.startswith(expect_device):
            failures.append(f"{name} trained on {device!r}, not on {expect_device}")
    try:
        table = _differences(cpu, cuda)
    except ValueError as error:
        return pd.DataFrame(), [*failures, str(error)]
    bad = table[~(table["difference"] <= table["tolerance"])]
    failures += [f"{row.network}/seed{row.seed} {row.comparator} {row.quantity}: cpu {row.cpu:.6g}"
                 f", cuda {row.cuda:.6g}, |difference| {row.difference:.3g} > {row.tolerance:g}"
                 for row in bad.itertuples()]
    untrained = table.loc[table["tolerance_key"].str.endswith("_untrained"), ["network", "seed"]]
    for network, seed in untrained.drop_duplicates().itertuples(index=False):
        if not _same_weights(cpu, cuda, f"{network}/seed{seed}"):
            failures.append(f"{network}/seed{seed}: untrained, yet its weights differ")
    return table, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cuda", help="the device to compare with the CPU")
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available to torch here: nothing to compare", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="v1rsa-gpu-"))
    seconds = {}
    for device in ("cpu", args.device):
        seconds[device] = run_workflow(root / device.replace(":", "_"), device, args.cores)
        print(f"{device}: {seconds[device]:.1f} s end to end", flush=True)
    cpu, cuda = root / "cpu", root / args.device.replace(":", "_")
    times = job_times(cpu, cuda)
    table, failures = compare_runs(cpu, cuda, expect_device=args.device.split(":")[0])
    print(f"\ntorch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}, "
          f"{args.cores} cores")
    print(times.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"\ndevices of the tilt networks' training: {tilt_devices(cuda)}")
    if len(table):
        worst = (table.assign(share=table["difference"] / table["tolerance"])
                 .sort_values("share", ascending=False).groupby("tolerance_key").head(1))
        print("\nlargest |cuda − cpu| per quantity (tolerance):")
        print(worst[["tolerance_key", "network", "seed", "comparator", "quantity", "cpu", "cuda",
                     "difference", "tolerance"]].to_string(index=False))
    print("\n" + ("every check passed" if not failures else
                  "FAILED:\n  " + "\n  ".join(failures)))
    out = os.environ.get("OUT")
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        times.to_csv(out / "times.tsv", sep="\t", index=False)
        table.to_csv(out / "comparison.tsv", sep="\t", index=False)
        for name, run in (("cpu", cpu), ("cuda", cuda)):
            shutil.copy(run / "results" / "smoke" / "rsa" / "leaderboard.tsv",
                        out / f"leaderboard_{name}.tsv")
        shutil.copy(cuda / "results" / "smoke" / "figures" / "families" / "accuracy.png",
                    out / "accuracy_cuda.png")
        (out / "summary.json").write_text(json.dumps({
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "cores": args.cores, "end_to_end_s": seconds, "devices": tilt_devices(cuda),
            "tolerances": TOLERANCES, "failures": failures}, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
