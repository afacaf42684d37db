"""Tests of v1rsa.decoders on simulated V1 populations with von Mises tuning over 0–360°."""

import numpy as np
import pytest
import scipy.stats
import torch
import xarray as xr
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from v1rsa import decoders, decoding, training
from v1rsa.io import ContractError, read_netcdf, write_netcdf

N_NEURONS = 300
CHANCE_MEDIAN_ERROR_DEG = 90.0  # median |error| of a uniformly random guess over 360°


def simulate_population(n_neurons=N_NEURONS, n_trials=1200, noise=0.5, symmetric=False, seed=0):
    """Neurons tuned ``exp(κ(cos(θ − θ_pref) − 1))`` (κ = 2) plus Gaussian noise, z-scored.

    ``symmetric``: tuning on 2θ, so θ and θ + 180° evoke the same mean response. Every 4th trial
    is a test trial, as in Stringer et al.
    """
    rng = np.random.default_rng(seed)
    orientation_deg = rng.uniform(0, 360, n_trials)
    preferred_deg = rng.uniform(0, 360, n_neurons)
    phase = np.radians(orientation_deg[:, None] - preferred_deg[None, :]) * (2 if symmetric else 1)
    response = np.exp(2.0 * (np.cos(phase) - 1)) + noise * rng.standard_normal(phase.shape)
    response = scipy.stats.zscore(response, axis=0).astype(np.float32)
    split = np.where(np.arange(n_trials) % 4 == 3, "test", "train")
    return response, orientation_deg, split


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny problems: extra torch/BLAS threads only fight over shared cores.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def population():
    response, orientation_deg, split = simulate_population()
    train, test = split == "train", split == "test"
    return {"x_train": response[train], "y_train": orientation_deg[train],
            "x_test": response[test], "y_test": orientation_deg[test],
            "response": response, "orientation_deg": orientation_deg, "split": split}


# Settings that train each network well on the simulated population in well under a second.
TRAINING = {
    "regressor": dict(architecture={}, lr=3e-4, n_iterations=200),
    "classifier": dict(architecture={}, lr=0.1, n_iterations=200, l1=5e-4, l2=1e-2),
    "circular": dict(architecture={}, lr=0.1, n_iterations=200),
}


def fit_and_predict(kind, x_train, y_train, x_test):
    """Train decoder ``kind`` (a torch kind or ``ridge``) and decode ``x_test`` in degrees."""
    if kind == "ridge":
        return decoding.RidgeVonMises().fit(x_train, y_train).predict(x_test)
    settings = dict(TRAINING[kind])
    model = decoders.build_decoder(kind, x_train.shape[1], **settings.pop("architecture"))
    decoders.train_decoder(model, x_train, y_train, kind=kind, seed=1, device="cpu",
                           progress=False, **settings)
    return decoders.predict_deg(model, x_test, kind)


@pytest.fixture(scope="module")
def predictions(population):
    """Test-set predictions of every decoder, trained on true and on shuffled orientations."""
    shuffled = np.random.default_rng(7).permutation(population["y_train"])
    out = {}
    for kind in ("regressor", "classifier", "circular", "ridge"):
        out[kind] = fit_and_predict(kind, population["x_train"], population["y_train"],
                                    population["x_test"])
        out[kind, "shuffled"] = fit_and_predict(kind, population["x_train"], shuffled,
                                                population["x_test"])
    return out


# ---------------------------------------------------------------------------------- scores


def test_circular_error_matches_the_literal_formula_for_both_periods():
    rng = np.random.default_rng(0)
    predicted, true = rng.uniform(-720, 720, 1000), rng.uniform(0, 360, 1000)
    for period in (360.0, 180.0):
        # |wrap(p − t) into [−P/2, P/2)|, written independently of the library's min(d, P − d)
        literal = np.abs((predicted - true + period / 2) % period - period / 2)
        np.testing.assert_allclose(decoding.circular_error_deg(predicted, true, period), literal,
                                   atol=1e-9)
    assert decoding.circular_error_deg(np.array([359.0]), np.array([1.0]))[0] == pytest.approx(2)
    assert decoding.circular_error_deg(np.array([0.0]), np.array([180.0]))[0] == 180
    assert decoding.circular_error_deg(np.array([0.0]), np.array([180.0]), 180.0)[0] == 0
    assert decoding.circular_error_deg(np.array([10.0]), np.array([170.0]), 180.0)[0] == 20


