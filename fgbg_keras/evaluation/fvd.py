"""Frechet Video Distance from a user-supplied video feature network (I3D).

FVD (Unterthiner et al., arXiv:1812.01717) fits a Gaussian to the features of a set of real
videos and one to those of generated videos and reports the Frechet distance between them. The
features come from an I3D network trained on Kinetics-400; fgbg never downloads it: pass the path
of a SavedModel that maps float32 videos `[B, T, 224, 224, 3]` in [-1, 1] to features `[B, D]`
(the published protocol uses the 400 logits). `PROTOCOL` states the protocol the report prints,
since FVD figures are only comparable under the same one.
"""

import numpy as np
import tensorflow as tf

PROTOCOL = {
    "frames": 16,
    "resolution": 224,
    "resize": "bilinear, each frame to 224x224",
    "value_range": "[-1, 1]",
    "features": "the SavedModel's output, [B, D] (I3D Kinetics-400 logits in the paper)",
}


def gaussian_statistics(features):
    """Mean `[D]` and covariance `[D, D]` (float64, unbiased) of features `[N, D]`, N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            "`features` must be [N, D] with at least two rows. "
            f"Received: features.shape={features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh; tiny
    negative eigenvalues from round-off are clipped to zero)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2):
    """The Frechet distance between N(mean1, cov1) and N(mean2, cov2):
    `|m1 - m2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)`.

    The cross term is computed from the symmetric matrix `C1^1/2 C2 C1^1/2`, whose square root
    is real and found with `eigh`, rather than from `sqrtm(C1 C2)`, which is not symmetric and
    returns complex round-off or fails for singular covariances (fewer videos than dimensions).
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != mean1.shape * 2:
        raise ValueError(
            "Means must be [D] and covariances [D, D] of one D. Received: "
            f"{mean1.shape}, {cov1.shape}, {mean2.shape}, {cov2.shape}"
        )
    root1 = _psd_sqrt(cov1)
    cross = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    distance = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


class VideoFeatures:
    """A video feature network loaded from a SavedModel path (e.g. I3D for FVD).

    Args:
        path: a SavedModel directory. Its `serving_default` (or `default`) signature, or the
            loaded object itself if it has no signature, is called on float32
            `[B, T, 224, 224, 3]` in [-1, 1] and must return `[B, D]` (or a dict with one
            such tensor).
        resolution: the frame size the network takes.

    Raises:
        ValueError: naming `path` when it is not a SavedModel or has nothing callable.
    """

    def __init__(self, path, resolution=PROTOCOL["resolution"]):
        self.path = path
        self.resolution = resolution
        try:
            self.model = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise ValueError(
                f"--fvd_model={path!r} is not a SavedModel: {str(error).splitlines()[0]}"
            ) from None
        signatures = getattr(self.model, "signatures", {})
        for name in ("serving_default", "default"):
            if name in signatures:
                self.function = signatures[name]
                break
        else:
            if not callable(self.model):
                raise ValueError(
                    f"--fvd_model={path!r} has no serving_default or default signature and is "
                    "not callable."
                )
            self.function = self.model

    def __call__(self, videos):
        """Features `[B, D]` of float videos `[B, T, H, W, 3]` in [-1, 1], resized to the
        network's resolution."""
        videos = tf.convert_to_tensor(videos, tf.float32)
        shape = tf.shape(videos)
        frames = tf.reshape(videos, [-1, shape[2], shape[3], 3])
        frames = tf.image.resize(frames, [self.resolution] * 2, method="bilinear")
        videos = tf.reshape(frames, [shape[0], shape[1], self.resolution, self.resolution, 3])
        try:
            if self.function is self.model:
                out = self.function(videos)
            else:
                names = list(self.function.structured_input_signature[1])
                if len(names) != 1:
                    raise ValueError(
                        f"--fvd_model={self.path!r} takes inputs {names}; expected one video input."
                    )
                out = self.function(**{names[0]: videos})
        except (tf.errors.InvalidArgumentError, TypeError) as error:
            raise ValueError(
                f"--fvd_model={self.path!r} does not take float32 videos of shape "
                f"{videos.shape}: {str(error).splitlines()[0]}"
            ) from None
        if isinstance(out, dict):
            if len(out) != 1:
                raise ValueError(
                    f"--fvd_model={self.path!r} returns {sorted(out)}; expected one output."
                )
            (out,) = out.values()
        if out.shape.rank != 2:
            raise ValueError(
                f"--fvd_model={self.path!r} returns shape {out.shape}; expected [B, D]."
            )
        return out.numpy()


def statistics(features_fn, videos, batch_size=16):
    """The Gaussian statistics (mean, covariance) of `features_fn` (a `VideoFeatures`) over
    videos `[N, T, H, W, 3]` in [-1, 1], N >= 2, applied in batches."""
    parts = [features_fn(videos[i : i + batch_size]) for i in range(0, len(videos), batch_size)]
    return gaussian_statistics(np.concatenate(parts))


def fvd(features_fn, real_videos, generated_videos, batch_size=16):
    """FVD between two sets of videos `[N, T, H, W, 3]` in [-1, 1] (N >= 2 each)."""
    real = statistics(features_fn, real_videos, batch_size)
    return frechet_distance(*real, *statistics(features_fn, generated_videos, batch_size))
