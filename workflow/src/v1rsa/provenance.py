"""What made an output: the package versions, the commit of the code and the settings.

Every output of the workflow that has room for metadata carries a record (:func:`record`):

- NetCDF files: the global attribute ``provenance``;
- JSON files (``metrics.json``): the key ``provenance``;
- PNG figures: the text chunk ``Provenance``; SVG copies: the Dublin Core ``description``;
  PDF copies: the ``Subject`` entry;
- HTML pages of the report: ``<meta name="provenance" content="…">``;

each the same JSON text (:func:`encode`), read back from any of them by :func:`read`. The record
holds no time, so the same code, packages and settings write the same bytes, and the commit is
looked up when the file is written, never a rule's parameter: a new commit alone reruns nothing.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: The packages whose versions every record lists (distribution names), besides Python and
#: v1rsa itself: the base install and the workflow extra.
PACKAGES = (
    "numpy",
    "scipy",
    "xarray",
    "h5netcdf",
    "h5py",
    "pandas",
    "numba",
    "matplotlib",
    "scikit-learn",
    "torch",
    "snakemake",
    "pooch",
)
NOT_A_GIT_CHECKOUT = "not a git checkout"
#: The name of the record in every format (attribute, key, PNG text chunk, HTML meta).
KEY = "provenance"
PNG_KEY = "Provenance"

_LIBRARY = Path(__file__).resolve().parent


def package_versions() -> dict[str, str]:
    """``{"python": "3.11.7", "v1rsa": "0.1.0", "numpy": "2.3.1", …}``: the installed version
    of each of :data:`PACKAGES` ("not installed" when absent). Read from the packages'
    metadata, without importing them."""
    from v1rsa import __version__

    versions = {"python": platform.python_version(), "v1rsa": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_commit(folder: str | os.PathLike = _LIBRARY) -> str:
    """The commit checked out where ``folder`` is (by default this library's checkout): its
    full hash, plus " with uncommitted changes" when tracked files differ from it;
    :data:`NOT_A_GIT_CHECKOUT` outside a git work tree; "unknown: …" when git fails."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", os.fspath(folder), *args], capture_output=True,
                                text=True, check=True, env={**os.environ, "LC_ALL": "C"})
        return result.stdout.strip()

    try:
        commit = git("rev-parse", "--verify", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except OSError as err:
        return f"unknown: git cannot run ({err.strerror})"
    except subprocess.CalledProcessError as err:
        message = err.stderr.strip().splitlines()[0] if err.stderr.strip() else str(err)
        return NOT_A_GIT_CHECKOUT if "not a git repository" in message else f"unknown: {message}"
    return f"{commit} with uncommitted changes" if changed else commit


def record(settings: Mapping | None = None, *, commit: str | None = None,
           packages: Mapping[str, str] | None = None) -> dict:
    """The provenance of an output: ``{"commit": …, "packages": {…}, "settings": {…}}``.

    settings: the values the output was made with (a workflow job passes its rule's
    ``params``; anything with ``.items()``), kept as JSON (other objects as their ``str``).
    commit and packages default to :func:`code_commit` and :func:`package_versions`.
    """
    settings = {} if settings is None else dict(settings.items())
    return {
        "commit": code_commit() if commit is None else commit,
        "packages": package_versions() if packages is None else dict(packages),
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
    }


def encode(provenance: Mapping) -> str:
    """The record as one line of ASCII JSON with sorted keys (the same text in every format)."""
    return json.dumps(provenance, sort_keys=True, ensure_ascii=True, separators=(",", ":"),
                      default=str)


def decode(text: str) -> dict:
    return json.loads(text)


def html_meta(provenance: Mapping) -> str:
    """The ``<meta>`` element that carries the record in an HTML page."""
    return f'<meta name="{KEY}" content="{html.escape(encode(provenance), quote=True)}">'


def read(path: str | os.PathLike) -> dict | None:
    """The record an output carries (:func:`record`), or None when it has none.

    Knows NetCDF/HDF5 (``.nc``, ``.h5``), ``.json``, ``.png``, ``.svg``, ``.pdf`` and
    ``.html``; any other suffix raises ``ValueError``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".nc", ".h5"):
        import h5py

        with h5py.File(path, "r") as file:
            text = file.attrs.get(KEY)
        text = text.decode() if isinstance(text, bytes) else text
    elif suffix == ".json":
        value = json.loads(path.read_text()).get(KEY)
        return value if isinstance(value, dict) else None
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            text = image.text.get(PNG_KEY)
    elif suffix == ".svg":
        found = re.search(r"<dc:description>(.*?)</dc:description>", path.read_text(), re.S)
        text = html.unescape(found.group(1)) if found else None
    elif suffix == ".pdf":
        text = _pdf_string(path.read_bytes(), b"/Subject")
    elif suffix in (".html", ".htm"):
        found = re.search(rf'<meta name="{KEY}" content="([^"]*)"', path.read_text())
        text = html.unescape(found.group(1)) if found else None
    else:
        raise ValueError(f"{path}: no provenance is kept in {suffix or 'suffix-less'} files; "
                         "expected .nc, .h5, .json, .png, .svg, .pdf or .html")
    return decode(text) if text else None


def _pdf_string(data: bytes, key: bytes) -> str | None:
    """The literal string after ``key`` in a PDF's info dictionary, unescaped (ASCII only:
    :func:`encode` writes ASCII)."""
    start = data.find(key + b" (")
    if start < 0:
        return None
    out, i = bytearray(), start + len(key) + 2
    depth = 0
    while i < len(data):
        char = data[i : i + 1]
        if char == b"\\":
            out += data[i + 1 : i + 2]
            i += 2
            continue
        if char == b"(":
            depth += 1
        elif char == b")":
            if depth == 0:
                return out.decode("ascii")
            depth -= 1
        out += char
        i += 1
    return None


def run_record(outputs, *, config: Mapping, config_files=(), root: str | os.PathLike = ".",
               ) -> dict:
    """How a run's outputs were made, gathered from the records they carry.

    outputs: paths of the run's final outputs; config: the run's whole (validated) config;
    config_files: the config files that made it, in order (each listed with its sha256).
    Returns ``{"config_files": [{"path", "sha256"}], "config": {…}, "made_by": [{"commit",
    "packages", "outputs": [paths]}], "without_record": [paths]}``, ``made_by`` one entry per
    distinct (commit, packages) among the outputs, the most outputs first; ``without_record``
    the outputs that carry no record (tables, weights). Paths are relative to ``root``.
    """
    from v1rsa.load import file_sha256

    groups: dict[str, dict] = {}
    without_record = []
    for path in sorted(map(os.fspath, outputs)):
        try:
            found = read(Path(root) / path)
        except ValueError:
            found = None
        if found is None:
            without_record.append(path)
            continue
        made_by = {"commit": found.get("commit"), "packages": found.get("packages", {})}
        key = encode(made_by)
        groups.setdefault(key, {**made_by, "outputs": []})["outputs"].append(path)
    return {
        "config_files": [{"path": os.fspath(path), "sha256": file_sha256(Path(root) / path)}
                         for path in config_files],
        "config": json.loads(json.dumps(dict(config), sort_keys=True, default=str)),
        "made_by": sorted(groups.values(), key=lambda group: -len(group["outputs"])),
        "without_record": without_record,
    }