def test_decoding_metrics_and_the_chance_level_of_a_random_guess():
    rng = np.random.default_rng(1)
    true = rng.uniform(0, 360, 20_000)
    chance = decoding.decoding_metrics(rng.uniform(0, 360, true.size), true)
    assert chance["median_abs_error_deg"] == pytest.approx(CHANCE_MEDIAN_ERROR_DEG, abs=2)
    assert chance["fraction_within_5deg"] == pytest.approx(10 / 360, abs=0.005)
    assert chance["n_test"] == true.size

    metrics = decoding.decoding_metrics(np.array([1.0, 358.0, 20.0, 100.0]),
                                        np.array([359.0, 3.0, 10.0, 100.0]))
    assert metrics == {"median_abs_error_deg": 3.5, "fraction_within_5deg": 0.75, "n_test": 4}


def test_split_conditions_is_a_seeded_60_40_partition():
    train, test = decoding.split_conditions(360, train_fraction=0.6, seed=4)
    assert (len(train), len(test)) == (216, 144)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(360))
    np.testing.assert_array_equal(decoding.split_conditions(360, 0.6, seed=4)[0], train)
    assert not np.array_equal(decoding.split_conditions(360, 0.6, seed=5)[0], train)


# ---------------------------------------------------------------------------------- decoders


@pytest.mark.parametrize("kind, max_median_error_deg", [
    ("regressor", 35.0), ("classifier", 12.0), ("circular", 12.0), ("ridge", 12.0)])
def test_each_decoder_beats_shuffled_labels_and_chance(population, predictions, kind,
                                                        max_median_error_deg):
    error = decoding.decoding_metrics(predictions[kind], population["y_test"])
    shuffled = decoding.decoding_metrics(predictions[kind, "shuffled"], population["y_test"])
    assert error["median_abs_error_deg"] < max_median_error_deg
    assert shuffled["median_abs_error_deg"] > CHANCE_MEDIAN_ERROR_DEG / 2
    assert error["median_abs_error_deg"] < shuffled["median_abs_error_deg"] / 2.5
    assert error["median_abs_error_deg"] < CHANCE_MEDIAN_ERROR_DEG / 2.5
    assert error["fraction_within_5deg"] > 3 * 10 / 360  # 3 × chance


def test_circular_decoder_has_no_pile_up_of_errors_at_0_and_360(population, predictions):
    true = population["y_test"]
    near_wrap = (true < 20) | (true >= 340)
    middle = (true >= 90) & (true < 270)

    def mean_error(kind, rows):
        return decoding.circular_error_deg(predictions[kind][rows], true[rows]).mean()

    # The regressor's outputs must travel from ~0° to ~360° where the responses are alike.
    assert mean_error("regressor", near_wrap) > 2.5 * mean_error("regressor", middle)
    assert mean_error("circular", near_wrap) < 1.5 * mean_error("circular", middle)
    assert mean_error("circular", near_wrap) < mean_error("regressor", near_wrap) / 5


def test_symmetric_circular_decoder_reads_orientation_modulo_180():
    response, orientation_deg, split = simulate_population(n_trials=800, symmetric=True, seed=3)
    train, test = split == "train", split == "test"
    model = decoders.CircularRegressor(N_NEURONS, symmetric=True)
    decoders.train_decoder(model, response[train], orientation_deg[train], kind="circular",
                           lr=0.1, n_iterations=200, seed=0, device="cpu", progress=False)
    predicted = decoders.predict_deg(model, response[test], "circular")
    assert model.period == 180 and predicted.min() >= 0 and predicted.max() < 180
    error = decoding.decoding_metrics(predicted, orientation_deg[test], period=180)
    assert error["median_abs_error_deg"] < 10  # chance is 45° over 180°


def test_classifier_bins_match_the_course_digitize():
    model = decoders.MLPClassifier(5)
    angles = np.array([0.0, 17.99, 18.0, 100.0, 342.0, 359.99])
    course_bins = np.digitize(angles, np.linspace(0, 360, 21)) - 1
    np.testing.assert_array_equal(model.bin_index(angles), course_bins)
    assert model.bin_centres_deg()[[0, -1]].tolist() == [9.0, 351.0]


