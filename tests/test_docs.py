"""The project explains itself: its documents resolve, refer to nothing outside the repository,
and CITATION.cff and LICENSE say what pyproject.toml declares."""

from __future__ import annotations

import re
import subprocess

import pytest
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


def tracked_text_files() -> dict[str, str]:
    """{path: text} of the repository's tracked files that are text."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    texts = {}
    for name in filter(None, listed):
        path = REPO / name
        if path.is_file():
            try:
                texts[name] = path.read_text()
            except UnicodeDecodeError:
                continue  # images
    return texts


def test_no_file_refers_to_documents_outside_the_repository():
    outside = [name + ".md" for name in ("SCIENCE", "DESIGN", "STYLE")] + ["../" + "shared"]
    found = [f"{path}: {word}" for path, text in tracked_text_files().items()
             for word in outside if word in text]
    assert found == []


def test_every_cited_section_of_the_science_reference_exists():
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>',
                             (REPO / "docs" / "science.md").read_text()))
    cited = {(path, anchor) for path, text in tracked_text_files().items()
             for anchor in re.findall(r"docs/science\.md#([a-z0-9-]+)", text)}
    assert cited, "no file cites a section of docs/science.md"
    assert sorted((path, anchor) for path, anchor in cited if anchor not in anchors) == []


def test_readme_is_short():
    assert (REPO / "README.md").stat().st_size <= 10_000
