"""The real snakemake CLI on the smoke config, in a temporary copy of the workflow."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import REPO, copy_workflow, snakemake
from fileserver import FileServer, send_bytes
from v1rsa import load
from v1rsa.download import read_hash_record

pytestmark = pytest.mark.workflow


def test_smoke_run_writes_the_data_contract(smoke_run):
    results = smoke_run / "results" / "smoke"
    with xr.open_dataset(results / "trials.nc", engine="h5netcdf") as trials:
        assert trials["response"].dims == ("trial", "neuron")
        assert trials["response"].dtype == np.float32
        assert set(np.unique(trials["split"].values)) == {"train", "test"}
        assert trials.attrs["single_trials"] == 1
        assert trials.attrs["checksum"] == load.file_sha256(
            smoke_run / "resources" / "smoke" / "raw.npy"
        )
        response = trials["response"].values
    assert np.isfinite(response).all()
    np.testing.assert_allclose(response.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(response.std(axis=0), 1, atol=1e-3)
    with xr.open_dataset(results / "conditions.nc", engine="h5netcdf") as conditions:
        assert conditions["response"].dims == ("condition", "neuron")
        assert conditions["response_fold"].dims == ("fold", "condition", "neuron")
        assert conditions.sizes["condition"] == 60  # 6-degree bins in config/smoke.yaml
        assert conditions.sizes["fold"] == 2
    raw = load.load_raw(smoke_run / "resources" / "smoke" / "raw.npy")
    assert raw["sresp"].shape == (400, 1200)


def test_a_finished_run_has_nothing_left_to_do(smoke_run):
    result = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_job_logs_read_line_by_line(smoke_run):
    # off a terminal, progress is a log line per tenth, not a bar redrawn with carriage returns
    logs = list((smoke_run / "logs").rglob("*.log"))
    assert len(logs) > 20
    for log in logs:
        assert "\r" not in log.read_text(), log
    simulate_log = (smoke_run / "logs" / "smoke" / "simulate.log").read_text()
    assert "v1rsa.logs: simulate: 100% (1 of 1 block" in simulate_log


def binned_npz(tmp_path, n_neurons=50, seed=0):
    """An NMA W3D4_stringer_oribinned6_split.npz look-alike; returns its bytes."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "served.npz"
    np.savez(
        path,
        resp_train=rng.normal(size=(60, n_neurons)),
        resp_test=rng.normal(size=(60, n_neurons)),
        stimuli=np.arange(60) * 6.0 + 3.0,
    )
    return path.read_bytes()


def download_config(url: str, known_hash: str) -> str:
    return (
        "run: [served]\n"
        "datasets:\n"
        "  served:\n"
        "    source: download\n"
        "    layout: oribinned6_split\n"
        f"    url: {url}\n"
        f"    known_hash: {known_hash}\n"
        "download:\n"
        "  retries: 0\n"
    )


@pytest.fixture
def server():
    server = FileServer()
    yield server
    server.close()


def test_download_then_zscore_from_a_local_http_server(server, tmp_path):
    body = binned_npz(tmp_path)
    url = server.add("oribinned6_split.npz", send_bytes(body))
    workdir = copy_workflow(tmp_path / "wf")
    md5 = hashlib.md5(body).hexdigest()
    (workdir / "served.yaml").write_text(download_config(url, f"md5:{md5}"))
    snakemake(workdir, "results/served/conditions.nc", "--configfile", "served.yaml")
    raw = workdir / "resources" / "served" / "raw.npz"
    assert raw.read_bytes() == body
    record = (workdir / "resources" / "served" / "raw.npz.sha256").read_text()
    assert record == f"sha256:{hashlib.sha256(body).hexdigest()}\n# source: {url}\n"
    with xr.open_dataset(workdir / "results" / "served" / "conditions.nc", engine="h5netcdf") as ds:
        assert ds["response_fold"].shape == (2, 60, 50)


def test_a_wrong_checksum_stops_the_download_and_leaves_no_file(server, tmp_path):
    url = server.add("oribinned6_split.npz", send_bytes(binned_npz(tmp_path)))
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "served.yaml").write_text(download_config(url, "md5:" + "0" * 32))
    result = snakemake(
        workdir, "results/served/conditions.nc", "--configfile", "served.yaml", check=False
    )
    assert result.returncode != 0
    log = (workdir / "logs" / "served" / "download_npz.log").read_text()
    assert "md5:" + "0" * 32 in log
    assert "update datasets.served.known_hash in served.yaml" in log  # where the pin is set
    assert not list((workdir / "resources" / "served").glob("raw.npz*"))
    assert not (workdir / "results" / "served").exists()


