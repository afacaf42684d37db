"""What a finished smoke run records about how it was made, and the HTML report that shows it
with the RSA tables (snakemake --report on a copy of the run)."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import pandas as pd
import pytest

from conftest import snakemake
from v1rsa import provenance

pytestmark = pytest.mark.workflow

RECORDED = (".nc", ".json", ".png", ".svg", ".html")


def test_every_output_with_room_for_it_records_how_it_was_made(smoke_run):
    results = smoke_run / "results"
    files = [path for path in results.rglob("*") if path.suffix in RECORDED]
    assert len(files) > 50
    for path in files:
        record = provenance.read(path)
        assert record is not None, path
        assert record["commit"] == provenance.NOT_A_GIT_CHECKOUT, path  # a copy, not a checkout
        assert record["packages"]["numpy"] == provenance.package_versions()["numpy"], path
    # the settings are the rule's params: a figure knows its dpi, the RSA its statistics
    figure = provenance.read(results / "smoke" / "figures" / "rsa" / "rsa.png")
    assert figure["settings"]["dpi"] == 150
    assert figure["settings"]["note"].startswith("Smoke-size run")
    rsa = provenance.read(results / "smoke" / "rsa" / "rsa.nc")
    assert rsa["settings"]["statistics"]["n_bootstrap"] == 100  # config/smoke.yaml
    run = json.loads((results / "provenance" / "run.json").read_text())
    assert [entry["path"] for entry in run["config_files"]] == ["config/config.yaml",
                                                                "config/smoke.yaml"]
    assert run["config"]["rsa"]["n_bootstrap"] == 100
    assert [group["commit"] for group in run["made_by"]] == [provenance.NOT_A_GIT_CHECKOUT]
    assert "results/smoke/rsa/rsa.tsv" in run["without_record"]


def test_a_new_commit_alone_reruns_nothing(smoke_copy):
    """The commit is recorded when a file is written, never a rule's parameter."""
    def git(*args):
        subprocess.run(["git", *args], cwd=smoke_copy, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "HOME": "/tmp",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                            "PATH": "/usr/bin:/bin"})

    git("init", "-q")
    git("add", "Snakefile", "config", "workflow")
    git("commit", "-q", "-m", "the workflow")
    assert provenance.code_commit(smoke_copy / "workflow" / "src").count(" ") == 0
    result = snakemake(smoke_copy, "-n", "--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in result.stdout + result.stderr


def embedded(report: str, path: str) -> str:
    """The text of a result that the self-contained report embeds (as a base64 data URI)."""
    match = re.search(re.escape(f'"{path}": {{') + r'.*?"data_uri": "data:[^"]*?base64,([^"]*)"',
                      report)
    assert match, f"{path} is not in the report"
    return base64.b64decode(match.group(1)).decode()


def test_the_report_shows_the_rsa_tables_and_how_the_run_was_made(smoke_copy):
    snakemake(smoke_copy, "--report", "results/report.html", "--configfile", "config/smoke.yaml")
    report = (smoke_copy / "results" / "report.html").read_text()

    # the landing text names the config files of this run, in order, and the smoke-size note
    assert re.search(r"config files <tt[^>]*>config/config.yaml</tt>, then <tt[^>]*>"
                     r"config/smoke.yaml</tt>", report)
    assert "Smoke-size run (config/smoke.yaml)" in report

    table = pd.read_csv(smoke_copy / "results" / "smoke" / "rsa" / "rsa.tsv", sep="\t")
    rsa_page = embedded(report, "results/smoke/rsa/rsa.html")
    for comparator in table["comparator"].unique():
        assert f"<h3>{comparator}</h3>" in rsa_page
    first = table.iloc[0]
    assert f"{first['value']:.3f}".replace("-", "−") in rsa_page
    assert rsa_page.count("<tr>") == len(table) + table["comparator"].nunique()
    cka = pd.read_csv(smoke_copy / "results" / "smoke" / "rsa" / "cka.tsv", sep="\t")
    cka_page = embedded(report, "results/smoke/rsa/cka.html")
    assert f"{cka['value'].iloc[-1]:.3f}" in cka_page
    # both in the dataset's RSA section, beside the RSA figure
    section = re.search(r'"RSA": \{"smoke": \[(.*?)\]', report)
    assert section and "rsa.html" in section.group(1) and "cka.html" in section.group(1)

    run_page = embedded(report, "results/provenance/run.html")
    assert "config/smoke.yaml" in run_page and provenance.NOT_A_GIT_CHECKOUT in run_page
    assert provenance.package_versions()["torch"] in run_page

