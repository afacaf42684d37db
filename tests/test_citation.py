"""CITATION.cff and LICENSE say what pyproject.toml declares."""

from __future__ import annotations

import re

import yaml

from conftest import REPO


def test_citation_matches_the_package():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    pyproject = (REPO / "pyproject.toml").read_text()  # tomllib is Python ≥ 3.11 only
    project = dict(re.findall(r'^(version|license) = "([^"]+)"$', pyproject, re.MULTILINE))
    assert citation["cff-version"] == "1.2.0"
    assert citation["type"] == "software"
    assert str(citation["version"]) == project["version"]
    assert citation["license"] == project["license"] == "BSD-3-Clause"
    cited = " ".join(str(reference.get("doi", reference.get("repository-code", "")))
                     for reference in citation["references"])
    assert "10.1016/j.cell.2021.03.042" in cited  # Stringer et al. 2021
    assert "NeuromatchAcademy/course-content" in cited  # the course


def test_license_is_bsd_3_clause():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "the v1rsa authors" in text
    assert "Neither the name of the copyright holder" in text