PINNING_ADVICE = "copy that line into the dataset's `known_hash`"


def test_pinning_the_recorded_hash_as_the_readme_says_reruns_nothing(server, tmp_path):
    assert PINNING_ADVICE in " ".join((REPO / "README.md").read_text().split())
    body = binned_npz(tmp_path)
    url = server.add("oribinned6_split.npz", send_bytes(body))
    workdir = copy_workflow(tmp_path / "wf")
    config = workdir / "served.yaml"
    config.write_text(download_config(url, "null"))
    target = ("results/served/conditions.nc", "--configfile", "served.yaml")
    snakemake(workdir, *target)
    raw = workdir / "resources" / "served" / "raw.npz"
    downloaded = raw.stat()

    # the README: the first download records the sha256; copy that line into known_hash
    record = (workdir / "resources" / "served" / "raw.npz.sha256").read_text().splitlines()[0]
    config.write_text(download_config(url, record))
    assert "Nothing to be done" in snakemake(workdir, "-n", *target).stdout
    config.write_text(download_config(url, "md5:" + hashlib.md5(body).hexdigest()))
    assert "Nothing to be done" in snakemake(workdir, "-n", *target).stdout

    # a pin the file lacks stops the run before any job, naming the file the pin is in
    wrong = record[:-1] + ("0" if record[-1] != "0" else "1")
    config.write_text(download_config(url, wrong))
    result = snakemake(workdir, *target, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"datasets.served.known_hash in served.yaml is {wrong}" in output
    assert f"has {record}" in output and "Nothing was run and the file was kept" in output
    assert raw.read_bytes() == body and raw.stat().st_mtime_ns == downloaded.st_mtime_ns
    assert server.hits("oribinned6_split.npz") == 1

    # another file, pinned at once: fetched and checked by the job, not refused at start-up
    other = binned_npz(tmp_path, seed=1)
    other_url = server.add("v2/oribinned6_split.npz", send_bytes(other))
    config.write_text(download_config(other_url, f"sha256:{hashlib.sha256(other).hexdigest()}"))
    snakemake(workdir, *target)
    assert raw.read_bytes() == other


def test_a_local_file_changed_in_place_is_linked_and_hashed_again(tmp_path):
    mine = tmp_path / "my_recording.npz"
    mine.write_bytes(binned_npz(tmp_path, seed=0))
    workdir = copy_workflow(tmp_path / "wf")

    def configure(known_hash):
        (workdir / "local.yaml").write_text(
            "run: [mine]\ndatasets:\n  mine:\n    source: local\n    layout: oribinned6_split\n"
            f"    path: {mine}\n    known_hash: {known_hash}\n")

    configure("null")
    target = ("results/mine/conditions.nc", "--configfile", "local.yaml")
    snakemake(workdir, *target)
    record = workdir / "resources" / "mine" / "raw.npz.sha256"
    first = f"sha256:{hashlib.sha256(mine.read_bytes()).hexdigest()}"
    assert read_hash_record(record) == (first, str(mine))

    mine.write_bytes(binned_npz(tmp_path, seed=1))  # the user's file changes in place
    result = snakemake(workdir, *target)
    assert "rule link_local" in result.stdout + result.stderr
    changed = f"sha256:{hashlib.sha256(mine.read_bytes()).hexdigest()}"
    assert read_hash_record(record) == (changed, str(mine))  # the file now used
    with xr.open_dataset(workdir / "results" / "mine" / "conditions.nc",
                         engine="h5netcdf") as conditions:
        assert conditions.attrs["checksum"] == changed.removeprefix("sha256:")
    configure(changed)
    assert "Nothing to be done" in snakemake(workdir, "-n", *target).stdout


def test_a_local_file_is_checked_and_linked(tmp_path):
    body = binned_npz(tmp_path)
    mine = tmp_path / "my_recording.npz"
    mine.write_bytes(body)
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "local.yaml").write_text(
        "run: [mine]\n"
        "datasets:\n"
        "  mine:\n"
        "    source: local\n"
        "    layout: oribinned6_split\n"
        f"    path: {mine}\n"
        f"    known_hash: sha256:{hashlib.sha256(body).hexdigest()}\n"
    )
    snakemake(workdir, "results/mine/conditions.nc", "--configfile", "local.yaml")
    assert (workdir / "resources" / "mine" / "raw.npz").resolve() == mine.resolve()
    assert (workdir / "results" / "mine" / "conditions.nc").exists()


