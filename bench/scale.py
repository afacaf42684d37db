"""How the data stages scale: simulate -> zscore -> V1 RDM, from 2,000 to 100,000 neurons.

    python bench/scale.py                                   # the 3 x 3 table (minutes, ~11 GB)
    python bench/scale.py --sizes 2000x1000 23589x4598      # some cells only
    python bench/scale.py --workdir /big/disk --keep        # where the files go (24 GB at most)

Each cell (N neurons x T trials, seed 0) runs the workflow's own adapter scripts
(workflow/scripts/simulate.py, zscore.py, rdm_v1.py) with the params the rules pass
(config/config.yaml; the dataset layout is raw_hdf5, so simulate streams and zscore reads a
block of neurons at a time). Each stage runs in a fresh Python process: its wall and CPU time
are taken inside the process around the script (imports excluded), its peak RSS from the
kernel (VmHWM of /proc/self/status at its end: exact, not sampled; it includes the imports).
Cells run one at a time, smallest first; their files are deleted after each cell unless --keep.

Binning: 1-degree bins (the default config: 180 V1 conditions in 0..180 degrees) when
T >= 4000; 6-degree bins (30 conditions, the smoke config's) for smaller T, where 1-degree bins
would hold fewer trials than folds. The V1 RDM is timed as the rule makes it by default
(correlation: the RDM of all trials plus one per fold) and with ``rdm.method: crossvalidated``.
RSA (rsa_table on the V1 RDM; its cost depends on the number of conditions, candidates and
draws, not on N or T) and the rule's CKA (which reads V1's responses: n_conditions^2 x N) run
once, on the largest cell with 1-degree bins.

Floors, measured at the start of the same run on the same machine: memory bandwidth (a
1 GiB numpy copy), file write (1 GiB, buffered; and with fsync), file read (page cache; and
cold, after posix_fadvise DONTNEED on that file only), and the float64 Gram matrix ``x @ x.T``
of the RDM's shape (the BLAS call the correlation RDM makes). A stage's floor is the bytes it
must move divided by those rates (plus the Gram products for RDMs); bench/README.md lists the
bytes counted. Expected growth: linear in N*T for simulate and zscore, conditions^2 x N for
RDMs; the table shows each cell's time relative to the first cell beside that model's ratio.
Columns: cond = V1 conditions in the RDM; t/t0 = wall time over the first cell's, model = the
same ratio of N*T (simulate, zscore) or cond^2*N (RDMs); ns/unit = wall time per value of N*T
or per cond^2*N. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
NEURONS = (2000, 23589, 100000)
TRIALS = (1000, 4598, 20000)
N_SPONT_FRAMES = 910
GIB = 2**30
MIB = 2**20


# --------------------------------------------------------------------------- the child process


class _Namedlist(list):
    """What a script sees as ``snakemake.input`` etc.: a list whose items also have names."""

    def __init__(self, named: dict):
        super().__init__(named.values())
        self.__dict__.update(named)


class _Snakemake:
    def __init__(self, spec: dict):
        self.input = _Namedlist(spec.get("input", {}))
        self.output = _Namedlist(spec["output"])
        self.params = _Namedlist(spec["params"])
        self.log = _Namedlist({"log": spec["log"]})
        self.threads = spec.get("threads", 1)


def _rsa_stage(spec: dict) -> None:
    """rsa_table and cka_table as the rsa rule calls them, on the V1 RDM of one cell against
    candidate RDMs from the simulator's noise-free responses (disjoint neuron subsets)."""
    import xarray as xr

    from v1rsa import io, rdm, rsa, simulate

    config = spec["params"]
    v1 = io.read_netcdf(spec["input"]["v1"], ["rdm"])
    conditions = rdm.select_conditions(io.read_netcdf(spec["input"]["conditions"]),
                                       **config["conditions"])
    truth = xr.load_dataset(spec["input"]["truth"], engine=io.ENGINE)
    shown_deg = conditions["orientation"].values - config["conditions"]["shift_deg"]
    expected = simulate.expected_response(truth, shown_deg)  # (condition, neuron)
    subsets = np.array_split(np.random.default_rng(0).permutation(expected.shape[1]),
                             config["n_candidates"])
    candidates = {f"truth/subset{i}": rdm.correlation_distance(expected[:, subset])
                  for i, subset in enumerate(subsets)}
    activations = {"truth/seed0": xr.Dataset({
        f"subset{i}": ((("condition", f"subset{i}_unit")), expected[:, subset])
        for i, subset in enumerate(subsets)})}
    timings = {}
    start = time.perf_counter()
    rsa.rsa_table(v1["rdm"].values, v1["rdm_fold"].values, candidates, config["comparators"],
                  **config["statistics"], n_threads=spec["threads"])
    timings["rsa_table"] = time.perf_counter() - start
    start = time.perf_counter()
    rsa.cka_table(conditions["response"].values, activations)
    timings["cka_table"] = time.perf_counter() - start
    Path(spec["output"]["timings"]).write_text(json.dumps(timings))


