"""The library files a Python file runs: the v1rsa modules it imports, transitively.

The workflow lists them as inputs of each rule, so that editing the library reruns exactly the
stages whose code changed, as editing a rule's script does. Found by reading the files' import
statements (``ast``), without running them: absolute (``from v1rsa.rsa import table``) and
relative (``from .table import tidy_table``) imports, at any depth of the file (imports inside
functions count too). A module runs the ``__init__.py`` of each package above it, so those count
as well, but for the top-level ``v1rsa/__init__.py``: it holds the package's docstring and
version and imports nothing, and editing it must not rerun every stage.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "v1rsa"


def _module_name(path: Path, library: Path) -> str:
    """The dotted module name of a file of the library: ``v1rsa.rsa.table``, ``v1rsa.rsa``."""
    parts = [PACKAGE, *path.relative_to(library).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, library: Path) -> frozenset[str]:
    """The v1rsa module names a file's import statements name (``from a import b``: ``a`` and
    ``a.b``, since ``b`` may be a submodule). Each file is parsed once per version: the workflow
    asks for every rule's script, and the library's modules are shared by most of them."""
    stat = path.stat()
    return _parsed_imports(path, library, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _parsed_imports(path: Path, library: Path, mtime_ns: int, size: int) -> frozenset[str]:
    inside = path.is_relative_to(library)
    package = _module_name(path, library) if inside else ""
    if inside and path.name != "__init__.py":
        package = package.rpartition(".")[0]
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if not inside:
                    continue
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            modules.add(module)
            modules.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return frozenset(m for m in modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def imported_files(path: str | Path, library: str | Path) -> set[Path]:
    """The files of the v1rsa modules that one Python file imports directly, with the
    ``__init__.py`` of every package on the way. library: the ``v1rsa`` package folder."""
    path, library = Path(path).resolve(), Path(library).resolve()
    files = set()
    for module in _imported_modules(path, library):
        parts = module.split(".")[1:]
        for depth in range(1, len(parts) + 1):
            base = library.joinpath(*parts[:depth])
            files.update(f for f in (base.with_suffix(".py"), base / "__init__.py") if f.exists())
    return files


def library_files(script: str | Path, library: str | Path) -> list[Path]:
    """Every library file that running ``script`` imports, transitively: sorted paths."""
    seen: set[Path] = set()
    todo = list(imported_files(script, library))
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += imported_files(path, library)
    return sorted(seen)
