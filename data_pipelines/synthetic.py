"""The built-in synthetic video set: textured sprites moving over static photo backgrounds.

Each clip shows one sprite (circle, ellipse, square, rectangle, triangle or five-pointed star)
textured with a crop of one scikit-image photograph, translating along a smooth random trajectory
over a static crop of another photograph. The sprite is drawn with a hard mask, so the returned
ground-truth masks are exactly the pixels it covers, and the trajectory gives the per-frame
control offsets. Everything loads offline and is a deterministic function of the seed.
"""

import dataclasses
import functools
import math
import time

import numpy as np
from absl import logging

from fgbg_common.checks import check_int

SPLITS = ("train", "validation", "test")
SHAPES = ("circle", "ellipse", "square", "rectangle", "triangle", "star")
PHOTO_NAMES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "cat",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
)
# Photos are kept with their short side at this multiple of the image size, so that crops are
# resized down by at most this factor and plain bilinear sampling does not alias.
_PHOTO_SCALE = 2
# Smallest RGB distance (0-255 scale) between the sprite's and the background's mean colours.
_MIN_COLOUR_DISTANCE = 60.0


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How the synthetic clips look and move.

    Args:
        image_size: side of the square frames, in pixels.
        clip_length: frames per clip.
        sprite_radius: `(min, max)` radius of the disc that circumscribes the sprite, in pixels.
            Each clip draws its radius uniformly from this range.
        speed: `(min, max)` sprite speed in pixels per frame; each clip moves at one constant
            speed drawn uniformly from this range.
        turn_std: standard deviation, in radians, of the random heading change per frame.
        texture_tries: the sprite's texture is the most varied of this many random crops of
            the photos other than the background. A sprite of flat colour barely changes
            inside as it moves, so its frame difference (and so the mask losses) sees only its
            rim; `1` takes any crop.
    """

    image_size: int = 64
    clip_length: int = 16
    sprite_radius: tuple = (8.0, 13.0)
    speed: tuple = (1.0, 3.0)
    turn_std: float = 0.25
    texture_tries: int = 4

    def __post_init__(self):
        check_int("image_size", self.image_size, minimum=16)
        check_int("clip_length", self.clip_length, minimum=2)
        check_int("texture_tries", self.texture_tries, minimum=1)
        radius = _pair("sprite_radius", self.sprite_radius)
        speed = _pair("speed", self.speed)
        object.__setattr__(self, "sprite_radius", radius)
        object.__setattr__(self, "speed", speed)
        if radius[0] < 2.0:
            raise ValueError(
                "`sprite_radius` minimum must be at least 2 pixels. "
                f"Received: sprite_radius={radius}"
            )
        if speed[0] < 0.0:
            raise ValueError(f"`speed` must be non-negative. Received: speed={speed}")
        if speed[1] >= radius[0]:
            raise ValueError(
                "Sprites must be well larger than their per-frame motion: the `speed` maximum must "
                f"be below the `sprite_radius` minimum. Received: speed={speed}, "
                f"sprite_radius={radius}"
            )
        room = self.image_size - 1 - 2.0 * radius[1]
        if room < 2.0 * speed[1] or room < 2.0:
            raise ValueError(
                "The largest sprite leaves too little room to move in the frame: need "
                "`image_size - 1 - 2 * sprite_radius[1]` of at least max(2, 2 * speed[1]) pixels. "
                f"Received: sprite_radius={radius}, image_size={self.image_size}, speed={speed}"
            )
        if not isinstance(self.turn_std, (int, float)) or not 0 <= self.turn_std < math.inf:
            raise ValueError(
                f"`turn_std` must be a non-negative number. Received: turn_std={self.turn_std!r}"
            )


def scaled_config(image_size, clip_length=16):
    """The default `SyntheticConfig` with sprite sizes and speeds (made for 64x64 frames) scaled
    to `image_size`, so that the task keeps its shape at every size."""
    default = SyntheticConfig()
    scale = image_size / default.image_size
    return SyntheticConfig(
        image_size=image_size,
        clip_length=clip_length,
        sprite_radius=tuple(r * scale for r in default.sprite_radius),
        speed=tuple(v * scale for v in default.speed),
    )


def _pair(name, value):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a (min, max) pair of numbers. Received: {name}={value!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(
            f"`{name}` must be a finite (min, max) pair with min <= max. Received: {name}={value!r}"
        )
    return (low, high)


@functools.cache
def _raw_photos():
    from skimage import data

    return tuple(np.asarray(getattr(data, name)()[..., :3], np.uint8) for name in PHOTO_NAMES)


@functools.lru_cache(maxsize=8)
def _photos(short_side):
    """Returns the photos as float32 RGB arrays scaled so their short side is `short_side`."""
    from skimage import transform

    photos = []
    for photo in _raw_photos():
        scale = short_side / min(photo.shape[:2])
        if scale < 1.0:
            out_shape = (round(photo.shape[0] * scale), round(photo.shape[1] * scale))
            photo = transform.resize(
                photo, out_shape, order=1, anti_aliasing=True, preserve_range=True
            )
        photos.append(np.asarray(photo, np.float32))
    return tuple(photos)


def _bilinear(image, ys, xs):
    """Samples `image` [H, W, C] at float pixel-centre coordinates, clamping at the borders."""
    height, width = image.shape[:2]
    ys = np.clip(ys, 0.0, height - 1.0)
    xs = np.clip(xs, 0.0, width - 1.0)
    y0 = np.minimum(np.floor(ys).astype(np.int64), height - 2)
    x0 = np.minimum(np.floor(xs).astype(np.int64), width - 2)
    wy = (ys - y0)[..., None]
    wx = (xs - x0)[..., None]
    top = image[y0, x0] * (1 - wx) + image[y0, x0 + 1] * wx
    bottom = image[y0 + 1, x0] * (1 - wx) + image[y0 + 1, x0 + 1] * wx
    return top * (1 - wy) + bottom * wy


def _random_crop(rng, photo, out_size, min_side, max_side):
    """A random square crop of side in [min_side, max_side], resized to `out_size` x `out_size`."""
    height, width = photo.shape[:2]
    max_side = min(max_side, height, width)
    side = rng.uniform(min(min_side, max_side), max_side)
    top = rng.uniform(0.0, height - side)
    left = rng.uniform(0.0, width - side)
    # Pixel centres of the output, mapped into the crop (half-pixel convention).
    grid = (np.arange(out_size, dtype=np.float32) + 0.5) * (side / out_size) - 0.5
    ys, xs = np.meshgrid(top + grid, left + grid, indexing="ij")
    return _bilinear(photo, ys, xs)


def _rotate(us, vs, angle):
    """Coordinates in the sprite's own frame: rotates (us, vs) by `-angle`."""
    cos, sin = math.cos(angle), math.sin(angle)
    return cos * us + sin * vs, -sin * us + cos * vs


