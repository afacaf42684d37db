"""The raw_hdf5 layout through the real snakemake: simulate (streamed), link_local, zscore."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xarray as xr

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

SIMULATE = "    simulate: {n_neurons: 300, n_trials: 600, seed: 1}\n"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _trials(path) -> xr.Dataset:
    return xr.load_dataset(path, engine="h5netcdf")


def test_raw_hdf5_datasets_give_the_trials_of_the_npy_layout(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "two.yaml").write_text(
        "run: [as_npy]\n"
        "datasets:\n"
        "  as_npy:\n    source: simulate\n    layout: raw\n" + SIMULATE
        + "  as_hdf5:\n    source: simulate\n    layout: raw_hdf5\n" + SIMULATE
        + "binning: {bin_width_deg: 6}\n"
    )
    targets = ["results/as_npy/trials.nc", "results/as_hdf5/rdms/v1.nc"]
    snakemake(workdir, *targets, "--configfile", "two.yaml")

    raw_h5 = workdir / "resources" / "as_hdf5" / "raw.h5"
    assert sorted(p.name for p in raw_h5.parent.iterdir()) == ["ground_truth.nc", "raw.h5"]
    from_npy = _trials(workdir / "results" / "as_npy" / "trials.nc")
    from_hdf5 = _trials(workdir / "results" / "as_hdf5" / "trials.nc")
    assert from_hdf5.attrs["checksum"] == _sha256(raw_h5)
    np.testing.assert_array_equal(from_hdf5["response"].values, from_npy["response"].values)
    xr.testing.assert_equal(from_hdf5.drop_attrs(), from_npy.drop_attrs())
    rdm = xr.load_dataset(workdir / "results" / "as_hdf5" / "rdms" / "v1.nc", engine="h5netcdf")
    assert rdm["rdm"].shape == (30, 30)  # the 6-degree bins centred in 0...180 degrees

    # the same file as a local source: linked, hashed, read through the same loader
    (workdir / "local.yaml").write_text(
        "run: [mine]\n"
        "datasets:\n"
        "  mine:\n    source: local\n    layout: raw_hdf5\n"
        f"    path: {raw_h5}\n    known_hash: sha256:{_sha256(raw_h5)}\n"
        "binning: {bin_width_deg: 6}\n"
    )
    snakemake(workdir, "results/mine/trials.nc", "--configfile", "local.yaml")
    assert (workdir / "resources" / "mine" / "raw.h5").resolve() == raw_h5.resolve()
    mine = _trials(workdir / "results" / "mine" / "trials.nc")
    np.testing.assert_array_equal(mine["response"].values, from_hdf5["response"].values)