def held_out_gratings(smoke_run):
    """The test gratings of the tilt task whose images are not training images."""
    from v1rsa import io, stimuli

    train = io.read_netcdf(smoke_run / "results" / "stimuli" / "tilt_train.nc", ["image"])
    test = io.read_netcdf(smoke_run / "results" / "stimuli" / "tilt_test.nc", ["image", "label"])
    return test.isel(stimulus=stimuli.unseen(test["image"].values, train["image"].values))


def test_trained_models_reload_from_their_state_dict_and_metadata(smoke_run):
    """model.pt holds only weights (weights_only=True); metrics.json rebuilds the architecture."""
    from v1rsa import decoders, decoding, encoding, io, normative, training

    folder = smoke_run / "results" / "models" / "normative" / "seed12"
    metrics = json.loads((folder / "metrics.json").read_text())
    model = training.load_state_dict(normative.build(metrics["architecture"]), folder / "model.pt")
    test = held_out_gratings(smoke_run)
    scores = normative.evaluate_tilt(model, test["image"].values, test["label"].values)
    assert scores["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert metrics["test_accuracy"] > 0.9

    folder = smoke_run / "results" / "smoke" / "models" / "decoder_circular" / "trials" / "seed4"
    metrics = json.loads((folder / "metrics.json").read_text())
    model = training.load_state_dict(
        decoders.build_decoder(**metrics["architecture"]), folder / "model.pt"
    )
    trials = io.read_netcdf(smoke_run / "results" / "smoke" / "trials.nc", ["response"])
    test = trials.isel(trial=trials["split"].values == "test")
    predicted = decoders.predict_deg(model, test["response"].values, "circular")
    again = decoding.decoding_metrics(predicted, test["orientation"].values)
    assert again["median_abs_error_deg"] == pytest.approx(metrics["median_abs_error_deg"])

    folder = smoke_run / "results" / "smoke" / "models" / "encoder" / "seed0"
    metrics = json.loads((folder / "metrics.json").read_text())
    training.load_state_dict(encoding.build(metrics["architecture"]), folder / "model.pt")
    assert metrics["median_r2_test"] > metrics["median_baseline_r2_test"]


def test_decoders_beat_chance_on_the_smoke_data(smoke_run):
    models = smoke_run / "results" / "smoke" / "models"
    for name in ("decoder_ridge/trials", "decoder_classifier/trials/seed4",
                 "decoder_circular/trials/seed4"):
        metrics = json.loads((models / name / "metrics.json").read_text())
        assert metrics["median_abs_error_deg"] < 30, name  # chance is 90 degrees
    scaling = pd.read_csv(models / "decoder_ridge" / "scaling.tsv", sep="\t")
    by_n = scaling[scaling["axis"] == "neurons"].groupby("n")["median_abs_error_deg"].mean()
    assert by_n.iloc[-1] < by_n.iloc[0]


def test_rdms_of_v1_and_of_every_layer(smoke_run):
    rdms = smoke_run / "results" / "smoke" / "rdms"
    v1 = xr.load_dataset(rdms / "v1.nc", engine="h5netcdf")
    assert v1["rdm"].dims == ("condition", "condition_")
    assert v1["rdm_fold"].dims == ("fold", "condition", "condition_")
    # config/smoke.yaml bins at 6 degrees: 0..180 keeps 30 bins, shown at -87..+87 degrees
    np.testing.assert_allclose(v1["orientation"].values, np.arange(-87, 90, 6))
    normative = xr.load_dataset(rdms / "normative" / "seed12.nc", engine="h5netcdf")
    assert list(normative["layer"].values) == ["conv", "pool", "fc", "out"]
    assert list(normative["method"].values) == ["correlation"] * 3 + ["squared_euclidean"]
    np.testing.assert_array_equal(normative["orientation"].values, v1["orientation"].values)
    for matrix in [v1["rdm"].values, *normative["rdm"].values]:
        np.testing.assert_array_equal(matrix, matrix.T)
        assert (np.diag(matrix) == 0).all()
    activations = xr.load_dataset(
        smoke_run / "results" / "smoke" / "activations" / "normative" / "seed12.nc",
        engine="h5netcdf",
    )
    assert activations["pool"].shape == (30, 288)
    assert (activations["pool"].values >= 0).all()  # read after the ReLU, as the course


#: config/smoke.yaml's family: its networks and the layers recorded in each
SMOKE_FAMILY = {"smoke-epochs0": ["conv", "pool", "fc", "out"],
                "smoke-base": ["conv", "pool", "fc", "out"],
                "smoke-blocks2": ["conv", "pool", "conv2", "pool2", "fc", "out"]}


def test_rsa_table_compares_every_layer_with_v1(smoke_run):
    table = pd.read_csv(smoke_run / "results" / "smoke" / "rsa" / "rsa.tsv", sep="\t")
    layers = {"normative": ["conv", "pool", "fc", "out"], "encoder": ["conv", "fc"],
              **SMOKE_FAMILY}
    expected = {(net, layer) for net, names in layers.items() for layer in names}
    assert set(zip(table["network"], table["layer"], strict=True)) == expected
    assert set(table["comparator"]) == {"pearson", "spearman", "cosine"}
    assert table[["value", "ci_low", "ci_high", "p", "q"]].notna().all().all()
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    assert (table["noise_ceiling_lower"] <= table["noise_ceiling_upper"]).all()
    pearson = table[table["comparator"] == "pearson"].set_index("candidate")["value"]
    # the course's finding: pooling is closer to V1 than the early conv layer
    assert pearson["normative/seed12/pool"] > pearson["normative/seed12/conv"]
    samples = xr.load_dataset(smoke_run / "results" / "smoke" / "rsa" / "rsa.nc",
                              engine="h5netcdf")
    assert samples["bootstrap"].sizes["sample"] == 100  # config/smoke.yaml
    cka = pd.read_csv(smoke_run / "results" / "smoke" / "rsa" / "cka.tsv", sep="\t")
    assert cka["value"].between(0, 1).all() and len(cka) == len(expected)


def test_pairwise_table_and_model_comparison_figure(smoke_run):
    folder = smoke_run / "results" / "smoke" / "rsa"
    table = pd.read_csv(folder / "rsa.tsv", sep="\t")
    pairwise = pd.read_csv(folder / "pairwise.tsv", sep="\t")
    # 20 layers of five single-seed networks (the normative CNN, the encoder and the smoke
    # family's three variants): every pair (190) per comparator
    assert table.groupby("comparator")["candidate"].nunique().eq(20).all()
    assert len(pairwise) == 190 * 3 and set(pairwise["kind"]) == {"all_pairs"}
    assert list(pairwise.columns[:5]) == ["reference", "comparator", "candidate_a",
                                          "candidate_b", "kind"]
    values = table.set_index(["comparator", "candidate"])["value"]
    for row in pairwise.itertuples(index=False):
        assert row.value_a == pytest.approx(values[(row.comparator, row.candidate_a)])
        assert row.difference == pytest.approx(row.value_a - row.value_b)
        assert row.ci_low <= row.ci_high and 0 < row.p <= 1 and row.q >= row.p
        assert row.dof == 29 and row.n_seeds_a == row.n_seeds_b == 1  # 30 conditions
    assert table[["p_zero", "p_noise"]].notna().all().all() and (table["n_seeds"] == 1).all()
    figures = smoke_run / "results" / "smoke" / "figures" / "rsa"
    assert (figures / "comparison.png").stat().st_size > 0
    assert (figures / "comparison.svg").stat().st_size > 0


def test_a_group_of_simulated_mice(smoke_run):
    folder = smoke_run / "results" / "groups" / "mice"
    table = pd.read_csv(folder / "rsa.tsv", sep="\t")
    dots = pd.read_csv(folder / "recordings.tsv", sep="\t")
    pairwise = pd.read_csv(folder / "pairwise.tsv", sep="\t")
    layers = [f"normative/seed12/{layer}" for layer in ("conv", "pool", "fc", "out")]
    assert list(table["candidate"].unique()) == layers  # config/smoke.yaml: networks [normative]
    assert set(dots["dataset"]) == {"smoke", "mouse1", "mouse2", "mouse3"}
    assert (table["n_recordings"] == 4).all() and len(pairwise) == 6 * 3
    # the smoke recording's own value is the one of its rsa.tsv; the group's is the mean
    own = pd.read_csv(smoke_run / "results" / "smoke" / "rsa" / "rsa.tsv", sep="\t")
    own = own.set_index(["comparator", "candidate"])["value"]
    smoke_dots = dots[dots["dataset"] == "smoke"].set_index(["comparator", "candidate"])
    for key, value in smoke_dots["value"].items():
        assert value == pytest.approx(own[key], abs=1e-12)
    means = dots.groupby(["comparator", "candidate"])["value"].mean()
    for row in table.itertuples(index=False):
        assert row.value == pytest.approx(means[(row.comparator, row.candidate)], abs=1e-12)
        assert row.ci_low <= row.ci_high and row.se > 0
        assert row.noise_ceiling_lower <= row.noise_ceiling_upper <= 1
    pearson = table[table["comparator"] == "pearson"].set_index("candidate")["value"]
    assert pearson["normative/seed12/pool"] > pearson["normative/seed12/conv"]
    assert (folder / "figures" / "rsa.png").stat().st_size > 0
    # the other mice need only their V1 RDMs and the network's RDMs: no decoders, no figures
    mouse = smoke_run / "results" / "mouse1"
    assert (mouse / "rdms" / "v1.nc").exists() and (mouse / "rdms" / "normative").exists()
    assert not (mouse / "models").exists() and not (mouse / "figures").exists()
    assert not (mouse / "rdms" / "encoder").exists()


def test_a_group_of_one_recording_stops_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bad.yaml").write_text("groups:\n  mice:\n    datasets: [smoke]\n")
    result = snakemake(workdir, "--configfile", "config/smoke.yaml", "bad.yaml", check=False)
    assert result.returncode != 0
    assert ("config: groups.mice.datasets: a group needs at least two recordings, got "
            "['smoke']") in result.stdout + result.stderr
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_receptive_fields_of_the_normative_cnn_grow_with_depth(smoke_run):
    folder = smoke_run / "results" / "models" / "normative" / "seed12"
    sizes = pd.read_csv(folder / "receptive_fields.tsv", sep="\t").set_index("layer")
    assert list(sizes.index) == ["conv", "pool", "fc", "out"]
    area = sizes["area_px"]
    assert area["conv"] < area["pool"] < area["fc"]
    fields = xr.load_dataset(folder / "receptive_fields.nc", engine="h5netcdf")
    assert fields["discrepancy"].dims == ("unit", "y", "x")
    assert (fields.attrs["patch_size"], fields.attrs["stride"]) == (4, 2)
    # a conv unit reads its 7 × 7 footprint: a 4-pixel patch centred at c covers c − 1 … c + 2,
    # so only centres c in rows (columns) i − 5 … i + 4 of the unit at (i, j) can change it
    conv = fields.isel(unit=fields["layer"].values == "conv")
    for unit in range(conv.sizes["unit"]):
        i, j = (int(conv[name].values[unit]) for name in ("unit_y_px", "unit_x_px"))
        near = ((np.abs(conv["y"].values - (i - 0.5)) <= 4.5)[:, None]
                & (np.abs(conv["x"].values - (j - 0.5)) <= 4.5)[None, :])
        values = conv["discrepancy"].values[unit]
        assert values[~near].max() <= 1e-5 * values.max()
    assert (smoke_run / "results" / "figures" / "normative" / "seed12" /
            "receptive_fields.png").stat().st_size > 0


def test_the_smoke_family_is_trained_compared_and_ranked(smoke_run):
    results = smoke_run / "results" / "smoke"
    board = pd.read_csv(results / "rsa" / "leaderboard.tsv", sep="\t")
    seeds = pd.read_csv(results / "rsa" / "leaderboard_seeds.tsv", sep="\t")
    assert set(board["network"]) == {"normative", "encoder", *SMOKE_FAMILY}
    assert len(board) == 5 * 3 and len(seeds) == 5 * 3  # networks x comparators, one seed each
    family = board[board["family"] == "smoke"].set_index(["network", "comparator"])
    assert set(family.index.get_level_values(0)) == set(SMOKE_FAMILY)
    pearson = family.xs("pearson", level="comparator")
    assert pearson.loc["smoke-epochs0", "untrained"] and pearson.loc["smoke-epochs0",
                                                                      "n_epochs"] == 0
    assert pearson.loc["smoke-epochs0", "test_accuracy"] < 0.7  # chance: 0.5
    assert (pearson.loc[["smoke-base", "smoke-blocks2"], "test_accuracy"] > 0.9).all()
    assert pearson.loc["smoke-blocks2", "n_blocks"] == 2
    for network, layers in SMOKE_FAMILY.items():
        assert pearson.loc[network, "best_layer"] in layers
        assert all(np.isfinite(pearson.loc[network, f"similarity_{layer}"]) for layer in layers)
    # with two folds, choosing on one and scoring on the other never beats choosing in sample
    assert (board["best_score"] <= board["in_sample_best_score"] + 1e-12).all()
    ranks = board.groupby("comparator", sort=False)["rank"].apply(list)
    assert list(ranks) == [[1, 2, 3, 4, 5]] * 3

    # the same numbers as the RSA table's, computed apart: similarity with single-fold RDMs,
    # and the noise ceiling
    rsa = pd.read_csv(results / "rsa" / "rsa.tsv", sep="\t").set_index(["candidate",
                                                                         "comparator"])
    for _, row in seeds.iterrows():
        for layer in SMOKE_FAMILY.get(row["network"], []):
            expected = rsa.loc[(f"{row['network']}/seed{row['seed']}/{layer}",
                                row["comparator"])]
            assert row[f"similarity_{layer}"] == pytest.approx(expected["value_fold_mean"],
                                                                rel=1e-10, abs=1e-12)
            assert row["noise_ceiling_lower"] == pytest.approx(expected["noise_ceiling_lower"])
    for name in ("accuracy", "depth", "layers"):
        for suffix in ("png", "svg"):
            assert (results / "figures" / "families" / f"{name}.{suffix}").stat().st_size > 0
    # family members get the summary figures, not figures of their own
    assert not (results / "figures" / "rdms" / "smoke-base").exists()


def test_the_untrained_variant_keeps_its_initial_weights(smoke_run):
    import torch

    from v1rsa import normative

    def weights(network):
        folder = smoke_run / "results" / "models" / network / "seed0"
        metrics = json.loads((folder / "metrics.json").read_text())
        saved = torch.load(folder / "model.pt", weights_only=True)
        initial = normative.build(metrics["architecture"]).state_dict()  # seed 0, as the family
        return metrics, saved, initial

    metrics, saved, initial = weights("smoke-epochs0")
    assert metrics["n_epochs_run"] == 0 and saved.keys() == initial.keys()
    for name, tensor in initial.items():
        assert torch.equal(saved[name], tensor), name
    history = pd.read_csv(smoke_run / "results" / "models" / "smoke-epochs0" / "seed0" /
                          "history.tsv", sep="\t")
    assert history.empty and list(history.columns) == list(normative.HISTORY_COLUMNS)
    metrics, saved, initial = weights("smoke-base")  # the same network, trained
    assert metrics["n_epochs_run"] == 8 and not torch.equal(saved["fc.weight"],
                                                             initial["fc.weight"])


def test_held_out_accuracy_is_scored_on_gratings_never_seen_in_training(smoke_run):
    from v1rsa import io, normative, stimuli, training

    stimuli_folder = smoke_run / "results" / "stimuli"
    train = io.read_netcdf(stimuli_folder / "tilt_train.nc", ["image"])
    test = io.read_netcdf(stimuli_folder / "tilt_test.nc", ["image", "label"])
    unseen = stimuli.unseen(test["image"].values, train["image"].values)
    assert 0 < (~unseen).sum() < 30  # the smoke sets share some images: those are left out
    for network in ["normative/seed12", *(f"{name}/seed0" for name in SMOKE_FAMILY)]:
        folder = smoke_run / "results" / "models" / network
        metrics = json.loads((folder / "metrics.json").read_text())
        model = training.load_state_dict(normative.build(metrics["architecture"]),
                                         folder / "model.pt")
        scores = normative.evaluate_tilt(model, test["image"].values[unseen],
                                         test["label"].values[unseen])
        assert scores["accuracy"] == metrics["test_accuracy"], network
        assert metrics["n_test"] == unseen.sum()
        assert metrics["n_test_seen_in_training"] == (~unseen).sum()
        assert metrics["device"] == "cpu"


SMALL_CNN = (
    "custom_networks:\n"
    "  small:\n"
    "    factory: {factory}\n"
    "    kwargs: {{hidden: 6}}\n"
    "    weights: small.pt\n"
    "    layers: {layers}\n"
    "    input:\n"
    "      size: [24, 32]\n"
    "      value_range: [-1.0, 1.0]\n"
    "      n_channels: 3\n"
    "    receptive_fields:\n"
    "      layers: [features.0, classifier.1]\n"
)
SMALL_CNN_LAYERS = ["features.0", "features.2", "classifier.1"]


def add_small_cnn(workdir, monkeypatch, *, factory="networks:small_cnn",
                  layers=SMALL_CNN_LAYERS, weights_hidden=6):
    """Configure tests/networks.py's SmallCNN as a network of one's own, with saved weights;
    returns the config file's name."""
    import torch

    import networks

    monkeypatch.setenv("PYTHONPATH", str(Path(networks.__file__).parent), prepend=os.pathsep)
    torch.manual_seed(5)
    torch.save(networks.small_cnn(hidden=weights_hidden).state_dict(), workdir / "small.pt")
    (workdir / "small.yaml").write_text(
        SMALL_CNN.format(factory=factory, layers="[" + ", ".join(layers) + "]"))
    return "small.yaml"


def test_a_network_of_ones_own_is_compared_with_v1_like_the_built_in_ones(smoke_copy,
                                                                          monkeypatch):
    configfile = add_small_cnn(smoke_copy, monkeypatch)
    result = snakemake(smoke_copy, "--configfile", "config/smoke.yaml", configfile)
    # only the new network's jobs run; the built-in networks' activations are kept
    ran = re.findall(r"rule (activations|rdm):\n(?:.*\n)*?\s*wildcards: (.*)",
                     result.stdout + result.stderr)
    assert ran and all("network=small" in wildcards for _, wildcards in ran), ran

    table = pd.read_csv(smoke_copy / "results" / "smoke" / "rsa" / "rsa.tsv", sep="\t")
    small = table[table["network"] == "small"]
    assert list(dict.fromkeys(small["layer"])) == SMALL_CNN_LAYERS
    assert small["candidate"].str.startswith("small/seed0/").all()  # no training seed: seed0
    assert len(small) == 3 * 3  # layers × comparators
    assert set(table["network"]) == {"normative", "encoder", "small", *SMOKE_FAMILY}
    activations = xr.load_dataset(
        smoke_copy / "results" / "smoke" / "activations" / "small" / "seed0.nc",
        engine="h5netcdf")
    assert activations["features.0"].shape == (30, 4 * 24 * 32)
    assert activations.attrs["factory"] == "networks:small_cnn"
    sizes = pd.read_csv(smoke_copy / "results" / "models" / "small" / "seed0" /
                        "receptive_fields.tsv", sep="\t").set_index("layer")
    assert sizes.loc["features.0", "area_px"] < sizes.loc["classifier.1", "area_px"]
    for figure in ("representations/small/seed0/tsne.png", "rdms/small/seed0/matrices.png"):
        assert (smoke_copy / "results" / "smoke" / "figures" / figure).exists()
    again = snakemake(smoke_copy, "-n", "--configfile", "config/smoke.yaml", configfile)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"factory": "my_lab.nets:small_cnn"},
         r"custom_networks.small: factory 'my_lab.nets:small_cnn': cannot import module "
         r"'my_lab.nets'"),
        ({"layers": ["features.0", "features.9"]},
         r"custom_networks.small: layer\(s\) \['features.9'\] not found in SmallCNN"),
        ({"weights_hidden": 12},
         r"custom_networks.small: small.pt: weights do not fit the SmallCNN architecture"),
    ],
    ids=["import path", "layer name", "weights"],
)
def test_a_bad_network_of_ones_own_stops_the_workflow_before_any_job(tmp_path, monkeypatch,
                                                                     mistake, message):
    workdir = copy_workflow(tmp_path / "wf")
    configfile = add_small_cnn(workdir, monkeypatch, **mistake)
    result = snakemake(workdir, "--configfile", "config/smoke.yaml", configfile, check=False)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stderr[-3000:]
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