def _inside_polygon(us, vs, vertices):
    """Even-odd rule: True where the point (us, vs) lies inside the closed polygon."""
    inside = np.zeros(us.shape, bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > vs) != (y2 > vs)
        x_at = x1 + (vs - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (us < x_at)
    return inside


def _sample_shape(rng, radius):
    """Draws a shape; returns a function mapping sprite-centred coordinates to a bool mask."""
    kind = SHAPES[rng.integers(len(SHAPES))]
    angle = rng.uniform(0.0, 2.0 * math.pi)
    if kind == "circle":
        return lambda us, vs: us * us + vs * vs <= radius * radius
    if kind == "ellipse":
        minor = radius * rng.uniform(0.5, 0.8)

        def ellipse(us, vs):
            a, b = _rotate(us, vs, angle)
            return (a / radius) ** 2 + (b / minor) ** 2 <= 1.0

        return ellipse
    if kind in ("square", "rectangle"):
        aspect = 1.0 if kind == "square" else rng.uniform(0.45, 0.75)
        half_w = radius / math.sqrt(1.0 + aspect * aspect)
        half_h = aspect * half_w

        def rectangle(us, vs):
            a, b = _rotate(us, vs, angle)
            return (np.abs(a) <= half_w) & (np.abs(b) <= half_h)

        return rectangle
    if kind == "triangle":
        points, radii = 3, np.full(3, radius)
    else:
        points = 5
        radii = np.tile([radius, radius * rng.uniform(0.45, 0.6)], points)
    angles = angle + np.arange(len(radii)) * (2.0 * math.pi / len(radii))
    vertices = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)
    return lambda us, vs: _inside_polygon(us, vs, vertices)


