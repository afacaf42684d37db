"""On-disk contracts between stages: atomic writes and checked reads of NetCDF4 (HDF5) files.

Every stage writes through :func:`atomic_path`, so an interrupted job leaves no file that
Snakemake (or a user) could take as complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import xarray as xr

from v1rsa.provenance import KEY as PROVENANCE_KEY
from v1rsa.provenance import encode as encode_provenance

ENGINE = "h5netcdf"


class ContractError(ValueError):
    """A file does not hold what the stage that reads it expects."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
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