def test_same_seed_gives_identical_weights_and_a_history(population):
    def train(seed):
        model = decoders.CircularRegressor(N_NEURONS, hidden=8)
        history = decoders.train_decoder(
            model, population["x_train"], population["y_train"], kind="circular", lr=0.05,
            n_iterations=3, batch_size=128, seed=seed, device="cpu", progress=False,
            x_val=population["x_test"], y_val=population["y_test"])
        return model.state_dict(), history

    first, history = train(seed=11)
    torch.rand(5)  # move the global random state: the result must not depend on it
    second, _ = train(seed=11)
    other, _ = train(seed=12)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["in_layer.weight"], other["in_layer.weight"])

    assert [(row["epoch"], row["split"]) for row in history] == [
        (1, "train"), (1, "val"), (2, "train"), (2, "val"), (3, "train"), (3, "val")]
    assert all(np.isfinite(row["loss"]) for row in history)
    assert {"median_abs_error_deg", "fraction_within_5deg"} <= set(history[-1])


def test_progress_in_a_log_file_is_a_line_per_tenth_not_per_iteration(population, caplog):
    model = decoders.CircularRegressor(N_NEURONS, hidden=8)
    with caplog.at_level("INFO", logger="v1rsa.logs"):
        decoders.train_decoder(model, population["x_train"], population["y_train"],
                               kind="circular", lr=0.05, n_iterations=300, seed=0, device="cpu",
                               progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "v1rsa.logs"]
    assert len(lines) == 10
    assert lines[-1].startswith("train circular decoder: 100% (300 of 300 it")
    assert "loss=" in lines[-1]


@pytest.mark.parametrize("kind", ["regressor", "circular"])
def test_full_batch_training_in_the_data_span_takes_the_plain_sgd_steps(kind):
    """More neurons than samples, no penalty: the first layer trains as W₀ + Cᵀ X, and must
    take the same steps as plain full-batch SGD on the whole network."""
    response, orientation_deg, _ = simulate_population(n_trials=40, n_neurons=300, seed=5)
    x_train, y_train, x_val, y_val = response[:30], orientation_deg[:30], response[30:], \
        orientation_deg[30:]
    lr = {"regressor": 1e-4, "circular": 0.02}[kind]
    model = decoders.build_decoder(kind, 300, hidden=6)
    history = decoders.train_decoder(model, x_train, y_train, kind=kind, lr=lr, n_iterations=60,
                                     seed=3, device="cpu", x_val=x_val, y_val=y_val,
                                     progress=False)

    reference = decoders.build_decoder(kind, 300, hidden=6)
    training.seed_everything(3)  # the initial weights train_decoder draws from its seed
    decoders._reset_parameters(reference)
    targets = decoders._targets(reference, kind, y_train, torch.device("cpu"))
    optimizer = torch.optim.SGD(reference.parameters(), lr=lr)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(x_train)), targets)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_losses = [row["loss"] for row in history if row["split"] == "train"]
    np.testing.assert_allclose(train_losses, losses, rtol=1e-4)
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=1e-3, atol=1e-5,
                                   err_msg=name)
    with torch.no_grad():
        val_loss = torch.nn.functional.mse_loss(
            model(torch.from_numpy(x_val)),
            decoders._targets(model, kind, y_val, torch.device("cpu"))).item()
    assert [row for row in history if row["split"] == "val"][-1]["loss"] == pytest.approx(
        val_loss, rel=1e-4)


def test_l1_l2_penalties_shrink_the_input_weights(population):
    norms = []
    for l2 in (0.0, 0.1):
        model = decoders.MLPClassifier(N_NEURONS)
        history = decoders.train_decoder(model, population["x_train"], population["y_train"],
                                         kind="classifier", lr=0.1, n_iterations=50, l2=l2,
                                         seed=0, device="cpu", progress=False)
        norms.append(model.in_layer.weight.square().sum().item())
        assert history[-1]["penalty"] == pytest.approx(0.0 if l2 == 0 else l2 * norms[-1],
                                                       rel=0.05)
    assert norms[1] < norms[0] / 2


def test_bad_input_is_refused_with_a_clear_message(population):
    model = decoders.MLPRegressor(N_NEURONS)
    with pytest.raises(TypeError, match="CircularRegressor"):
        decoders.train_decoder(model, population["x_train"], population["y_train"],
                               kind="circular", lr=0.1, n_iterations=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match="neurons"):
        decoders.train_decoder(model, population["x_train"][:, :10], population["y_train"],
                               kind="regressor", lr=1e-4, n_iterations=1, seed=0, device="cpu")
    with pytest.raises(FloatingPointError, match="smaller lr"):
        decoders.train_decoder(model, population["x_train"], population["y_train"],
                               kind="regressor", lr=1.0, n_iterations=50, seed=0, device="cpu",
                               progress=False)