def _sample_trajectory(rng, config, radius):
    """Sprite centre (x, y) per frame [T, 2]: constant speed, smooth heading, reflected at walls."""
    low, high = radius, config.image_size - 1.0 - radius
    position = rng.uniform(low, high, size=2)
    speed = rng.uniform(*config.speed)
    heading = rng.uniform(0.0, 2.0 * math.pi)
    turns = rng.normal(0.0, config.turn_std, size=config.clip_length - 1)
    positions = [position.copy()]
    for turn in turns:
        heading += turn
        position = position + speed * np.array([math.cos(heading), math.sin(heading)])
        if position[0] < low or position[0] > high:
            position[0] = 2 * low - position[0] if position[0] < low else 2 * high - position[0]
            heading = math.pi - heading
        if position[1] < low or position[1] > high:
            position[1] = 2 * low - position[1] if position[1] < low else 2 * high - position[1]
            heading = -heading
        position = np.clip(position, low, high)
        positions.append(position.copy())
    return np.stack(positions).astype(np.float64)


def _texture_energy(texture):
    """Mean absolute difference between neighbouring pixels: how much a texture varies."""
    return float(np.abs(np.diff(texture, axis=0)).mean() + np.abs(np.diff(texture, axis=1)).mean())


def _sprite_texture(rng, photos, size, background, tries):
    """The most varied of `tries` crops of `photos` [size, size, 3], tinted to stand out."""
    crops = [
        _random_crop(rng, photos[rng.integers(len(photos))], size, 1.5 * size, 4.0 * size)
        for _ in range(tries)
    ]
    texture = max(crops, key=_texture_energy)
    mean = texture.mean(axis=(0, 1))
    contrast = rng.uniform(1.0, 1.5)
    tint = rng.uniform(0.7, 1.3, size=3)
    texture = (texture - mean) * contrast + mean * tint
    # Push the sprite's mean colour away from the background's so it is visible.
    gap = texture.mean(axis=(0, 1)) - background.mean(axis=(0, 1))
    distance = float(np.linalg.norm(gap))
    if distance < _MIN_COLOUR_DISTANCE:
        direction = gap / distance if distance > 1e-3 else rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        texture = texture + direction * (_MIN_COLOUR_DISTANCE - distance)
    return np.clip(texture, 0.0, 255.0)


