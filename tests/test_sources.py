"""v1rsa.sources finds the library files a script runs, from its import statements alone."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO
from v1rsa import sources


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def package(tmp_path: Path) -> Path:
    """A small v1rsa look-alike: a subpackage, relative imports, a cycle, an import in a
    function, and modules that nothing imports."""
    library = tmp_path / "v1rsa"
    write(library, {
        "__init__.py": '"""docstring"""\n__version__ = "1"\n',
        "io.py": "import numpy as np\n",
        "rdm.py": "from v1rsa import io\n",
        "unused.py": "",
        "stats/__init__.py": "from .table import tidy\nfrom v1rsa.stats.boot import draw\n",
        "stats/table.py": "from . import boot\nfrom ..rdm import compute\ndef tidy(): pass\n",
        "stats/boot.py": "def draw():\n    from v1rsa.stats import table  # a cycle\n",
        "stats/unused.py": "",
    })
    return library


def names(files, library: Path) -> list[str]:
    return sorted(str(Path(f).relative_to(library.resolve())) for f in files)


def test_a_script_runs_the_modules_it_imports_transitively(tmp_path):
    library = package(tmp_path)
    script = tmp_path / "script.py"
    script.write_text("import sys\nfrom v1rsa import stats\n")
    assert names(sources.library_files(script, library), library) == [
        "io.py", "rdm.py", "stats/__init__.py", "stats/boot.py", "stats/table.py"]


def test_relative_imports_resolve_against_the_importing_module(tmp_path):
    library = package(tmp_path)
    assert names(sources.imported_files(library / "stats" / "table.py", library), library) == [
        "rdm.py", "stats/__init__.py", "stats/boot.py"]


def test_an_import_inside_a_function_counts(tmp_path):
    library = package(tmp_path)
    assert names(sources.imported_files(library / "stats" / "boot.py", library), library) == [
        "stats/__init__.py", "stats/table.py"]


def test_other_packages_and_the_top_level_init_are_not_inputs(tmp_path):
    library = package(tmp_path)
    script = tmp_path / "script.py"
    script.write_text("import numpy\nimport v1rsa\nfrom v1rsa import io\n")
    assert names(sources.library_files(script, library), library) == ["io.py"]


def test_every_workflow_script_runs_only_files_that_exist():
    library = REPO / "workflow" / "src" / "v1rsa"
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        files = sources.library_files(script, library)
        assert files, script.name
        assert all(Path(f).is_file() for f in files)
    rsa = names(sources.library_files(REPO / "workflow" / "scripts" / "rsa.py", library),
                library)
    assert {"rsa/__init__.py", "rsa/permutation.py", "rsa/table.py", "_kernels.py"} <= set(rsa)
