import numpy as np
import pytest

from data_pipelines import synthetic
from data_pipelines.synthetic import SyntheticConfig, generate_clip, make_split

CONFIG = SyntheticConfig(image_size=32, clip_length=8, sprite_radius=(5.0, 7.0), speed=(1.0, 2.0))
NUM_CLIPS = 12


@pytest.fixture(scope="module")
def clips():
    return make_split("train", NUM_CLIPS, CONFIG, seed=3)


def test_shapes_and_dtypes(clips):
    assert clips["frames"].shape == (NUM_CLIPS, 8, 32, 32, 3)
    assert clips["frames"].dtype == np.uint8
    assert clips["masks"].shape == (NUM_CLIPS, 8, 32, 32, 1)
    assert clips["masks"].dtype == np.uint8
    assert set(np.unique(clips["masks"])) == {0, 1}
    assert clips["centroids"].shape == (NUM_CLIPS, 8, 2)
    assert clips["centroids"].dtype == np.float32
    assert clips["offsets"].shape == (NUM_CLIPS, 7, 2)
    assert clips["offsets"].dtype == np.float32


def test_default_config_clip():
    clip = generate_clip(0)
    assert clip["frames"].shape == (16, 64, 64, 3)
    assert clip["masks"].shape == (16, 64, 64, 1)


def test_same_seed_same_arrays_and_different_seed_differs(clips):
    again = make_split("train", NUM_CLIPS, CONFIG, seed=3)
    other = make_split("train", NUM_CLIPS, CONFIG, seed=4)
    for key in clips:
        np.testing.assert_array_equal(clips[key], again[key])
    assert not np.array_equal(clips["frames"], other["frames"])
    assert not np.array_equal(clips["masks"], other["masks"])


def test_clip_does_not_depend_on_num_clips(clips):
    few = make_split("train", 3, CONFIG, seed=3)
    for key in clips:
        np.testing.assert_array_equal(few[key], clips[key][:3])


def test_splits_share_no_clip(clips):
    test = make_split("test", NUM_CLIPS, CONFIG, seed=3)
    validation = make_split("validation", NUM_CLIPS, CONFIG, seed=3)
    train_frames = clips["frames"].reshape(NUM_CLIPS, -1)
    for other in (test, validation):
        other_frames = other["frames"].reshape(NUM_CLIPS, -1)
        # No clip of one split equals any clip of another.
        same = (train_frames[:, None, :] == other_frames[None, :, :]).all(-1)
        assert not same.any()


def test_background_static_outside_mask_and_sprite_differs_inside(clips):
    for frames, masks in zip(clips["frames"], clips["masks"]):
        covered = masks[..., 0].astype(bool)  # [T, H, W]
        # The background at each pixel: its value in the first frame where the sprite is absent.
        # A slow sprite may cover a few pixels in every frame; their background is unobserved.
        first_free = np.argmax(~covered, axis=0)
        seen = ~covered.all(axis=0)
        assert seen.mean() > 0.9
        rows, cols = np.indices(first_free.shape)
        background = frames[first_free, rows, cols]  # [H, W, 3]
        for t in range(frames.shape[0]):
            free = ~covered[t]
            np.testing.assert_array_equal(frames[t][free], background[free])
            drawn = covered[t] & seen
            differs = (frames[t][drawn] != background[drawn]).any(-1)
            assert drawn.sum() > 0 and differs.mean() > 0.9


def test_centroids_are_mask_means(clips):
    masks = clips["masks"][..., 0].astype(np.float64)
    rows, cols = np.indices(masks.shape[-2:])
    area = masks.sum(axis=(-2, -1))
    expected_x = (masks * cols).sum(axis=(-2, -1)) / area
    expected_y = (masks * rows).sum(axis=(-2, -1)) / area
    np.testing.assert_allclose(clips["centroids"][..., 0], expected_x, atol=1e-4)
    np.testing.assert_allclose(clips["centroids"][..., 1], expected_y, atol=1e-4)


def test_sprite_stays_whole_inside_frame(clips):
    area = clips["masks"].reshape(NUM_CLIPS, 8, -1).sum(-1).astype(np.float64)
    # Smallest possible sprite (a triangle inscribed in a radius-5 circle) covers about 32 pixels.
    assert area.min() >= 20
    # The shape only translates, so its area changes by rasterization alone, never by clipping.
    assert (area.max(1) / area.min(1)).max() < 1.4
    centroids = clips["centroids"]
    assert centroids.min() >= 5.0 - 1.0
    assert centroids.max() <= 31 - 5.0 + 1.0


def test_offsets_match_centroid_motion(clips):
    offsets = clips["offsets"]
    speed = np.linalg.norm(offsets, axis=-1)
    assert speed.max() <= 2.0 + 1e-4
    error = np.abs(np.diff(clips["centroids"], axis=1) - offsets)
    assert error.max() < 1.0
    assert error.mean() < 0.2


def test_hard_mask_rasterization_golden():
    # Pixel centres inside the axis-aligned square [-2.5, 2.5]^2 at integer offsets: 5 x 5.
    us, vs = np.meshgrid(np.arange(-6, 7), np.arange(-6, 7))
    square = np.array([[-2.5, -2.5], [2.5, -2.5], [2.5, 2.5], [-2.5, 2.5]])
    assert synthetic._inside_polygon(us.astype(float), vs.astype(float), square).sum() == 25
    # Shifting by half a pixel moves the square's edge onto no new centre: 5 x 5 again.
    assert synthetic._inside_polygon(us + 0.4, vs - 0.4, square).sum() == 25


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"clip_length": 1}, "clip_length"),
        ({"image_size": 32, "sprite_radius": (5.0, 16.0)}, "sprite_radius"),
        ({"sprite_radius": (9.0, 8.0)}, "sprite_radius"),
        ({"speed": (1.0, 9.0)}, "speed"),
        ({"turn_std": -0.1}, "turn_std"),
        ({"texture_tries": 0}, "texture_tries"),
        ({"image_size": 64.0}, "image_size"),
    ],
)
def test_bad_config_raises_naming_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**kwargs)


def test_bad_split_and_num_clips_raise():
    with pytest.raises(ValueError, match="split"):
        make_split("training", 2, CONFIG)
    with pytest.raises(ValueError, match="num_clips"):
        make_split("train", 0, CONFIG)


def _sprite_energy(clip):
    """Mean |difference| between neighbouring sprite pixels of the first frame."""
    frame = clip["frames"][0].astype(np.float32)
    mask = clip["masks"][0, ..., 0].astype(bool)
    both_x = mask[:, 1:] & mask[:, :-1]
    both_y = mask[1:] & mask[:-1]
    dx = np.abs(np.diff(frame, axis=1))[both_x].mean()
    dy = np.abs(np.diff(frame, axis=0))[both_y].mean()
    return (dx + dy) / 2


def test_more_texture_tries_give_more_varied_sprites():
    def mean_energy(tries):
        config = SyntheticConfig(
            image_size=32,
            clip_length=2,
            sprite_radius=(6.0, 8.0),
            speed=(0.5, 1.0),
            texture_tries=tries,
        )
        return np.mean([_sprite_energy(generate_clip(seed, config)) for seed in range(40)])

    flat, varied = mean_energy(1), mean_energy(8)
    assert varied > 1.2 * flat, (flat, varied)