def generate_clip(rng_or_seed, config=SyntheticConfig()):
    """Generates one synthetic clip.

    Args:
        rng_or_seed: a `np.random.Generator`, a `np.random.SeedSequence` or an int seed.
        config: a `SyntheticConfig`.

    Returns:
        A dict with `T = config.clip_length` and `H = W = config.image_size`:
        - `frames`: uint8 [T, H, W, 3].
        - `masks`: uint8 [T, H, W, 1], 1 exactly where the sprite was drawn, else 0.
        - `centroids`: float32 [T, 2], the (x, y) = (column, row) mean of the mask pixels.
        - `offsets`: float32 [T - 1, 2], the (dx, dy) move of the sprite between frames.
    """
    rng = np.random.default_rng(rng_or_seed)
    size, length = config.image_size, config.clip_length
    photos = _photos(_PHOTO_SCALE * size)
    bg_index = rng.integers(len(photos))
    background = _random_crop(rng, photos[bg_index], size, size, _PHOTO_SCALE * size)
    texture_photos = [photo for i, photo in enumerate(photos) if i != bg_index]

    radius = rng.uniform(*config.sprite_radius)
    inside = _sample_shape(rng, radius)
    half = int(math.ceil(radius)) + 1
    box = 2 * half + 1
    texture = _sprite_texture(rng, texture_photos, box, background, config.texture_tries)
    positions = _sample_trajectory(rng, config, radius)

    # Rasterize in a box of fixed size around each frame's centre: a pixel belongs to the sprite
    # iff its centre lies inside the shape placed at the float position.
    corner = np.floor(positions).astype(np.int64) - half  # (left, top) per frame
    local = np.arange(box)
    us = (corner[:, 0, None, None] + local[None, None, :]) - positions[:, 0, None, None]
    vs = (corner[:, 1, None, None] + local[None, :, None]) - positions[:, 1, None, None]
    us, vs = np.broadcast_arrays(us, vs)
    in_sprite = inside(us, vs)
    t_idx, row_idx, col_idx = np.nonzero(in_sprite)
    rows = corner[t_idx, 1] + row_idx
    cols = corner[t_idx, 0] + col_idx
    colours = _bilinear(
        texture, vs[t_idx, row_idx, col_idx] + half, us[t_idx, row_idx, col_idx] + half
    )

    frames = np.empty((length, size, size, 3), np.uint8)
    frames[:] = np.round(background).astype(np.uint8)
    frames[t_idx, rows, cols] = np.round(colours).astype(np.uint8)
    masks = np.zeros((length, size, size, 1), np.uint8)
    masks[t_idx, rows, cols, 0] = 1

    counts = np.bincount(t_idx, minlength=length).astype(np.float64)
    centroids = np.stack(
        [
            np.bincount(t_idx, weights=cols, minlength=length) / counts,
            np.bincount(t_idx, weights=rows, minlength=length) / counts,
        ],
        axis=-1,
    )
    return {
        "frames": frames,
        "masks": masks,
        "centroids": centroids.astype(np.float32),
        "offsets": np.diff(positions, axis=0).astype(np.float32),
    }


def make_split(split, num_clips, config=SyntheticConfig(), seed=0):
    """Generates a split of the synthetic set as stacked numpy arrays.

    Clip `i` of a split is drawn from `np.random.SeedSequence([seed, split_index, i])`, so splits
    never share a clip and a clip does not depend on how many clips are generated.

    Args:
        split: one of `"train"`, `"validation"`, `"test"`.
        num_clips: number of clips `N`, a positive int.
        config: a `SyntheticConfig`.
        seed: a non-negative int.

    Returns:
        A dict with `T = config.clip_length` and `H = W = config.image_size`:
        - `frames`: uint8 [N, T, H, W, 3].
        - `masks`: uint8 [N, T, H, W, 1].
        - `centroids`: float32 [N, T, 2], (x, y) per frame.
        - `offsets`: float32 [N, T - 1, 2], (dx, dy) per step.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    check_int("num_clips", num_clips)
    check_int("seed", seed, minimum=0)
    start = time.perf_counter()
    split_index = SPLITS.index(split)
    clips = [
        generate_clip(np.random.SeedSequence([seed, split_index, i]), config)
        for i in range(num_clips)
    ]
    out = {key: np.stack([clip[key] for clip in clips]) for key in clips[0]}
    logging.info(
        "Generated %d synthetic %s clips (%dx%d, %d frames) in %.2f s.",
        num_clips,
        split,
        config.image_size,
        config.image_size,
        config.clip_length,
        time.perf_counter() - start,
    )
    return out
