"""After a change, only the stages that depend on it run again (snakemake -n on a finished run)."""

from __future__ import annotations

import filecmp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import snakemake

pytestmark = pytest.mark.workflow

DATA_AND_TRAINING = {"simulate", "zscore", "gratings", "train_decoder", "train_decoder_ridge",
                     "decoder_scaling", "train_normative", "train_encoder"}


def planned_jobs(workdir: Path, *configfiles: str, targets: tuple[str, ...] = ()
                 ) -> list[tuple[str, dict]]:
    """The jobs `snakemake -n` would run for ``targets`` (default: all): (rule, wildcards)."""
    result = snakemake(workdir, *targets, "-n", "--configfile", "config/smoke.yaml", *configfiles)
    jobs = []
    # a group's jobs (the RSA chain) are listed indented under "Group job rsa"
    for block in re.split(r"\n(?= *(?:local)?rule \w+:)", result.stdout):
        match = re.match(r" *(?:local)?rule (\w+):", block)
        if match:
            wildcards = re.search(r"wildcards: (.*)", block)
            pairs = wildcards.group(1).split(", ") if wildcards else []
            jobs.append((match.group(1), dict(pair.split("=", 1) for pair in pairs)))
    return jobs


def planned_rules(workdir: Path, *configfiles: str, targets: tuple[str, ...] = ()) -> set[str]:
    return {rule for rule, _ in planned_jobs(workdir, *configfiles, targets=targets)} - {"all"}


def change(workdir: Path, text: str) -> str:
    (workdir / "change.yaml").write_text(text)
    return "change.yaml"


def test_touching_nothing_reruns_nothing(smoke_copy):
    assert planned_rules(smoke_copy) == set()


def test_an_rsa_option_reruns_only_rsa_and_what_shows_it(smoke_copy):
    rules = planned_rules(smoke_copy, change(smoke_copy, "rsa:\n  n_bootstrap: 50\n"))
    assert "rsa" in rules
    # the smoke group's analysis, which takes the same settings, and the record of the run, which
    # every change remakes
    assert all(rule in ("rsa", "rsa_group", "rsa_tables", "run_record")
               or rule.startswith("plot_") for rule in rules), rules


def test_an_rdm_option_reruns_rdms_and_downstream_only(smoke_copy):
    rules = planned_rules(smoke_copy, change(smoke_copy, "rdm:\n  method: cosine\n"))
    assert {"rdm_v1", "rdm", "rsa"} <= rules
    assert not rules & (DATA_AND_TRAINING | {"activations"}), rules


def test_a_training_hyperparameter_reruns_that_model_and_downstream_only(smoke_copy):
    jobs = planned_jobs(smoke_copy, change(smoke_copy, "normative:\n  lr: 1.0e-3\n"))
    rules = {rule for rule, _ in jobs} - {"all"}
    assert {"train_normative", "activations", "rdm", "rsa"} <= rules
    assert not rules & (DATA_AND_TRAINING - {"train_normative"}), rules
    networks = {w.get("network") for rule, w in jobs if rule in ("activations", "rdm")}
    # the encoder's activations stay as they are; the smoke family starts from the normative
    # CNN's settings, so its members are retrained too
    assert networks == {"normative", "smoke-base", "smoke-blocks2", "smoke-epochs0"}


def test_editing_a_script_reruns_its_rule(smoke_copy):
    script = smoke_copy / "workflow" / "scripts" / "train_encoder.py"
    script.write_text(script.read_text() + "\n# an edit\n")
    rules = planned_rules(smoke_copy)
    assert "train_encoder" in rules
    assert not rules & (DATA_AND_TRAINING - {"train_encoder"}), rules


def test_editing_library_code_reruns_the_rules_that_import_it(smoke_copy):
    module = smoke_copy / "workflow" / "src" / "v1rsa" / "rdm.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    rules = planned_rules(smoke_copy)
    assert {"rdm_v1", "rdm", "rsa", "activations"} <= rules  # all import v1rsa.rdm
    assert not rules & DATA_AND_TRAINING, rules
    os.utime(smoke_copy / "workflow" / "src" / "v1rsa" / "simulate.py")
    assert planned_rules(smoke_copy) == rules  # a touch without an edit changes nothing


def test_adding_a_seed_adds_jobs_without_rerunning_the_existing_ones(smoke_copy):
    jobs = planned_jobs(smoke_copy, change(smoke_copy, "normative:\n  seeds: [12, 13]\n"))
    trained = [w["seed"] for rule, w in jobs if rule == "train_normative"]
    assert trained == ["13"]
    assert {w["seed"] for rule, w in jobs if rule == "activations"} == {"13"}
    assert not {rule for rule, _ in jobs} & (DATA_AND_TRAINING - {"train_normative"})


