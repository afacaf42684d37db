"""RDMs (v1rsa.rdm), checked against rsatoolbox 0.3.2, scipy and docs/science.md#distances."""

import numpy as np
import pytest
import torch
import xarray as xr
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm
from scipy.spatial.distance import cdist, squareform

from v1rsa import io
from v1rsa.rdm import (
    correlation_distance,
    cosine_distance,
    crossvalidated_distance,
    distance_matrix,
    rdm_dataset,
    rdm_from_activations,
    rdm_from_conditions,
    select_conditions,
    squared_euclidean_distance,
    upper_triangle,
)

# rsatoolbox's _build_rdms casts a NaN placeholder to int while labelling averaged patterns
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast")


@pytest.fixture
def responses():
    """(n_conditions, n_units) responses with shared structure, so distances differ."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 5)) @ rng.normal(size=(5, 200)) + rng.normal(size=(30, 200))


def rsatoolbox_rdm(x, method):
    return calc_rdm(Dataset(x), method=method).get_matrices()[0]


def check_is_rdm(rdm, n):
    assert rdm.shape == (n, n) and rdm.dtype == np.float64
    np.testing.assert_array_equal(rdm, rdm.T)
    np.testing.assert_array_equal(np.diag(rdm), 0.0)


def test_correlation_distance_equals_rsatoolbox_and_numpy(responses):
    rdm = correlation_distance(responses)
    check_is_rdm(rdm, 30)
    assert rdm.min() >= 0 and rdm.max() <= 2
    np.testing.assert_allclose(rdm, rsatoolbox_rdm(responses, "correlation"), atol=1e-10)
    np.testing.assert_allclose(rdm, 1 - np.corrcoef(responses), atol=1e-10)


def test_correlation_distance_is_the_course_formula(responses):
    """docs/science.md#distances written out literally: z-score each row (ddof 0),
    1 − z_i · z_j / N."""
    n_conditions, n_units = responses.shape
    z = [(row - row.mean()) / row.std(ddof=0) for row in responses]
    literal = np.empty((n_conditions, n_conditions))
    for i in range(n_conditions):
        for j in range(n_conditions):
            literal[i, j] = 1 - sum(z[i][k] * z[j][k] for k in range(n_units)) / n_units
    np.testing.assert_allclose(correlation_distance(responses), literal, atol=1e-10)


def test_correlation_distance_spans_zero_to_two():
    pattern = np.array([0.0, 1.0, 3.0, 2.0])
    rdm = correlation_distance(np.stack([pattern, 2 * pattern + 1, -pattern]))
    np.testing.assert_allclose(rdm, [[0, 0, 2], [0, 0, 2], [2, 2, 0]], atol=1e-15)


def test_squared_euclidean_distance_equals_rsatoolbox_euclidean(responses):
    rdm = squared_euclidean_distance(responses)
    check_is_rdm(rdm, 30)
    np.testing.assert_allclose(rdm, rsatoolbox_rdm(responses, "euclidean"), atol=1e-10)
    n_units = responses.shape[1]
    np.testing.assert_allclose(rdm, cdist(responses, responses, "sqeuclidean") / n_units,
                               atol=1e-10)


def test_cosine_distance_equals_scipy(responses):
    rdm = cosine_distance(responses)
    check_is_rdm(rdm, 30)
    np.testing.assert_allclose(rdm, cdist(responses, responses, "cosine"), atol=1e-10)


def folds_as_rsatoolbox_dataset(folds):
    n_folds, n_conditions, n_units = folds.shape
    names = np.array([f"c{i:03d}" for i in range(n_conditions)])
    return Dataset(folds.reshape(-1, n_units),
                   obs_descriptors={"conds": np.tile(names, n_folds),
                                    "fold": np.repeat(np.arange(n_folds), n_conditions)})


@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_crossvalidated_distance_equals_rsatoolbox_crossnobis(n_folds):
    rng = np.random.default_rng(n_folds)
    signal = rng.normal(size=(12, 40))
    folds = signal + rng.normal(size=(n_folds, 12, 40))
    expected = calc_rdm(folds_as_rsatoolbox_dataset(folds), method="crossnobis",
                        descriptor="conds", cv_descriptor="fold", noise=np.eye(40))
    rdm = crossvalidated_distance(folds)
    check_is_rdm(rdm, 12)
    np.testing.assert_allclose(rdm, expected.get_matrices()[0], atol=1e-10)


def test_crossvalidated_distance_is_the_mean_over_fold_pairs():
    rng = np.random.default_rng(7)
    folds = rng.normal(size=(3, 6, 10))
    literal = np.zeros((6, 6))
    pairs = [(a, b) for a in range(3) for b in range(3) if a < b]
    for i in range(6):
        for j in range(6):
            literal[i, j] = np.mean([(folds[a, i] - folds[a, j]) @ (folds[b, i] - folds[b, j])
                                     for a, b in pairs]) / 10
    np.testing.assert_allclose(crossvalidated_distance(folds), literal, atol=1e-12)


def test_crossvalidated_distance_is_not_inflated_by_noise():
    """Identical conditions measured with noise: the plain distance of the fold means grows
    with the noise (2σ²/n_folds per unit), the cross-validated one stays near its true 0."""
    rng = np.random.default_rng(3)
    n_folds, n_conditions, n_units, noise_sd = 4, 20, 500, 1.0
    folds = np.ones((n_conditions, n_units)) + rng.normal(
        scale=noise_sd, size=(n_folds, n_conditions, n_units))
    off_diagonal = ~np.eye(n_conditions, dtype=bool)
    plain = squared_euclidean_distance(folds.mean(axis=0))[off_diagonal].mean()
    crossvalidated = crossvalidated_distance(folds)[off_diagonal]
    np.testing.assert_allclose(plain, 2 * noise_sd**2 / n_folds, rtol=0.05)
    # the mean of 380 noisy entries, each with sd ≈ √(2/(n_folds(n_folds−1)))·2σ²/√n_units
    assert abs(crossvalidated.mean()) < 0.01
    assert crossvalidated.min() < 0  # unbiased estimates of 0 fall on both sides


def test_crossvalidated_distance_recovers_true_distances():
    rng = np.random.default_rng(4)
    signal = rng.normal(size=(8, 5000))
    folds = signal + rng.normal(size=(3, 8, 5000))
    truth = squared_euclidean_distance(signal)  # ≈ 2 per unit
    # each estimate errs by ≈ 0.03 (sd); the plain distance of the fold means is 2/3 too big
    np.testing.assert_allclose(crossvalidated_distance(folds), truth, atol=0.15)
    plain = squared_euclidean_distance(folds.mean(axis=0))
    assert np.abs(plain - truth).max() > 0.5


def test_constant_rows_are_refused_with_their_index():
    x = np.random.default_rng(5).normal(size=(4, 50))
    x[2] = 0.1  # centring a row of 0.1 leaves float64 rounding residue, not exact zeros
    with pytest.raises(ValueError, match=r"row\(s\).*constant.*\[2\]"):
        correlation_distance(x)
    x[2] = 0.0
    with pytest.raises(ValueError, match=r"all zero.*\[2\]"):
        cosine_distance(x)
    x[2, 0] = np.nan
    for distance in (correlation_distance, cosine_distance, squared_euclidean_distance):
        with pytest.raises(ValueError, match="x holds NaN"):
            distance(x)
    with pytest.raises(ValueError, match="folds holds NaN"):
        crossvalidated_distance(np.stack([x, x]))


def test_upper_triangle_is_row_major_like_squareform_and_rsatoolbox(responses):
    rdm = correlation_distance(responses)
    vector = upper_triangle(rdm)
    assert vector.shape == (30 * 29 // 2,)
    np.testing.assert_array_equal(vector, squareform(rdm, checks=False))
    np.testing.assert_allclose(vector, calc_rdm(Dataset(responses), method="correlation")
                               .get_vectors()[0], atol=1e-10)
    assert upper_triangle(np.arange(9).reshape(3, 3)).tolist() == [1, 2, 5]


def test_distance_matrix_picks_the_method(responses):
    np.testing.assert_array_equal(distance_matrix(responses, "cosine"),
                                  cosine_distance(responses))
    with pytest.raises(ValueError, match="unknown RDM method 'euclidean'"):
        distance_matrix(responses, "euclidean")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rdms_on_the_gpu_equal_the_cpu(responses):
    folds = np.stack([responses, responses[::-1]])
    np.testing.assert_allclose(correlation_distance(responses, device="cuda"),
                               correlation_distance(responses), atol=1e-12)
    np.testing.assert_allclose(crossvalidated_distance(folds, device="cuda"),
                               crossvalidated_distance(folds), atol=1e-12)


def conditions_1deg(n_folds=2, seed=0):
    """A small conditions.nc-like dataset: 1° bins at 0…359°, tuned responses, trial folds."""
    rng = np.random.default_rng(seed)
    orientation = np.arange(360.0)
    preferred = rng.uniform(0, 360, size=25)
    tuning = np.cos(np.deg2rad(orientation[:, None] - preferred[None]))
    folds = tuning + rng.normal(scale=0.5, size=(n_folds, 360, 25))
    return xr.Dataset(
        {"response": (("condition", "neuron"), folds.mean(0).astype(np.float32)),
         "response_fold": (("fold", "condition", "neuron"), folds.astype(np.float32))},
        coords={"condition": np.arange(360), "orientation": ("condition", orientation),
                "fold": np.arange(n_folds), "neuron": np.arange(25)},
        attrs={"source": "simulated", "checksum": "abc", "bin_width_deg": 1.0},
    )


def test_select_conditions_keeps_0_to_180_shifted_by_minus_90():
    selected = select_conditions(conditions_1deg())
    np.testing.assert_array_equal(selected["orientation"].values, np.arange(-90.0, 91.0))
    np.testing.assert_array_equal(selected["condition"].values, np.arange(181))
    assert selected["response_fold"].shape == (2, 181, 25)
    assert selected.attrs["orientation_shift_deg"] == -90.0
    with pytest.raises(ValueError, match=r"no condition has an orientation in \[400"):
        select_conditions(conditions_1deg(), min_deg=400, max_deg=500)


def test_rdm_from_conditions_writes_the_contract(tmp_path):
    conditions = select_conditions(conditions_1deg())
    ds = rdm_from_conditions(conditions, "correlation", source="v1")
    assert ds["rdm"].dims == ("condition", "condition_") and ds["rdm"].dtype == np.float64
    assert ds["rdm_fold"].dims == ("fold", "condition", "condition_")
    np.testing.assert_array_equal(ds["rdm"].values,
                                  correlation_distance(conditions["response"].values))
    np.testing.assert_array_equal(ds["rdm_fold"].values[1],
                                  correlation_distance(conditions["response_fold"].values[1]))
    np.testing.assert_array_equal(ds["orientation"].values, np.arange(-90.0, 91.0))
    np.testing.assert_array_equal(ds["orientation_"].values, np.arange(-90.0, 91.0))
    assert ds.attrs["method"] == "correlation" and ds.attrs["source"] == "v1"
    assert ds.attrs["data_source"] == "simulated" and ds.attrs["checksum"] == "abc"

    path = tmp_path / "rdms" / "v1.nc"
    io.write_netcdf(ds, path)
    back = io.read_netcdf(path, ["rdm", "rdm_fold"], {"rdm": ("condition", "condition_")})
    np.testing.assert_array_equal(back["rdm"].values, ds["rdm"].values)


def test_rdm_from_conditions_crossvalidated_uses_the_folds():
    conditions = conditions_1deg(n_folds=3)
    ds = rdm_from_conditions(conditions, "crossvalidated")
    np.testing.assert_array_equal(ds["rdm"].values,
                                  crossvalidated_distance(conditions["response_fold"].values))
    assert "rdm_fold" not in ds
    with pytest.raises(ValueError, match="needs variable 'response_fold"):
        rdm_from_conditions(conditions.drop_vars("response_fold"), "crossvalidated")


def test_rdm_from_conditions_refuses_missing_trials():
    conditions = conditions_1deg()
    conditions["response_fold"][0, 5] = np.nan
    with pytest.raises(ValueError, match="'response_fold' holds NaN"):
        rdm_from_conditions(conditions, "correlation")


def test_rdm_from_activations_labels_the_layer():
    rng = np.random.default_rng(2)
    activations = xr.Dataset(
        {"pool": (("condition", "pool_unit"), rng.random((7, 12)).astype(np.float32))},
        coords={"condition": np.arange(7), "orientation": ("condition", np.linspace(-90, 90, 7))},
        attrs={"model": "normative"})
    ds = rdm_from_activations(activations, "pool")
    np.testing.assert_array_equal(ds["rdm"].values,
                                  correlation_distance(activations["pool"].values))
    assert ds.attrs["source"] == "normative/pool" and ds.attrs["layer"] == "pool"
    with pytest.raises(ValueError, match=r"layer 'fc' is not in the activations; found \['pool'\]"):
        rdm_from_activations(activations, "fc")


def test_rdm_dataset_checks_shapes():
    with pytest.raises(ValueError, match=r"rdm must be \(3, 3\)"):
        rdm_dataset(np.zeros((4, 4)), [0, 1, 2], method="correlation", source="v1")
    with pytest.raises(ValueError, match=r"rdm_folds must be \(n_folds, 3, 3\)"):
        rdm_dataset(np.zeros((3, 3)), [0, 1, 2], rdm_folds=np.zeros((3, 3)),
                    method="correlation", source="v1")


# rsatoolbox conversion


def test_to_rsatoolbox_holds_what_calc_rdm_computes(responses):
    from rsatoolbox.rdm import compare

    from v1rsa import rsa
    from v1rsa.rdm import to_rsatoolbox

    ours = to_rsatoolbox(correlation_distance(responses), method="correlation",
                         names=["V1"], orientation_deg=np.arange(30) * 6.0)
    theirs = calc_rdm(Dataset(responses), method="correlation")
    np.testing.assert_allclose(ours.dissimilarities, theirs.dissimilarities, rtol=0, atol=1e-12)
    assert ours.dissimilarity_measure == theirs.dissimilarity_measure == "correlation"
    assert ours.rdm_descriptors["name"] == ["V1"]
    assert ours.pattern_descriptors["orientation"][:2] == [0.0, 6.0]
    # rsatoolbox's own comparison of the converted RDMs gives our number
    other = squared_euclidean_distance(responses[:, :50])
    expected = compare(to_rsatoolbox(other), theirs, method="spearman")[0, 0]
    assert rsa.compare(correlation_distance(responses), other, "spearman") == pytest.approx(
        expected, abs=1e-12)
    measure = to_rsatoolbox(other, method="squared_euclidean").dissimilarity_measure
    assert measure == calc_rdm(Dataset(responses), method="euclidean").dissimilarity_measure


def test_a_network_rdm_file_converts_with_its_layers_and_orientations(responses):
    from v1rsa.rdm import from_rsatoolbox, layer_rdms, to_rsatoolbox

    activations = xr.Dataset(
        {"conv": (("condition", "conv_unit"), responses),
         "fc": (("condition", "fc_unit"), responses[:, :20] ** 2)},
        coords={"condition": np.arange(30), "orientation": ("condition", np.arange(30) - 15.0)},
        attrs={"model": "net"},
    )
    network = layer_rdms(activations)
    converted = to_rsatoolbox(network)
    assert converted.n_rdm == 2 and converted.rdm_descriptors["name"] == ["conv", "fc"]
    assert converted.dissimilarity_measure == "correlation"
    back = from_rsatoolbox(converted)
    assert back.dims == ("rdms", "condition", "condition_")
    np.testing.assert_array_equal(back.values, network["rdm"].values)
    assert back["name"].values.tolist() == ["conv", "fc"]
    np.testing.assert_array_equal(back["orientation"].values, network["orientation"].values)
    assert back.attrs["method"] == "correlation"


def test_from_rsatoolbox_reads_what_rsatoolbox_made(responses):
    from v1rsa.rdm import from_rsatoolbox

    theirs = calc_rdm(Dataset(responses, obs_descriptors={"stimulus": np.arange(30) * 2}),
                      method="euclidean", descriptor="stimulus")
    back = from_rsatoolbox(theirs)
    np.testing.assert_allclose(back.values[0], squared_euclidean_distance(responses),
                               rtol=1e-12, atol=1e-12)
    assert back.attrs["method"] == "squared_euclidean"
    assert back["stimulus"].values.tolist() == list(range(0, 60, 2))


def test_to_rsatoolbox_refuses_mismatched_labels(responses):
    from v1rsa.rdm import to_rsatoolbox

    rdm = correlation_distance(responses)
    with pytest.raises(ValueError, match="names: expected 1 names"):
        to_rsatoolbox(rdm, names=["a", "b"])
    with pytest.raises(ValueError, match=r"orientation_deg: expected \(30,\)"):
        to_rsatoolbox(rdm, orientation_deg=[0.0, 1.0])
    with pytest.raises(ValueError, match="rdms: expected"):
        to_rsatoolbox(np.zeros((3, 4)))