OWN_FAMILY = (
    "custom_networks:\n"
    "  tiny:\n"
    "    factory: networks:small_cnn\n"
    "    kwargs: {{n_outputs: 1}}\n"
    "    weights: null\n"
    "    layers: [features.2, classifier.1]\n"
    "    input: {{size: [24, 32], n_channels: 3}}\n"
    "families:\n"
    "  own:\n"
    "    network: tiny\n"
    "    base: {{n_epochs: 6, lr: 0.05, momentum: 0.9}}\n"
    "    grid: {grid}\n"
    "run_families: [smoke, own]\n"
)


def own_family(workdir, monkeypatch, grid):
    """A family of tests/networks.py's SmallCNN (one logit) over its factory's arguments."""
    import networks

    monkeypatch.setenv("PYTHONPATH", str(Path(networks.__file__).parent), prepend=os.pathsep)
    (workdir / "own.yaml").write_text(OWN_FAMILY.format(grid=grid))
    return "own.yaml"


def test_a_family_of_ones_own_network_is_trained_on_the_tilt_task(smoke_copy, monkeypatch):
    import torch

    import networks
    from v1rsa import activations, normative

    configfile = own_family(smoke_copy, monkeypatch, "{hidden: [8, 16]}")
    snakemake(smoke_copy, "--configfile", "config/smoke.yaml", configfile)
    board = pd.read_csv(smoke_copy / "results" / "smoke" / "rsa" / "leaderboard.tsv", sep="\t")
    own = board[(board["family"] == "own") & (board["comparator"] == "pearson")]
    # the factory's default (hidden 8) is not in the base's kwargs: both values are named
    assert sorted(own["network"]) == ["own-hidden16", "own-hidden8"]
    assert (own["hidden"].isin([8, 16])).all() and own["test_accuracy"].notna().all()
    assert set(own["best_layer"]) <= {"features.2", "classifier.1"}
    folder = smoke_copy / "results" / "models" / "own-hidden16" / "seed0"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["architecture"] == {"factory": "networks:small_cnn",
                                       "kwargs": {"n_outputs": 1, "hidden": 16}}
    network = activations.build_network("networks:small_cnn", kwargs={"n_outputs": 1,
                                                                     "hidden": 16},
                                        weights=folder / "model.pt")
    test = held_out_gratings(smoke_copy)
    images = activations.adapt_images(test["image"].values, size=[24, 32], n_channels=3)
    scores = normative.evaluate_tilt(network, images, test["label"].values)
    assert scores["accuracy"] == metrics["test_accuracy"]
    assert isinstance(network, networks.SmallCNN) and metrics["n_epochs_run"] == 6
    initial = activations.build_network("networks:small_cnn", kwargs={"n_outputs": 1,
                                                                     "hidden": 16})
    assert not torch.equal(network.classifier[1].weight, initial.classifier[1].weight)


