"""FVD and LPIPS: the Frechet distance against closed forms, and both computed with small
feature networks that the tests build and save, as a user's weights would be loaded."""

import numpy as np
import pytest
import scipy.linalg

from fgbg_keras.evaluation import fvd, lpips
from tests.tiny import save_linear, save_video_network


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.5])
    c1, c2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(c1) - np.sqrt(c2)) ** 2)
    got = fvd.frechet_distance(m1, np.diag(c1), m2, np.diag(c2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_the_sqrtm_formula_on_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 6, 6))
    c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    m1, m2 = rng.normal(size=(2, 6))
    cross = scipy.linalg.sqrtm(c1 @ c2).real
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * cross)
    assert fvd.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_is_finite_for_fewer_samples_than_dimensions():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(2, 5, 32))  # rank-4 covariances of 32 dimensions
    distance = fvd.frechet_distance(
        *fvd.gaussian_statistics(first), *fvd.gaussian_statistics(second)
    )
    assert np.isfinite(distance) and distance > 0
    same = fvd.frechet_distance(*fvd.gaussian_statistics(first), *fvd.gaussian_statistics(first))
    assert same == pytest.approx(0.0, abs=1e-8)


def test_sampled_shifted_gaussians_give_the_squared_shift():
    rng = np.random.default_rng(2)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    first = rng.normal(size=(40000, 4))
    second = rng.normal(size=(40000, 4)) + shift
    distance = fvd.frechet_distance(
        *fvd.gaussian_statistics(first), *fvd.gaussian_statistics(second)
    )
    assert distance == pytest.approx(np.sum(shift**2), abs=0.05)


@pytest.fixture(scope="module")
def video_model(tmp_path_factory):
    return fvd.VideoFeatures(save_video_network(tmp_path_factory.mktemp("fvd")), resolution=32)


def test_fvd_of_a_set_with_itself_is_zero_and_grows_with_a_change(video_model):
    rng = np.random.default_rng(3)
    videos = rng.uniform(-1, 1, (12, 4, 16, 16, 3)).astype(np.float32)
    assert video_model(videos).shape == (12, 8)
    assert fvd.fvd(video_model, videos, videos, batch_size=5) == pytest.approx(0.0, abs=1e-6)
    darker = np.clip(videos - 0.5, -1, 1)
    assert fvd.fvd(video_model, videos, darker) > 1e-3


def test_a_path_that_is_not_a_saved_model_is_named(tmp_path):
    with pytest.raises(ValueError, match="--fvd_model=.*nothing.* is not a SavedModel"):
        fvd.VideoFeatures(str(tmp_path / "nothing"))


@pytest.mark.parametrize("network", ["alex", "vgg16"])
def test_lpips_is_zero_for_identical_frames_and_positive_otherwise(network, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(4)
    if network == "alex":
        backbone = lpips.alexnet_features()
    else:
        backbone = keras.applications.VGG16(
            include_top=False, weights=None, input_shape=(None, None, 3)
        )
    backbone.save_weights(tmp_path / "backbone.weights.h5")
    save_linear(tmp_path / "lin.npz", lpips.TAPS[network][1], rng)
    metric = lpips.LPIPS(network, str(tmp_path / "backbone.weights.h5"), str(tmp_path / "lin.npz"))
    a = rng.uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)
    np.testing.assert_allclose(metric(a, a), 0.0, atol=1e-6)
    distance = metric(a, b).numpy()
    assert distance.shape == (3,) and np.all(distance > 1e-4)
    # More noise, further away.
    c = np.clip(a + rng.normal(0, 1.0, a.shape), -1, 1).astype(np.float32)
    assert np.all(metric(a, c).numpy() > distance)
    # The same backbone as a whole .keras model loads too.
    backbone.save(tmp_path / "backbone.keras")
    again = lpips.LPIPS(network, str(tmp_path / "backbone.keras"), str(tmp_path / "lin.npz"))
    np.testing.assert_allclose(again(a, b), distance, rtol=1e-5)


def test_lpips_files_that_do_not_fit_are_named(tmp_path):
    rng = np.random.default_rng(5)
    lpips.alexnet_features().save_weights(tmp_path / "alex.weights.h5")
    save_linear(tmp_path / "vgg_lin.npz", lpips.TAPS["vgg16"][1], rng)
    with pytest.raises(ValueError, match="--lpips_linear=.*vgg_lin.npz.* alex needs"):
        lpips.LPIPS("alex", str(tmp_path / "alex.weights.h5"), str(tmp_path / "vgg_lin.npz"))
    with pytest.raises(ValueError, match="--lpips_backbone=.*alex.weights.h5.* vgg16"):
        lpips.LPIPS("vgg16", str(tmp_path / "alex.weights.h5"), str(tmp_path / "vgg_lin.npz"))
    with pytest.raises(ValueError, match="--lpips_network='squeeze'"):
        lpips.LPIPS("squeeze", "x", "y")


def test_lpips_is_the_weighted_distance_of_channel_normalised_features(tmp_path):
    """A hand-worked case: the backbone replaced by the identity on the scaled input, one
    weight per RGB channel, 1x2-pixel frames."""
    lpips.alexnet_features().save_weights(tmp_path / "alex.weights.h5")
    save_linear(tmp_path / "lin.npz", lpips.TAPS["alex"][1], np.random.default_rng(0))
    metric = lpips.LPIPS("alex", str(tmp_path / "alex.weights.h5"), str(tmp_path / "lin.npz"))
    metric.features = lambda batch, training=False: [batch]
    weights = np.array([1.0, 2.0, 3.0], np.float32)
    metric.weights = [weights]
    a = np.array([[[[0.5, -0.2, 0.1], [0.0, 0.3, -0.9]]]], np.float32)
    b = np.array([[[[0.5, -0.2, 0.1], [0.9, -0.3, 0.2]]]], np.float32)

    def normalised(x):
        scaled = (x - np.array(lpips.SHIFT)) / np.array(lpips.SCALE)
        return scaled / (np.linalg.norm(scaled, axis=-1, keepdims=True) + 1e-10)

    per_pixel = np.sum(weights * (normalised(a) - normalised(b)) ** 2, axis=-1)
    expected = per_pixel.mean()  # the first pixel is equal: its distance is 0
    np.testing.assert_allclose(metric(a, b), [expected], rtol=1e-5)
    assert per_pixel[0, 0, 0] == 0 and expected > 0


def test_a_video_network_that_does_not_fit_the_videos_is_named(tmp_path):
    import tensorflow as tf

    class FixedLength(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 16, 32, 32, 3], tf.float32)])
        def __call__(self, videos):
            # Like I3D's fixed-size layers: fails at run time on videos of another length.
            flat = tf.reshape(videos, [-1, 16 * 32 * 32 * 3])
            return {"features": tf.stack([tf.reduce_mean(flat, 1), tf.math.reduce_std(flat, 1)], 1)}

    module = FixedLength()
    path = str(tmp_path / "fixed")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    features = fvd.VideoFeatures(path, resolution=32)
    with pytest.raises(ValueError, match="--fvd_model=.*fixed.* does not take float32 videos"):
        features(np.zeros((2, 4, 8, 8, 3), np.float32))
