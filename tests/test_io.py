"""Atomic writes and checked reads: the contract every stage relies on."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from v1rsa import io


def small_dataset() -> xr.Dataset:
    return xr.Dataset(
        {"response": (("trial", "neuron"), np.arange(6, dtype="float32").reshape(3, 2))},
        coords={"orientation": ("trial", [0.0, 90.0, 180.0])},
    )


def test_write_then_read_round_trips(tmp_path):
    path = tmp_path / "sub" / "trials.nc"
    io.write_netcdf(small_dataset(), path)
    ds = io.read_netcdf(path, ["response"], {"response": ("trial", "neuron")})
    xr.testing.assert_identical(ds, small_dataset())
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]


def test_written_files_get_the_umask_permissions(tmp_path):
    path = tmp_path / "x.nc"
    io.write_netcdf(small_dataset(), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    io.write_json({"a": 1}, path)
    with pytest.raises(RuntimeError), io.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-way")
    assert path.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_read_names_the_file_and_the_missing_variable(tmp_path):
    path = tmp_path / "x.nc"
    io.write_netcdf(small_dataset(), path)
    with pytest.raises(io.ContractError, match=r"x\.nc.*'rdm'"):
        io.read_netcdf(path, ["rdm"])
    with pytest.raises(io.ContractError, match=r"dims \('trial', 'neuron'\), expected"):
        io.read_netcdf(path, ["response"], {"response": ("neuron", "trial")})


def test_read_refuses_a_file_that_is_not_netcdf(tmp_path):
    path = tmp_path / "bad.nc"
    path.write_text("not hdf5")
    with pytest.raises(io.ContractError, match="bad.nc"):
        io.read_netcdf(path)
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        io.read_netcdf(tmp_path / "missing.nc")
