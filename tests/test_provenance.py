"""v1rsa.provenance: what each output records about how it was made, in every format, and
v1rsa.report's pages of the run record and the RSA tables."""

import hashlib
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from v1rsa import io, provenance, report
from v1rsa.figures import style

RECORD = {"commit": "0123abc", "packages": {"numpy": "2.0.0", "torch": "not installed"},
          "settings": {"dpi": 80, "label": "θ (°) \"quoted\" (paren) \\ back"}}


def write_every_format(folder, record):
    io.write_netcdf(xr.Dataset({"x": ("i", [1.0, 2.0])}, attrs={"provenance": "inherited"}),
                    folder / "a.nc", record)
    io.write_json({"accuracy": 0.9}, folder / "a.json", record)
    fig, _ = style.figure(1.0, width_in=1.5)
    style.save(fig, folder / "a.png", folder / "a.svg", dpi=40, provenance=record)
    fig, _ = style.figure(1.0, width_in=1.5)
    style.save(fig, folder / "b.png", folder / "a.pdf", dpi=40, provenance=record)
    io.write_text(report.page("t", "<p>x</p>", record), folder / "a.html")
    return ["a.nc", "a.json", "a.png", "a.svg", "a.pdf", "a.html"]


def test_every_format_carries_the_record_and_gives_it_back(tmp_path):
    for name in write_every_format(tmp_path, RECORD):
        assert provenance.read(tmp_path / name) == RECORD, name
    assert json.loads((tmp_path / "a.json").read_text())["accuracy"] == 0.9
    assert xr.load_dataset(tmp_path / "a.nc")["x"].values.tolist() == [1.0, 2.0]


def test_files_without_a_record_say_none_and_other_suffixes_are_refused(tmp_path):
    io.write_json({"a": 1}, tmp_path / "plain.json")
    io.write_netcdf(xr.Dataset({"x": ("i", [1.0])}), tmp_path / "plain.nc")
    assert provenance.read(tmp_path / "plain.json") is None
    assert provenance.read(tmp_path / "plain.nc") is None
    (tmp_path / "t.tsv").write_text("a\n1\n")
    with pytest.raises(ValueError, match="no provenance is kept in .tsv files"):
        provenance.read(tmp_path / "t.tsv")


def test_the_same_record_writes_the_same_bytes(tmp_path):
    """No time or random id in any format: reruns stay byte-identical."""
    digests = []
    for run in ("one", "two"):
        folder = tmp_path / run
        folder.mkdir()
        names = write_every_format(folder, RECORD)
        digests.append([hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names])
    assert digests[0] == digests[1]


def test_a_record_lists_versions_without_importing_and_keeps_settings_as_json():
    record = provenance.record({"seeds": (1, 2), "path": provenance.Path("a/b")})
    assert record["settings"] == {"seeds": [1, 2], "path": "a/b"}
    assert record["packages"]["numpy"] == np.__version__
    assert record["packages"]["python"].count(".") == 2
    assert set(provenance.PACKAGES) < set(record["packages"])


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                        "PATH": "/usr/bin:/bin", "HOME": str(folder)})


def test_the_commit_is_the_checkout_of_the_code_and_says_when_it_was_edited(tmp_path):
    assert provenance.code_commit(tmp_path) == provenance.NOT_A_GIT_CHECKOUT
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert provenance.code_commit(tmp_path) == head
    (tmp_path / "results.txt").write_text("untracked outputs do not count\n")
    assert provenance.code_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.code_commit(tmp_path) == f"{head} with uncommitted changes"


def test_the_run_record_groups_outputs_by_what_made_them(tmp_path):
    other = {**RECORD, "commit": "4567def"}
    io.write_json({"a": 1}, tmp_path / "one.json", RECORD)
    io.write_netcdf(xr.Dataset({"x": ("i", [1.0])}), tmp_path / "two.nc", RECORD)
    io.write_json({"a": 1}, tmp_path / "three.json", other)
    (tmp_path / "table.tsv").write_text("a\n1\n")
    (tmp_path / "config.yaml").write_text("run: [smoke]\n")
    run = provenance.run_record(["one.json", "two.nc", "three.json", "table.tsv"],
                                config={"run": ["smoke"]}, config_files=["config.yaml"],
                                root=tmp_path)
    assert [group["commit"] for group in run["made_by"]] == ["0123abc", "4567def"]
    assert run["made_by"][0]["outputs"] == ["one.json", "two.nc"]
    assert run["without_record"] == ["table.tsv"]
    assert run["config_files"] == [{
        "path": "config.yaml",
        "sha256": hashlib.sha256(b"run: [smoke]\n").hexdigest()}]
    page = report.run_record_page(run)
    assert "config.yaml" in page and "4567def" in page and "table.tsv" in page


def rsa_rows():
    return pd.DataFrame({
        "reference": "V1", "candidate": ["net/seed0/conv", "net/seed0/fc"],
        "comparator": "spearman", "value": [0.123456, -0.5], "ci_low": [0.0111, -0.61],
        "ci_high": [0.2, -0.4], "p": [1 / 201, 0.5], "q": [2 / 201, 0.5],
        "noise_ceiling_lower": 0.8, "noise_ceiling_upper": 0.9, "n_conditions": 30,
        "n_bootstrap": 100, "n_permutations": 200, "ci_level": 0.95, "network": "net",
        "network_seed": 0, "layer": ["conv", "fc"]})


def test_the_rsa_table_page_rounds_and_labels_every_column():
    page = report.rsa_table_page(rsa_rows(), RECORD)
    assert "<h3>spearman</h3>" in page
    assert "<td class=\"number\">0.123</td>" in page and "−0.500" in page
    assert "0.011 – 0.200" in page  # the 95% CI, rounded
    assert "≤ 0.005" in page  # p at the smallest that 200 permutations can give
    assert "0.00995" in page  # q
    assert "0.800 – 0.900" in page  # the noise ceiling
    assert "0.123456" not in page


def test_the_cka_page_escapes_names():
    table = pd.DataFrame({"network": ["<net>"], "network_seed": [0], "layer": ["a&b"],
                          "value": [0.98765]})
    page = report.cka_table_page(table)
    assert "&lt;net&gt;" in page and "a&amp;b" in page and "0.988" in page