def run_child(spec_path: str) -> None:
    """Run one stage (a workflow script, or the RSA calls) and record its wall time."""
    spec = json.loads(Path(spec_path).read_text())
    # the modules the scripts import, loaded before the clock starts
    import h5py  # noqa: F401
    import xarray  # noqa: F401

    from v1rsa import io, load, logs, preprocess, rdm, simulate  # noqa: F401

    baseline_kib = _peak_rss_kib()
    cpu_start, start = time.process_time(), time.perf_counter()
    if spec["name"] == "rsa":
        _rsa_stage(spec)
    else:
        runpy.run_path(str(SCRIPTS / spec["script"]), init_globals={"snakemake": _Snakemake(spec)},
                       run_name="__main__")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    Path(spec["result"]).write_text(json.dumps({"wall_s": wall, "cpu_s": cpu,
                                                "peak_rss_kib": _peak_rss_kib(),
                                                "baseline_rss_kib": baseline_kib}))


def _peak_rss_kib() -> int:
    """The kernel's high-water mark of this process's resident memory (VmHWM), in KiB.

    Exact, not sampled. Not ``ru_maxrss``: after fork + exec that also holds the parent's
    peak, which the forked copy inherited.
    """
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


# --------------------------------------------------------------------------- the parent process


def run_stage(spec: dict, folder: Path) -> dict:
    """Run ``spec`` in a fresh Python; return its wall/CPU time and peak RSS (MiB)."""
    name = spec["name"]
    spec = {**spec, "result": str(folder / f"{name}.result.json"),
            "log": str(folder / "logs" / f"{name}.log")}
    spec_path = folder / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    with open(folder / f"{name}.out", "w") as out:
        process = subprocess.run([sys.executable, __file__, "--child", str(spec_path)],
                                 stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    if process.returncode != 0:
        raise RuntimeError(f"stage {name} failed ({process.returncode}); see {folder / name}.out "
                           f"and {spec['log']}:\n{(folder / f'{name}.out').read_text()[-3000:]}")
    result = json.loads(Path(spec["result"]).read_text())
    return {"wall_s": result["wall_s"], "cpu_s": result["cpu_s"],
            "peak_rss_mib": result["peak_rss_kib"] / 1024,
            "baseline_mib": result["baseline_rss_kib"] / 1024}


def _best_seconds(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_floors(folder: Path, n_conditions: int, neuron_counts) -> dict:
    """Rates of this machine now: GB/s (1e9 bytes) of memory copy and file I/O, and the
    seconds of the float64 Gram product x @ x.T and x @ y.T of shape (n_conditions, N)."""
    source = np.random.default_rng(0).random(GIB // 8)
    target = np.zeros_like(source)
    rates = {"copy": GIB / _best_seconds(lambda: np.copyto(target, source)) / 1e9}
    target = None
    path = folder / "floor.bin"
    write, write_sync, read_cached, read_cold = [], [], [], []
    buffer = bytearray(GIB)
    for _ in range(2):
        start = time.perf_counter()
        with open(path, "wb") as file:
            file.write(memoryview(source).cast("B"))
            write.append(time.perf_counter() - start)
            file.flush()
            os.fsync(file.fileno())
        write_sync.append(time.perf_counter() - start)
        with open(path, "rb", buffering=0) as file:
            start = time.perf_counter()
            file.readinto(buffer)
            read_cached.append(time.perf_counter() - start)
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        with open(path, "rb", buffering=0) as file:
            start = time.perf_counter()
            file.readinto(buffer)
            read_cold.append(time.perf_counter() - start)
    path.unlink()
    rates.update(write=GIB / min(write) / 1e9, write_fsync=GIB / min(write_sync) / 1e9,
                 read_cached=GIB / min(read_cached) / 1e9, read_cold=GIB / min(read_cold) / 1e9)
    # best of several calls on 1 and on 2 BLAS threads: on a shared machine a threaded BLAS
    # call can stall for a scheduler tick waiting for its other thread
    gram, cross = {}, {}
    rng = np.random.default_rng(1)
    for n_neurons in sorted(set(neuron_counts)):
        x = rng.standard_normal((n_conditions, n_neurons))
        y = rng.standard_normal((n_conditions, n_neurons))
        gram[n_neurons], cross[n_neurons] = np.inf, np.inf
        for n_threads in (1, 2):
            with threadpool_limits(n_threads, user_api="blas"):
                gram[n_neurons] = min(gram[n_neurons], _best_seconds(lambda x=x: x @ x.T, 7))
                cross[n_neurons] = min(cross[n_neurons],
                                       _best_seconds(lambda x=x, y=y: x @ y.T, 7))
    rates["gflops_gram"] = {n: n_conditions**2 * n / t / 1e9 for n, t in gram.items()}
    rates["gflops_gemm"] = {n: 2 * n_conditions**2 * n / t / 1e9 for n, t in cross.items()}
    return rates


def n_selected_conditions(bin_width_deg: float, rdm_conditions: dict) -> int:
    centres = (np.arange(round(360 / bin_width_deg)) + 0.5) * bin_width_deg
    return int(np.sum((centres >= rdm_conditions["min_deg"])
                      & (centres <= rdm_conditions["max_deg"])))


def floor_seconds(stage: str, n: int, t: int, n_cond: int, n_folds: int, rates: dict) -> float:
    """Bytes a stage must move over the measured rates (bench/README.md says which bytes)."""
    gb = 1e9
    if stage == "simulate":  # sresp written once; the spontaneous frames to scratch and back
        return (n * t * 8 / (rates["write"] * gb) + n * N_SPONT_FRAMES * 8 / (rates["write"] * gb)
                + n * N_SPONT_FRAMES * 8 / (rates["read_cached"] * gb)
                + n * t * 8 / (rates["copy"] * gb))
    if stage == "zscore":  # raw read twice (sha256, z-scoring), trials written, binning reads
        return (2 * n * t * 8 / (rates["read_cached"] * gb) + n * t * 4 / (rates["write"] * gb)
                + (n * t * 8 + n * t * 4 + (1 + n_folds) * n * t * 4) / (rates["copy"] * gb))
    n_values = (1 + n_folds) * 360 * n  # conditions.nc: response and response_fold, float32
    read = n_values * 4 / (rates["read_cached"] * gb)
    if stage == "rdm_v1":  # one Gram matrix per RDM: all trials and each fold
        return read + (1 + n_folds) * n_cond**2 * n / (rates["gflops_gram"][n] * gb)
    if stage == "rdm_v1_crossvalidated":  # x_a @ x_b.T per pair of folds
        pairs = n_folds * (n_folds - 1) // 2
        return read + pairs * 2 * n_cond**2 * n / (rates["gflops_gemm"][n] * gb)
    raise ValueError(stage)


def expected_growth(stage: str, n: int, t: int, n_cond: int) -> float:
    return float(n) * t if stage in ("simulate", "zscore") else float(n_cond) ** 2 * n


def run_cell(n: int, t: int, config: dict, folder: Path, threads: int) -> list[dict]:
    """simulate -> zscore -> rdm_v1 (correlation and crossvalidated) for one cell."""
    name = f"n{n}_t{t}"
    cell = folder / name
    cell.mkdir(parents=True, exist_ok=True)
    binning = {**config["binning"], "bin_width_deg": 1 if t >= 4000 else 6}
    raw, truth = cell / "raw.h5", cell / "ground_truth.nc"
    trials, conditions = cell / "trials.nc", cell / "conditions.nc"
    simulate_params = {"n_neurons": n, "n_trials": t, "seed": 0}
    stages = [
        {"name": "simulate", "script": "simulate.py",
         "output": {"raw": str(raw), "truth": str(truth)},
         "params": {"layout": "raw_hdf5", "simulate": simulate_params}},
        {"name": "zscore", "script": "zscore.py", "input": {"raw": str(raw)},
         "output": {"trials": str(trials), "conditions": str(conditions)},
         "params": {"layout": "raw_hdf5", "source": f"simulate {json.dumps(simulate_params)}",
                    "preprocess": config["preprocess"], "binning": binning}},
        {"name": "rdm_v1", "script": "rdm_v1.py", "input": {"conditions": str(conditions)},
         "output": {"rdm": str(cell / "rdm_v1.nc")}, "threads": threads,
         "params": {"method": "correlation", "conditions": config["rdm"]["conditions"]}},
        {"name": "rdm_v1_crossvalidated", "script": "rdm_v1.py",
         "input": {"conditions": str(conditions)}, "threads": threads,
         "output": {"rdm": str(cell / "rdm_v1_crossvalidated.nc")},
         "params": {"method": "crossvalidated", "conditions": config["rdm"]["conditions"]}},
    ]
    n_cond = n_selected_conditions(binning["bin_width_deg"], config["rdm"]["conditions"])
    rows = []
    for spec in stages:
        print(f"  {name}: {spec['name']} ...", end="", flush=True)
        measured = run_stage(spec, cell)
        print(f" {measured['wall_s']:.1f} s, {measured['peak_rss_mib']:.0f} MiB", flush=True)
        rows.append({"stage": spec["name"], "n": n, "t": t, "n_cond": n_cond,
                     "n_folds": binning["n_folds"], **measured})
    return rows


def rsa_once(cell: Path, config: dict, threads: int) -> dict:
    spec = {"name": "rsa", "threads": threads,
            "input": {"v1": str(cell / "rdm_v1.nc"), "conditions": str(cell / "conditions.nc"),
                      "truth": str(cell / "ground_truth.nc")},
            "output": {"timings": str(cell / "rsa_timings.json")},
            "params": {"conditions": config["rdm"]["conditions"], "n_candidates": 6,
                       "comparators": config["rsa"]["comparators"],
                       "statistics": {key: config["rsa"][key] for key in
                                      ("n_bootstrap", "n_permutations", "seed", "ci_level")}}}
    measured = run_stage(spec, cell)
    return {**measured, **json.loads((cell / "rsa_timings.json").read_text())}


def machine_description(folder: Path) -> str:
    from threadpoolctl import threadpool_info

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    total_gib = int(meminfo["MemTotal"].split()[0]) / 2**20
    available_gib = int(meminfo["MemAvailable"].split()[0]) / 2**20
    blas = ", ".join(f"{info['internal_api']} {info.get('version')} ({info['num_threads']} "
                     "threads)" for info in threadpool_info() if info["user_api"] == "blas")
    disk = shutil.disk_usage(folder)
    import h5py

    return (f"{cpu}, {os.cpu_count()} cores, {total_gib:.1f} GiB RAM "
            f"({available_gib:.1f} GiB available at start), load average "
            f"{os.getloadavg()[0]:.2f}; {platform.platform()}; Python {platform.python_version()}, "
            f"numpy {np.__version__} ({blas}), h5py {h5py.__version__} (HDF5 "
            f"{h5py.version.hdf5_version}); work folder {folder} "
            f"({disk.free / 1e9:.0f} GB free)")


def format_table(rows: list[dict], rates: dict) -> str:
    first = {}
    for row in rows:
        first.setdefault(row["stage"], row)
    header = (f"{'stage':<22}{'N':>7}{'T':>6}{'cond':>5}{'wall s':>8}{'cpu s':>8}"
              f"{'peak RSS MiB':>13}{'floor s':>8}{'wall/floor':>11}{'t/t0':>7}{'model':>7}"
              f"{'ns/unit':>8}")
    lines = [header, "-" * len(header)]
    for row in rows:
        stage, n, t, n_cond = row["stage"], row["n"], row["t"], row["n_cond"]
        floor = floor_seconds(stage, n, t, n_cond, row["n_folds"], rates)
        base = first[stage]
        growth = row["wall_s"] / base["wall_s"]
        model = (expected_growth(stage, n, t, n_cond)
                 / expected_growth(stage, base["n"], base["t"], base["n_cond"]))
        per_unit_ns = row["wall_s"] / expected_growth(stage, n, t, n_cond) * 1e9
        lines.append(f"{stage:<22}{n:>7}{t:>6}{n_cond:>5}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}"
                     f"{row['peak_rss_mib']:>13.0f}{floor:>8.2f}{row['wall_s'] / floor:>11.1f}"
                     f"{growth:>7.1f}{model:>7.1f}{per_unit_ns:>8.2f}")
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    try:
        n, t = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NxT, e.g. 2000x1000, got {text!r}") from None
    return n, t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=parse_size,
                        default=[(n, t) for n in NEURONS for t in TRIALS],
                        help="cells as NxT (default: the 3 x 3 grid of 2,000 / 23,589 / "
                             "100,000 neurons by 1,000 / 4,598 / 20,000 trials)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the cells' files go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep every cell's files")
    parser.add_argument("--threads", type=int, default=2, help="threads of rdm_v1 and rsa "
                        "(the rules' threads)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    folder = Path(tempfile.mkdtemp(prefix="v1rsa-scale-", dir=args.workdir))
    sizes = sorted(set(args.sizes), key=lambda size: (size[0] * size[1], size))
    command = "python bench/scale.py " + " ".join(sys.argv[1:])
    print(f"command: {command.strip()}")
    print(f"machine: {machine_description(folder)}", flush=True)
    rates = measure_floors(folder, 180, [n for n, _ in sizes])
    print("floors: memory copy {copy:.1f} GB/s; file write {write:.2f} GB/s buffered, "
          "{write_fsync:.2f} GB/s with fsync; file read {read_cached:.2f} GB/s from the page "
          "cache, {read_cold:.2f} GB/s cold".format(**rates))
    print("float64 Gram x @ x.T of (180, N): " + ", ".join(
        f"N={n}: {g:.1f} GFLOP/s" for n, g in rates["gflops_gram"].items())
        + "; x @ y.T: " + ", ".join(f"{g:.1f}" for g in rates["gflops_gemm"].values()), flush=True)

    rows, rsa_result, rsa_cell = [], None, None
    for n, t in sizes:
        rows += run_cell(n, t, config, folder, args.threads)
        cell = folder / f"n{n}_t{t}"
        if t >= 4000:  # the largest cell with 1-degree bins so far: keep it for RSA
            if rsa_cell is not None and not args.keep:
                shutil.rmtree(rsa_cell)
            rsa_cell, rsa_n_cond = cell, rows[-1]["n_cond"]
            for big in ("raw.h5", "trials.nc"):
                if not args.keep:
                    (cell / big).unlink()
        elif not args.keep:
            shutil.rmtree(cell)
    if rsa_cell is not None:
        print(f"  rsa on {rsa_cell.name} ...", flush=True)
        rsa_result = rsa_once(rsa_cell, config, args.threads)

    print()
    print(format_table(rows, rates))
    if rsa_result is not None:
        rsa = config["rsa"]
        print(f"\nrsa (once, {rsa_cell.name}: {rsa_n_cond} conditions, 6 candidate RDMs, "
              f"{len(rsa['comparators'])} comparators, {rsa['n_bootstrap']} bootstrap samples, "
              f"{rsa['n_permutations']} permutations, {args.threads} threads): rsa_table "
              f"{rsa_result['rsa_table']:.2f} s, cka_table {rsa_result['cka_table']:.2f} s, "
              f"stage {rsa_result['wall_s']:.2f} s, peak RSS {rsa_result['peak_rss_mib']:.0f} MiB")
    print(f"\nimport baseline of a stage process: "
          f"{np.median([row['baseline_mib'] for row in rows]):.0f} MiB; "
          f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.keep:
        print(f"files kept in {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