def test_a_family_member_that_is_no_tilt_classifier_stops_the_workflow(tmp_path, monkeypatch):
    workdir = copy_workflow(tmp_path / "wf")
    configfile = own_family(workdir, monkeypatch, "{n_outputs: [1, 2]}")
    result = snakemake(workdir, "-n", "--configfile", "config/smoke.yaml", configfile,
                       check=False)
    assert result.returncode != 0
    assert re.search(r"config: families\.own: variant 'n_outputs2': SmallCNN must return one "
                     r"logit", result.stdout + result.stderr), result.stderr[-3000:]


def test_jobs_run_the_library_of_their_own_checkout(tmp_path):
    # The library installed for the tests is this repository's; two copies of the workflow each
    # run their own workflow/src/v1rsa (the files their rules track), not the installed one.
    first = copy_workflow(tmp_path / "first")
    second = copy_workflow(tmp_path / "second")
    module = second / "workflow" / "src" / "v1rsa" / "stimuli.py"
    text = module.read_text()
    drawn = "return np.random.default_rng(seed).uniform(-90.0, 90.0, int(n))"
    assert drawn in text
    module.write_text(text.replace(drawn, "return np.zeros(int(n)) + 45.0"))
    target = "results/stimuli/tilt_test.nc"
    for workdir in (first, second):
        snakemake(workdir, target, "--configfile", "config/smoke.yaml")
    with (xr.open_dataset(first / target, engine="h5netcdf") as ours,
          xr.open_dataset(second / target, engine="h5netcdf") as edited):
        assert len(np.unique(ours["orientation"].values)) > 1
        assert (edited["orientation"].values == 45.0).all()