def test_adding_a_variant_runs_its_jobs_and_the_summaries_only(smoke_copy):
    added = "families:\n  smoke:\n    variants: [{n_epochs: 0}, {hidden: 5}]\n"
    jobs = planned_jobs(smoke_copy, change(smoke_copy, added))
    per_network = {(rule, w.get("network")) for rule, w in jobs
                   if rule in ("train_normative", "activations", "rdm")}
    assert per_network == {(rule, "smoke-hidden5")
                           for rule in ("train_normative", "activations", "rdm")}
    assert {rule for rule, _ in jobs} - {"all"} == {
        "train_normative", "activations", "rdm", "rsa", "rsa_tables", "leaderboard",
        "plot_families", "plot_rsa", "run_record"}


def test_reordering_a_family_reruns_nothing(smoke_copy):
    reordered = ("families:\n  smoke:\n    grid: {n_blocks: [2, 1]}\n"
                 "    base: {pool_size: 4}\n")
    # but the record of the run, which keeps the config files as they were given
    assert planned_rules(smoke_copy, change(smoke_copy, reordered)) == {"run_record"}


def start_then_kill(workdir: Path, configfiles: list[str], rule: str, started: Path,
                    target: str, timeout: float = 180.0) -> None:
    """Run snakemake for ``target`` forcing ``rule``; SIGKILL everything once ``started`` shows
    the job began."""
    command = [sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
               *configfiles, "--forcerun", rule]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not started.exists():
        if process.poll() is not None:
            pytest.fail(f"snakemake ended before {rule} started")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"{rule} did not start within {timeout} s")
        time.sleep(0.05)
    time.sleep(0.5)  # the job is under way
    assert process.poll() is None, f"{rule} finished before it could be killed: make it longer"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# Settings that keep each job running for several seconds, so that it is killed mid-way.
LONGER = {
    "train_normative": "normative:\n  n_epochs: 12\n",
    "rsa": "rsa:\n  n_permutations: 100000\n",
}


@pytest.mark.parametrize(
    ("rule", "started", "output"),
    [
        ("train_normative", "logs/models/normative/seed12.log",
         "results/models/normative/seed12/history.tsv"),
        ("rsa", "logs/smoke/rsa.log", "results/smoke/rsa/rsa.tsv"),
    ],
)
def test_a_job_killed_mid_way_reruns_and_gives_identical_results(smoke_copy, rule, started,
                                                                  output):
    # The runs ask for the killed job's output only: a longer training would otherwise retrain
    # the smoke family too (it starts from the normative settings), at no gain to the test.
    configfiles = ["config/smoke.yaml", change(smoke_copy, LONGER[rule])]
    snakemake(smoke_copy, output, "--configfile", *configfiles)
    (smoke_copy / started).unlink()
    start_then_kill(smoke_copy, configfiles, rule, smoke_copy / started, output)
    # as after a power loss: the lock is left behind, and the half-done job is marked incomplete
    snakemake(smoke_copy, "--configfile", *configfiles, "--unlock")
    # Snakemake removes a job's outputs before it starts; a file written when the kill came is
    # recorded as incomplete: either way the next run does not take it as complete.
    rerun = snakemake(smoke_copy, output, "--configfile", *configfiles, check=False)
    if rerun.returncode != 0:
        assert "incomplete" in rerun.stderr, rerun.stderr[-2000:]
        rerun = snakemake(smoke_copy, output, "--configfile", *configfiles, "--rerun-incomplete")
    assert re.search(rf"rule {rule}:", rerun.stdout + rerun.stderr)
    recovered = (smoke_copy / output).read_bytes()
    assert planned_rules(smoke_copy, configfiles[1], targets=(output,)) == set()
    snakemake(smoke_copy, output, "--configfile", *configfiles, "--forcerun", rule)  # uninterrupted
    assert (smoke_copy / output).read_bytes() == recovered


def test_two_runs_of_the_smoke_config_write_the_same_bytes(smoke_run, tmp_path):
    """Every file of two runs is the same, byte for byte: arrays, metrics, tables, model
    weights and figures, whatever order the jobs ran in. (Torch's matrix products give other
    bits on another number of threads, so a job given more threads where there are more cores
    would make results depend on the machine; the encoder, which takes more from 4 cores up, is
    checked on several in test_encoding.py.)"""
    from conftest import copy_workflow

    again = copy_workflow(tmp_path / "again")
    snakemake(again, "--configfile", "config/smoke.yaml")
    files = {run: sorted(p.relative_to(run) for p in (run / "results").rglob("*") if p.is_file())
             for run in (smoke_run, again)}
    assert files[smoke_run] == files[again]
    assert {path.suffix for path in files[again]} >= {".nc", ".json", ".tsv", ".pt", ".png", ".svg"}
    differ = [str(path) for path in files[again]
              if not filecmp.cmp(smoke_run / path, again / path, shallow=False)]
    assert differ == []