# ---------------------------------------------------------------------------------- ridge


@pytest.mark.parametrize("n_samples, n_features", [(60, 20), (25, 80)])  # primal, dual
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_ridge_regression_equals_sklearn(n_samples, n_features, fit_intercept):
    rng = np.random.default_rng(n_samples)
    x = rng.standard_normal((n_samples, n_features)) + 0.5
    y = rng.standard_normal((n_samples, 4))
    coef, intercept = decoding.ridge_regression(x, y, alpha=n_samples,
                                                fit_intercept=fit_intercept)
    reference = Ridge(alpha=n_samples, fit_intercept=fit_intercept).fit(x, y)
    np.testing.assert_allclose(coef, reference.coef_.T, atol=1e-8, rtol=0)
    np.testing.assert_allclose(intercept, np.broadcast_to(reference.intercept_, (4,)),
                               atol=1e-8, rtol=0)


def test_ridge_von_mises_is_sklearn_ridge_on_z_scored_bumps():
    response, orientation_deg, _ = simulate_population(n_neurons=40, n_trials=90, seed=5)
    response = response.astype(np.float64)  # float32 would be solved in float32, as sklearn does
    decoder = decoding.RidgeVonMises(n_basis=48, concentration=10.0).fit(response,
                                                                       orientation_deg)
    centres = np.arange(48) * 7.5
    bumps = np.exp(10.0 * (np.cos(np.radians(orientation_deg[:, None] - centres)) - 1))
    target = scipy.stats.zscore(bumps, axis=1)  # the authors z-score across the bumps
    reference = Ridge(alpha=len(response), fit_intercept=False).fit(response, target)
    np.testing.assert_allclose(decoder.basis(orientation_deg), target, atol=1e-12)
    np.testing.assert_allclose(decoder.coef_, reference.coef_.T, atol=1e-8, rtol=0)
    assert decoder.alpha_ == 90


def test_ridge_profile_argmax_on_the_fine_grid_recovers_the_angle():
    decoder = decoding.RidgeVonMises(grid_step_deg=0.1)
    angles = np.random.default_rng(2).uniform(0, 360, 500)
    recovered = decoder.angle_from_profile(decoder.basis(angles))
    assert decoding.circular_error_deg(recovered, angles).max() < 0.2
    interpolation = decoder.interpolation_matrix()
    assert interpolation.shape == (3600, 48)
    np.testing.assert_allclose(interpolation[::75], np.eye(48), atol=1e-12)  # knots every 7.5°


def test_ridge_round_trips_through_netcdf(tmp_path, population):
    decoder = decoding.RidgeVonMises(n_basis=24).fit(population["x_train"],
                                                    population["y_train"])
    path = tmp_path / "ridge.nc"
    write_netcdf(decoder.to_dataset(neuron=np.arange(N_NEURONS) + 100), path)
    restored = decoding.RidgeVonMises.from_dataset(read_netcdf(path, ["coef", "intercept"]))
    np.testing.assert_array_equal(restored.predict(population["x_test"]),
                                  decoder.predict(population["x_test"]))
    assert (restored.n_basis, restored.alpha_) == (24, len(population["y_train"]))
    with pytest.raises(ContractError, match="'intercept'"):
        decoding.RidgeVonMises.from_dataset(decoder.to_dataset().drop_vars("intercept"))


