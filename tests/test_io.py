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


WRITER = """
import sys, time
from v1rsa import io
with io.atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    print(tmp, flush=True)
    time.sleep(600)
"""


def start_writer(target):
    """A process writing ``target`` through atomic_path, stopped mid-write; returns (process,
    its temporary file)."""
    import subprocess
    import sys
    from pathlib import Path

    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                               stdout=subprocess.PIPE, text=True)
    return process, Path(process.stdout.readline().strip())


def test_a_killed_writers_temporary_file_is_stale_and_a_live_ones_is_not(tmp_path):
    import signal

    killed, killed_tmp = start_writer(tmp_path / "trials.nc")
    live, live_tmp = start_writer(tmp_path / "conditions.nc")
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert killed_tmp.name.startswith(f".trials.nc.{io._host()}-{killed.pid}.")
        assert killed_tmp.exists()  # kill -9: nothing could clean up

        assert io.stale_temporaries(tmp_path) == [killed_tmp]
        io.write_netcdf(small_dataset(), tmp_path / "trials.nc")  # writing the target again
        assert not killed_tmp.exists()
        assert live_tmp.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["trials.nc", live_tmp.name])
    finally:
        live.kill()
        live.wait()
    assert io.remove_stale_temporaries([tmp_path]) == [live_tmp]


def test_temporaries_whose_writer_cannot_be_asked_are_stale_only_when_old(tmp_path):
    old = 2 * io.STALE_AFTER_S
    names = {
        ".rsa.tsv.other-host-12.abcd_123.part": "another host's",
        ".trials.nc.x2k9q1zz.part": "an older version's",
        "tmpq8w_e3rt": "pooch's, left by older downloads",
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert io.stale_temporaries(tmp_path) == []  # recent: their writers may be at work
    for name in names:
        os.utime(tmp_path / name, (os.path.getmtime(tmp_path / name) - old,) * 2)
    assert [p.name for p in io.stale_temporaries(tmp_path)] == sorted(names)


def test_only_the_projects_own_temporaries_are_removed(tmp_path):
    old = os.path.getmtime(tmp_path) - 2 * io.STALE_AFTER_S
    keep = [".notes.part", "tmp_notes.txt", "trials.nc", ".x.nc.too-long-random.part"]
    for name in keep:
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (old, old))
    others = tmp_path / ".trials.nc.abcd1234.part"  # ours by name, but another user's file
    others.write_bytes(b"x")
    os.utime(others, (old, old))
    if os.getuid() == 0:
        os.chown(others, 65534, 65534)
        keep.append(others.name)
    (tmp_path / "sub").mkdir()
    scratch = tmp_path / "sub" / f".raw.h5.{io._host()}-999999999.abcd1234.part"
    scratch.mkdir()  # a killed simulator's scratch folder
    (scratch / "spont_z.h5").write_bytes(b"x")

    assert io.remove_stale_temporaries([tmp_path]) == (
        [] if os.getuid() == 0 else [others]) + [scratch]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "sub"])
    assert list((tmp_path / "sub").iterdir()) == []
