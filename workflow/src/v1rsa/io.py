"""On-disk contracts between stages: atomic writes and checked reads of NetCDF4 (HDF5) files.

Every stage writes through :func:`atomic_path`, so an interrupted job leaves no file that
Snakemake (or a user) could take as complete. A job killed mid-write (``kill -9``, a cluster's
memory or time limit, a power cut) leaves its temporary file behind, named after its target, host
and process; :func:`remove_stale_temporaries` removes those whose process is gone, and
:func:`atomic_path` does so for its target's before writing it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr

from v1rsa.provenance import KEY as PROVENANCE_KEY
from v1rsa.provenance import encode as encode_provenance

ENGINE = "h5netcdf"
#: a temporary file or folder of ours that no process has changed for this long is stale, even
#: when its owner cannot be asked (written on another host, or named by an older version)
STALE_AFTER_S = 3600
# ".{target}.{host}-{pid}.{random}.part": what temporary_name() makes
_OWNED = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.[a-z0-9_]+\.part$")
# names without an owner: older versions' ".{target}.{random}.part", and pooch's "tmp{random}",
# which earlier versions of the download stage left in resources/<dataset>/
_UNOWNED = re.compile(r"^(\.(?P<target>.+)\.[a-z0-9_]{8}\.part|tmp[a-z0-9_]{8})$")


class ContractError(ValueError):
    """A file does not hold what the stage that reads it expects."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def temporary_prefix(path: str | os.PathLike) -> str:
    """The start of the name of a temporary file or folder of ``path`` written by this process:
    ``.{name}.{host}-{pid}.`` (a random part and ``.part`` follow)."""
    return f".{Path(path).name}.{_host()}-{os.getpid()}."


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process
        return False
    try:  # a killed child its parent has not yet waited for is a zombie: gone all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _last_change(entry: os.DirEntry) -> float:
    """The newest mtime of a file, or of a folder and the files directly in it."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        with contextlib.suppress(OSError), os.scandir(entry.path) as inside:
            for child in inside:
                newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
    return newest


def stale_temporaries(folder: str | os.PathLike, *, target: str | None = None,
                      max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Temporary files and folders left in ``folder`` (not below it) by writers that are gone.

    Only names this module makes (or older versions made) and only entries the current user
    owns. Stale: written on this host by a process that no longer runs, or, whoever wrote it,
    unchanged for ``max_age_s`` seconds. ``target``: only those of the file of that name.
    """
    stale, now, host = [], time.time(), _host()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        owned, unowned = _OWNED.match(entry.name), _UNOWNED.match(entry.name)
        if not (owned or unowned):
            continue
        if target is not None and target not in (owned and owned["target"],
                                                 unowned and unowned["target"]):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            gone = (owned is not None and owned["host"] == host
                    and _process_is_gone(int(owned["pid"])))
            if gone or now - _last_change(entry) > max_age_s:
                stale.append(Path(entry.path))
        except FileNotFoundError:  # removed meanwhile
            continue
    return sorted(stale)


def remove_stale_temporaries(folders: Iterable[str | os.PathLike], *, recursive: bool = True,
                             target: str | None = None) -> list[Path]:
    """Remove :func:`stale_temporaries` in ``folders`` (and every folder below them when
    ``recursive``); return what was removed."""
    removed = []
    for top in folders:
        walk = os.walk(top) if recursive else [(top, [], [])]
        for folder, subfolders, _ in walk:
            for path in stale_temporaries(folder, target=target):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                    subfolders[:] = [name for name in subfolders if name != path.name]
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def temporary_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A scratch folder beside ``path`` for the time of the block (removed afterwards), named
    as :func:`atomic_path`'s temporary files, so that a killed writer's is found stale."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=temporary_prefix(path), suffix=".part",
                                     dir=path.parent) as folder:
        yield Path(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched. Temporary
    files of ``path`` that killed writers left behind (:func:`stale_temporaries`) are removed
    first. The file gets the permissions a plain ``open()`` would give (not mkstemp's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([path.parent], recursive=False, target=path.name)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike,
                 provenance: Mapping | None = None) -> None:
    """Write ``ds`` as NetCDF4 (HDF5, h5netcdf engine), atomically.

    provenance: a :func:`v1rsa.provenance.record`, kept as the global attribute ``provenance``
    (replacing one that ``ds`` inherited from its inputs).
    """
    if provenance is not None:
        ds = ds.copy(deep=False)
        ds.attrs = {**ds.attrs, PROVENANCE_KEY: encode_provenance(provenance)}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)


def read_netcdf(
    path: str | os.PathLike,
    variables: Iterable[str] = (),
    dims: dict[str, tuple[str, ...]] | None = None,
) -> xr.Dataset:
    """Load a whole NetCDF file into memory and check it holds ``variables`` with ``dims``.

    Raises :class:`ContractError` naming the file, the key and what was expected.
    """
    import xarray as xr  # here: the download and link stages need this module, not xarray

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ds = xr.load_dataset(path, engine=ENGINE)
    except Exception as err:  # h5py/h5netcdf raise several types for a damaged file
        raise ContractError(f"{path}: not a readable NetCDF4/HDF5 file ({err})") from err
    for name in variables:
        if name not in ds.variables:
            raise ContractError(
                f"{path}: missing variable {name!r}; found {sorted(map(str, ds.variables))}"
            )
    for name, expected in (dims or {}).items():
        if name in ds.variables and tuple(ds[name].dims) != tuple(expected):
            raise ContractError(
                f"{path}: variable {name!r} has dims {tuple(ds[name].dims)}, expected {expected}"
            )
    return ds


def write_json(obj, path: str | os.PathLike, provenance: Mapping | None = None) -> None:
    """Write ``obj`` as indented JSON, atomically; a dict gets the key ``provenance`` when a
    :func:`v1rsa.provenance.record` is given."""
    if provenance is not None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"{path}: only a JSON object (dict) can carry a provenance record")
        obj = {**obj, PROVENANCE_KEY: provenance}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_tsv(table, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as a tab-separated table without index, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
