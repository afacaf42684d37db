"""The workflow on a SLURM cluster through workflow/profiles/slurm.

The cluster tests need a running SLURM with accounting (`sacct`), two partitions `cpu` and `gpu`
and a GRES "gpu", as tests/slurm/start.sh makes on this machine:

    eval "$(tests/slurm/start.sh)"; python -m pytest -q tests/test_slurm.py; tests/slurm/stop.sh

They run the smoke config's RSA summaries (every network's training, activations and RDM, one
decoder) through `snakemake --workflow-profile workflow/profiles/slurm` in a temporary copy, and,
at the same time, a one-rule test workflow whose job fails on its first attempt; then they read
what SLURM recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import xarray as xr

from conftest import REPO, copy_workflow, snakemake

PROFILE = "workflow/profiles/slurm"
#: the provenance record of an HTML page (v1rsa.provenance.html_meta)
META = r'<meta name="provenance" content="[^"]*">'
TRAINING_AND_EXTRACTION = {"train_decoder", "train_normative", "train_encoder", "activations"}
# What the one-node test cluster needs different from the shipped profile: a status check two
# seconds after each submission instead of forty.
TEST_OPTIONS = ("--slurm-init-seconds-before-status-checks", "2")
RUN_TIMEOUT_S = 900
#: config/smoke.yaml's family of networks
SMOKE_FAMILY = ("smoke-base", "smoke-blocks2", "smoke-epochs0")
#: What the cluster run makes of the smoke config: the dataset's summaries (the RSA, its tables
#: and figures, the leaderboard and its figures), hence every network's training, activations and
#: RDM, and one decoder; not the other decoders, the figures of single stages or the report,
#: whose jobs are of the same kinds (their time is counted: each cluster job costs seconds)
SLURM_TARGETS = ("results/smoke/rsa/leaderboard.tsv", "results/smoke/rsa/rsa.html",
                 "results/smoke/figures/rsa/rsa.png", "results/smoke/figures/families/depth.png",
                 "results/smoke/models/decoder_mlp/trials/seed4/metrics.json")


def rules_declaring_a_gpu() -> set[str]:
    """Rules whose resources say gpu=gpu_request(), read from workflow/rules/*.smk."""
    names = set()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        rules = re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", path.read_text(), re.M | re.S)
        names.update(name for name, body in rules if "gpu=gpu_request()" in body)
    assert names >= TRAINING_AND_EXTRACTION
    return names


def slurm_unavailable() -> str | None:
    """Why the cluster tests cannot run here, or None when SLURM answers."""
    if shutil.which("sbatch") is None:
        return "sbatch not found: SLURM is not installed (see tests/slurm/start.sh)"
    try:
        result = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=10)
    except (subprocess.TimeoutExpired, OSError) as error:
        result = SimpleNamespace(returncode=1, stderr=str(error))
    if result.returncode != 0:
        return (f"SLURM is not running (sinfo: {result.stderr.strip()[-300:]}); "
                'start it with: eval "$(tests/slurm/start.sh)"')
    return None


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """Start the snakemake CLI in ``workdir`` with the SLURM profile; output to ``run.log``."""
    command = [sys.executable, "-m", "snakemake", "--workflow-profile", PROFILE, *TEST_OPTIONS,
               *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with open(workdir / "run.log", "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                env=env)


def stop(process: subprocess.Popen) -> None:
    """Stop a snakemake run that is still going, cancelling its SLURM jobs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # SIGINT (not SIGTERM) makes snakemake scancel jobs
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def finish(process: subprocess.Popen, workdir: Path, deadline: float) -> str:
    """Wait for a run started by start_snakemake (stop it at the deadline); return its output."""
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        stop(process)
    output = (workdir / "run.log").read_text()
    if process.returncode != 0:
        raise AssertionError(
            f"snakemake on SLURM in {workdir} failed ({process.returncode}):\n{output[-8000:]}"
        )
    return output


def sacct_jobs(workdir: Path, since: datetime) -> list[dict]:
    """The SLURM jobs submitted from ``workdir`` since ``since``, as sacct records them."""
    fields = ["JobID", "State", "Partition", "AllocTRES", "Comment", "WorkDir"]
    result = subprocess.run(
        ["sacct", "--allusers", "--allocations", "--parsable2", "--noheader",
         "--starttime", since.strftime("%Y-%m-%dT%H:%M:%S"), "--format", ",".join(fields)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    jobs = [dict(zip(fields, line.split("|"), strict=True))
            for line in result.stdout.splitlines() if line]
    jobs = [job for job in jobs if Path(job["WorkDir"]) == workdir.resolve()]
    for job in jobs:
        # the plugin's comment: rule_{rule}[_wildcards_{values}]; a group job's "rule" is named
        # after its group and its first five rules, then "..." (snakemake's GroupJob.name)
        job["rule"] = re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", job["Comment"]).group(1)
    return sorted(jobs, key=lambda job: int(job["JobID"]))


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory) -> SimpleNamespace:
    """The smoke config and the fails-once workflow, run on SLURM at the same time."""
    reason = slurm_unavailable()
    if reason:
        if os.environ.get("V1RSA_SLURM_DIR"):  # start.sh was run: a dead SLURM is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    main = copy_workflow(tmp_path_factory.mktemp("slurm_smoke"))
    # device auto: training and extraction jobs ask SLURM for a GPU; torch finds none and trains
    # on the CPU, as the local run with device cpu does
    (main / "device.yaml").write_text("device: auto\n")
    retry = tmp_path_factory.mktemp("slurm_retry")
    shutil.copy(REPO / "tests" / "slurm" / "fails_once.smk", retry / "Snakefile")
    shutil.copytree(REPO / PROFILE, retry / PROFILE)

    since = datetime.now() - timedelta(seconds=5)
    started = time.monotonic()
    deadline = started + RUN_TIMEOUT_S
    processes = {
        "main": start_snakemake(main, *SLURM_TARGETS, "--configfile", "config/smoke.yaml",
                                "device.yaml"),
        "retry": start_snakemake(retry),
    }
    try:
        outputs = {name: finish(process, main if name == "main" else retry, deadline)
                   for name, process in processes.items()}
    finally:  # when one run failed, the other may still be going
        for process in processes.values():
            stop(process)
    return SimpleNamespace(
        main=main, main_output=outputs["main"], main_jobs=sacct_jobs(main, since),
        retry=retry, retry_output=outputs["retry"], retry_jobs=sacct_jobs(retry, since),
        seconds=time.monotonic() - started,
    )


def group_jobs(output: str) -> list[tuple[str, Counter, set[str]]]:
    """Every group job snakemake sent to the executor: its group, the rules of its jobs and the
    datasets of their outputs (results/{dataset}/...)."""
    groups = []
    for block in re.split(r"^.*Group job ", output, flags=re.MULTILINE)[1:]:
        group = re.match(r"(\w+) \(", block).group(1)
        lines = block.splitlines()[1:]
        # up to snakemake's next message (the executor's lines may come in between)
        end = next((i for i, line in enumerate(lines) if re.match(r"\S", line)
                    and not line.startswith(("Shell command", "Auto-selected partition"))),
                   len(lines))
        members = "\n".join(lines[:end])
        groups.append((group,
                       Counter(re.findall(r"^    rule (\w+):$", members, flags=re.MULTILINE)),
                       set(re.findall(r"^        output: results/(\w+)/", members,
                                      flags=re.MULTILINE))))
    return groups


def submitted_rules(output: str) -> Counter:
    """Rule name of every job snakemake sent to the executor ("rule X:"; "localrule X:" stays)."""
    return Counter(re.findall(r"^rule (\w+):$", output, flags=re.MULTILINE))


@pytest.mark.slurm
def test_every_job_of_the_smoke_run_is_one_slurm_job_and_the_summaries_one(slurm_runs):
    print(f"SLURM runs took {slurm_runs.seconds:.0f} s")
    jobs, output = slurm_runs.main_jobs, slurm_runs.main_output
    expected = submitted_rules(output)
    # the normative CNN and each of the smoke family's three variants
    assert expected["train_normative"] == 1 + len(SMOKE_FAMILY) and expected["train_encoder"] == 1
    assert "gratings" not in expected and "all" not in expected  # local rules
    # the dataset's summaries went out as one group job (their rules are listed under "Group job
    # rsa"); each network's RDM is a job of its own
    groups = group_jobs(output)
    assert [(group, datasets) for group, _, datasets in groups] == [("rsa", {"smoke"})]
    [(_, summaries, _)] = groups
    assert summaries == Counter({"rdm_v1": 1, "rsa": 1, "rsa_tables": 1, "plot_rsa": 1,
                                 "leaderboard": 1, "plot_families": 1})
    assert not set(summaries) & set(expected)
    rdms = list((slurm_runs.main / "results" / "smoke" / "rdms").rglob("seed*.nc"))
    assert expected["rdm"] == len(rdms) == 2 + len(SMOKE_FAMILY)
    # the plugin names a group job's SLURM job after the group and its rules
    group_slurm_jobs = [job for job in jobs if job["rule"] not in expected]
    assert len(group_slurm_jobs) == len(groups)
    assert all(job["rule"].startswith("rsa_") for job in group_slurm_jobs)
    assert Counter(job["rule"] for job in jobs if job not in group_slurm_jobs) == expected
    # one SLURM job per snakemake job (a group job's comment has no wildcards)
    single = [job["Comment"] for job in jobs if job not in group_slurm_jobs]
    assert len(set(single)) == len(single)
    assert {job["State"] for job in jobs} == {"COMPLETED"}


@pytest.mark.slurm
def test_gpu_jobs_get_a_gpu_on_the_gpu_partition_and_the_rest_none(slurm_runs):
    jobs = slurm_runs.main_jobs
    gpu_rules = rules_declaring_a_gpu()
    assert {job["rule"] for job in jobs} >= TRAINING_AND_EXTRACTION
    for job in jobs:
        gpus = re.search(r"gres/gpu=(\d+)", job["AllocTRES"])
        if job["rule"] in gpu_rules:
            assert gpus and gpus.group(1) == "1", job
            assert job["Partition"] == "gpu", job  # chosen through partitions.yaml
        else:
            assert gpus is None, job
            assert job["Partition"] == "cpu", job


@pytest.mark.slurm
def test_each_variant_of_a_family_trains_and_is_read_in_its_own_gpu_job(slurm_runs):
    jobs = slurm_runs.main_jobs
    for rule in ("train_normative", "activations"):
        for network in SMOKE_FAMILY:
            # the plugin's comment joins the job's wildcard values with _
            [job] = [job for job in jobs if job["rule"] == rule
                     and network in job["Comment"].partition("_wildcards_")[2].split("_")]
            assert re.search(r"gres/gpu=1", job["AllocTRES"]) and job["Partition"] == "gpu", job


@pytest.mark.slurm
def test_slurm_outputs_equal_a_local_run(slurm_runs, request):
    smoke_run = request.getfixturevalue("smoke_run")  # after slurm_runs, which may skip
    local, cluster = smoke_run / "results", slurm_runs.main / "results"
    files = sorted(path.relative_to(cluster) for path in cluster.rglob("*") if path.is_file())
    # the targets' part of the local run
    assert {Path(target).relative_to("results") for target in SLURM_TARGETS} <= set(files)
    assert all((local / path).is_file() for path in files), files
    kinds = Counter(path.suffix for path in files)
    assert kinds[".nc"] >= 10 and kinds[".json"] >= 6 and kinds[".pt"] >= 6, kinds
    # Each output's provenance record names the settings it was made with, and the cluster run
    # has device: auto where the local one has cpu: the records differ there, the results not.
    made_on_auto = 0
    for path in files:
        if path.suffix == ".json":
            actual, expected = (json.loads((folder / path).read_text())
                                for folder in (cluster, local))
            made_with = actual.pop("provenance")
            assert made_with and expected.pop("provenance"), path
            if "device" in (made_with.get("settings") or {}):  # a training job's record
                assert made_with["settings"]["device"] == "auto", path
                made_on_auto += 1
            assert actual == expected, path
        elif path.suffix == ".nc":
            with xr.open_dataset(local / path, engine="h5netcdf") as expected, \
                    xr.open_dataset(cluster / path, engine="h5netcdf") as actual:
                assert actual.attrs.pop("provenance") and expected.attrs.pop("provenance"), path
                xr.testing.assert_identical(actual, expected)
        elif path.suffix == ".html" and path.name != "run.html":  # the RSA tables
            assert re.sub(META, "", (cluster / path).read_text()) == \
                re.sub(META, "", (local / path).read_text()), path
        elif path.suffix == ".tsv":  # histories, predictions, the RSA and scaling tables
            assert (cluster / path).read_text() == (local / path).read_text(), path
        elif path.suffix == ".pt":
            expected = torch.load(local / path, weights_only=True)
            actual = torch.load(cluster / path, weights_only=True)
            assert actual.keys() == expected.keys(), path
            for name, tensor in expected.items():
                assert torch.equal(actual[name], tensor), (path, name)
        else:  # figures and the run record's page, drawn from the files compared above
            assert path.suffix in {".pdf", ".png", ".svg", ".html"}, path
    assert made_on_auto >= 1 + len(SMOKE_FAMILY)  # the normative CNN and the family, at least


@pytest.mark.slurm
def test_a_failed_cluster_job_is_resubmitted_and_the_run_completes(slurm_runs):
    jobs = slurm_runs.retry_jobs
    assert [(job["rule"], job["State"]) for job in jobs] == [
        ("fails_once", "FAILED"), ("fails_once", "COMPLETED"),
    ]
    assert (slurm_runs.retry / "retried.txt").read_text() == \
        f"succeeded in SLURM job {jobs[1]['JobID']}\n"


@pytest.mark.parametrize(("device", "gpus"), [("cpu", 0), ("auto", 1)])
def test_the_gpu_request_follows_the_configured_device(tmp_path, device, gpus):
    """Under the SLURM profile, training asks for a GPU unless config device is cpu (dry run)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "device.yaml").write_text(f"device: {device}\n")
    result = snakemake(workdir, "-n", "--workflow-profile", PROFILE,
                       "--configfile", "config/smoke.yaml", "device.yaml")
    # grouped jobs (the RSA chain) are listed indented under their group
    jobs = re.findall(r"^ *(?:local)?rule (\w+):\n(.*?)(?=\n\n|\Z)", result.stdout, re.M | re.S)
    requested = {}
    for rule, body in jobs:
        resources = re.search(r"resources: (.*)", body)
        values = dict(item.split("=", 1) for item in resources.group(1).split(", "))
        requested.setdefault(rule, set()).add(values.get("gpu", "0"))
    gpu_rules = rules_declaring_a_gpu()
    assert set(requested) >= TRAINING_AND_EXTRACTION | {"zscore", "rsa"}
    for rule, values in requested.items():
        assert values == {str(gpus) if rule in gpu_rules else "0"}, rule