def test_ridge_error_falls_as_neurons_and_trials_grow(population):
    table = decoding.scaling_table(
        population["response"], population["orientation_deg"], population["split"],
        n_neurons_list=[10, 40, N_NEURONS], n_trials_list=[100, 300, 900], n_repeats=2, seed=0,
        progress=False)
    assert len(table) == (3 + 3) * 2
    mean_error = table.groupby(["axis", "n"])["median_abs_error_deg"].mean()
    for axis in ("neurons", "trials"):
        assert mean_error[axis].is_monotonic_decreasing
        rows = table[table.axis == axis]
        assert rows["fit_alpha_deg"].nunique() == 1
        assert rows["fit_beta_deg"].iloc[0] > 0  # error shrinks like 1/√n
        expected = decoding.fit_alpha_beta(rows["n"], rows["median_abs_error_deg"])
        assert (rows["fit_alpha_deg"].iloc[0], rows["fit_beta_deg"].iloc[0]) == expected

    # The Gram-matrix shortcut of the trials axis equals a direct fit on all training trials.
    direct = decoding.RidgeVonMises().fit(population["x_train"], population["y_train"])
    expected = decoding.decoding_metrics(direct.predict(population["x_test"]),
                                         population["y_test"])
    # So does the neurons axis at all the neurons, every repeat (only their order differs).
    everything = (((table.axis == "trials") & (table.n == 900))
                  | ((table.axis == "neurons") & (table.n == N_NEURONS)))
    assert everything.sum() == 2 + 2  # two repeats each
    for _, full in table[everything].iterrows():
        assert full["median_abs_error_deg"] == pytest.approx(expected["median_abs_error_deg"],
                                                             abs=0.05)
        assert full["fraction_within_5deg"] == pytest.approx(expected["fraction_within_5deg"],
                                                             abs=1 / 300)
    with pytest.raises(ValueError, match="n_trials_list"):
        decoding.scaling_table(population["response"], population["orientation_deg"],
                               population["split"], n_neurons_list=[10], n_trials_list=[5000],
                               n_repeats=1, seed=0, progress=False)


def test_sizes_above_the_recording_are_left_out_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="v1rsa.decoding"):
        kept = decoding.available_sizes([100, 300, 1000, 3000], 400, "decoders.scaling.n_neurons")
    assert kept == [100, 300]
    assert "decoders.scaling.n_neurons: left out [1000, 3000], above the 400" in caplog.text

    caplog.clear()
    with caplog.at_level("WARNING", logger="v1rsa.decoding"):
        assert decoding.available_sizes([100, 300], 400, "n") == [100, 300]
    assert caplog.text == ""
    with pytest.raises(ValueError, match="needs at least 2 sizes"):
        decoding.available_sizes([100, 1000, 3000], 400, "decoders.scaling.n_neurons")


def test_fit_alpha_beta_recovers_exact_parameters():
    n = np.repeat([100, 300, 1000, 3000, 10000], 3)
    alpha, beta = decoding.fit_alpha_beta(n, 1.25 + 40.0 / np.sqrt(n))
    assert alpha == pytest.approx(1.25, abs=1e-10) and beta == pytest.approx(40.0, abs=1e-9)
    with pytest.raises(ValueError, match="two distinct"):
        decoding.fit_alpha_beta([100, 100], [2.0, 3.0])


def as_trials(population):
    return xr.Dataset(
        {"response": (("trial", "neuron"), population["response"])},
        coords={"orientation": ("trial", population["orientation_deg"]),
                "split": ("trial", population["split"])},
    )


def test_decoding_split_uses_the_trials_split_or_the_course_split_of_bins(population):
    trials = as_trials(population)
    x_train, y_train, x_test, y_test = decoding.decoding_split(trials, test_fraction=0.4, seed=4)
    np.testing.assert_array_equal(x_test, population["x_test"])
    np.testing.assert_array_equal(y_train, population["y_train"])
    bins = trials.drop_vars("split").isel(trial=slice(0, 360))
    x_train, _, x_test, _ = decoding.decoding_split(bins, test_fraction=0.4, seed=4)
    train_index, test_index = decoding.split_conditions(360, 0.6, seed=4)
    np.testing.assert_array_equal(x_test, bins["response"].values[test_index])
    assert len(x_train) == len(train_index) == 216


def test_fit_decoder_and_fit_ridge_report_what_their_predictions_show(population):
    trials = as_trials(population)
    model, history, metrics, predictions = decoders.fit_decoder(
        trials, "circular", hyper={"hidden": 20, "lr": 0.1, "n_iterations": 100},
        test_fraction=0.4, split_seed=4, seed=0, device="cpu",
    )
    assert {row["split"] for row in history} == {"train", "test"}
    assert len(predictions) == metrics["n_test"] == len(population["y_test"])
    assert metrics["median_abs_error_deg"] == pytest.approx(predictions["abs_error_deg"].median())
    assert metrics["median_abs_error_deg"] < 20
    rebuilt = decoders.build_decoder(**metrics["architecture"])
    assert type(rebuilt) is type(model)
    _, metrics, predictions = decoding.fit_ridge(trials, n_basis=48, test_fraction=0.4,
                                                 split_seed=4)
    assert metrics["median_abs_error_deg"] == pytest.approx(predictions["abs_error_deg"].median())
    assert metrics["alpha"] == len(population["y_train"])
