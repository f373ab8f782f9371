"""The built-in robot-pushing set: a KUKA arm pushing objects around a bin, rendered with pybullet.

A fixed camera looks down at a bin at an oblique angle, as BAIR's does. The arm's end effector
follows a smooth random path in the bin's plane at pushing height (inverse kinematics, motor
control), heading for the objects and past them, and pushes 1 to `--pushing_objects` objects of
varied shape, size, colour and texture; the physics is stepped between frames, so pushed objects
slide and rotate, and only once the arm touches them. Everything renders on the CPU with
pybullet's TinyRenderer (`p.DIRECT`, no GPU or OpenGL), with no download: the models ship in
`pybullet_data`, the table textures are scikit-image's photos.

Real video's nuisances are each an option with a realistic default on, and each can be turned
off to measure what it costs: camera shake, lens noise, light that changes over a clip, H.264
compression, a distractor that moves outside the arm's reach and a flickering screen.

Ground truth, per frame: the moving foreground (the arm and every object that moves between this
frame and the next; the last frame takes the step before it), the arm's mask alone, the arm's
centroid (whose steps are the true controls), the end effector's position in the world and in
the image, and the commanded move of the end effector (BAIR's "actions" layout: dx, dy in metres,
then two zeros). Everything is a deterministic function of the seed.
"""

import atexit
import dataclasses
import hashlib
import os
import threading
import time
import zipfile

import numpy as np
from absl import logging

from data_pipelines.pushing_scene import Scene, workspace_pixels
from fgbg_common.checks import check_int
from fgbg_common.options import Options, option

SPLITS = ("train", "validation", "test")
CLIP_LENGTH = 30  # BAIR's


def _option(default, help):
    """A `PushingOptions` field: its default and the help of its `--pushing_<name>` flag."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class PushingOptions:
    """What `--data=pushing` and `convert --source=pushing` render; each field is the flag
    `--pushing_<name>` of both commands, with this help."""

    objects: int = _option(3, "Pushing set: each clip has 1 to this many objects.")
    speed: float = _option(
        1.5,
        "Pushing set: the end effector's mean speed, in pixels per frame of a 64x64 "
        "frame (scaled with the size); BAIR's arm moves 1-3.",
    )
    shake: float = _option(
        0.3,
        "Pushing set: standard deviation of the camera's per-frame turn, in pixels "
        "of a 64x64 frame; 0: a still camera.",
    )
    noise: float = _option(
        2.0, "Pushing set: lens noise, standard deviation on the 0-255 scale; 0: none."
    )
    light: float = _option(
        0.1,
        "Pushing set: how much the light changes over a clip (brightness drifts by up "
        "to this fraction, the light turns); 0: constant light.",
    )
    crf: int = _option(
        23,
        "Pushing set: H.264 quality (x264's CRF, 1-51, higher is lossier) of the "
        "encode and decode each clip goes through; 0: no compression.",
    )
    distractor: bool = _option(
        True,
        "Pushing set: a second object slides slowly outside the arm's reach (it "
        "moves but is not the foreground).",
    )
    flicker: float = _option(
        0.15,
        "Pushing set: brightness flicker of a screen beside the bin, as a fraction "
        "per frame; 0: no screen.",
    )

    def check(self):
        """Raises a ValueError naming the `--pushing_*` flag of the first option that cannot
        render."""

        def fail(name, requirement):
            raise ValueError(f"--pushing_{name}={getattr(self, name)!r}: {requirement}")

        if not isinstance(self.objects, int) or not 1 <= self.objects <= 4:
            fail("objects", "must be 1, 2, 3 or 4 (objects in the bin)")
        reach = workspace_pixels()
        if not 0.0 < self.speed <= reach / 4:
            fail(
                "speed",
                f"must be in (0, {reach / 4:.1f}]: faster, the end effector leaves the bin "
                f"({reach:.0f} pixels across at 64x64) within a few frames",
            )
        for name, top in (("shake", 4.0), ("noise", 50.0), ("light", 0.5), ("flicker", 1.0)):
            if not 0.0 <= getattr(self, name) <= top:
                fail(name, f"must be in [0, {top}]")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            fail("crf", "must be 0 (no compression) or an x264 CRF in [1, 51]")

    @classmethod
    def flag_names(cls):
        """`{field name: flag name}`."""
        return {field.name: f"pushing_{field.name}" for field in dataclasses.fields(cls)}

    @classmethod
    def from_flags(cls, values):
        """The options from `{flag name: value}` (the flags of `flag_names`)."""
        return cls(**{name: values[flag] for name, flag in cls.flag_names().items()})

    def nuisances_off(self):
        """These options with every real-video nuisance turned off."""
        return dataclasses.replace(
            self, shake=0.0, noise=0.0, light=0.0, crf=0, distractor=False, flicker=0.0
        )


def define_flags():
    """The absl flags `--pushing_<name>` of `PushingOptions`' fields, with their help (for
    `data_pipelines.convert`; train.py gets them through its config section)."""
    from absl import flags

    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float}
    for field, flag in zip(
        dataclasses.fields(PushingOptions), PushingOptions.flag_names().values()
    ):
        define[field.type](flag, field.default, field.metadata["help"])


def _section_options(self):
    """The `PushingOptions` these flags set."""
    return PushingOptions.from_flags(dataclasses.asdict(self))


def _check_section(self, config):
    self.options().check()


# The options of --data=pushing as a section of train.py's configuration: the flags
# `--pushing_<name>` of `PushingOptions`' fields, whose help they carry, so that train.py and
# `convert --source=pushing` share them.
PushingFlags = dataclasses.make_dataclass(
    "PushingFlags",
    [
        (flag, field.type, option(field.default, field.metadata["help"]))
        for field, flag in zip(
            dataclasses.fields(PushingOptions), PushingOptions.flag_names().values()
        )
    ],
    bases=(Options,),
    namespace={
        "__doc__": "The built-in pushing set's scene and nuisances (`--data=pushing`).",
        "options": _section_options,
        "check": _check_section,
    },
)


NUISANCES = ("shake", "noise", "light", "crf", "distractor", "flicker")


def check_size(size, flag="image_size", multiple=16):
    """The frame size must be at least 32 and a multiple of `multiple` (the networks'
    downsampling of every shipped configuration)."""
    check_int(flag, size, minimum=32)
    if size % multiple:
        raise ValueError(
            f"--{flag}={size}: the pushing set renders square frames whose side is a multiple "
            f"of {multiple} (the networks downsample by up to {multiple}), e.g. 64, 128 or 256."
        )


_SCENES = threading.local()
_ALL_SCENES = []


def _scene():
    """This thread's `Scene`, made on first use (a pybullet client is not thread-safe)."""
    if not hasattr(_SCENES, "scene"):
        _SCENES.scene = Scene()
        _ALL_SCENES.append(_SCENES.scene)
    return _SCENES.scene


@atexit.register
def _close_scenes():
    """Disconnects the clients while pybullet is still loaded (not in `__del__` at exit)."""
    while _ALL_SCENES:
        _ALL_SCENES.pop().close()


def generate_clip(seed, size=64, length=CLIP_LENGTH, options=PushingOptions()):
    """Renders one clip.

    Args:
        seed: an int, a sequence of ints or a `np.random.SeedSequence`.
        size: the frames' side, a multiple of 16.
        length: frames per clip, at least 2.
        options: `PushingOptions`.

    Returns:
        A dict with `T = length`, `H = W = size`:
        - `frames`: uint8 `[T, H, W, 3]`.
        - `masks`: uint8 `[T, H, W, 1]`, the moving foreground: the arm, and each object that
          moves between frame t and t + 1 (the last frame: the step before it).
        - `agent_masks`: uint8 `[T, H, W, 1]`, the arm alone.
        - `centroids`: float32 `[T, 2]`, the (x, y) mean of the arm's pixels.
        - `offsets`: float32 `[T - 1, 2]`, the arm's centroid steps: the true controls.
        - `endeffector_pos`: float32 `[T, 3]` in the world, `endeffector_xy` `[T, 2]` in pixels.
        - `actions`: float32 `[T, 4]`, the commanded move of the end effector from frame t to
          t + 1 (dx, dy in metres, 0, 0; the last row zeros), BAIR's layout.
        - `moved`: bool `[T, K]`; `touched`: bool `[T, K]`, the arm touched object k on the way
          to frame t, or an object that the arm had disturbed did; `segmentation` int32
          `[T, S * H, S * W]`, S = `pushing_scene.SUPERSAMPLE` (pybullet body ids, -1 for
          nothing, as rendered before the frames are averaged down;
          `pushing_scene.downsample_mask` gives the masks),
          `object_ids` int32 `[K]`, `arm_id`.
    """
    check_size(size)
    check_int("clip_length", length, minimum=2)
    options.check()
    return _scene().render(np.random.default_rng(seed), size, length, options)


# The keys of `generate_clip` that `make_split` and the records keep.
KEPT = ("frames", "masks", "agent_masks", "centroids", "offsets")


def _render_split_part(args):
    split_index, seed, indices, size, length, options = args
    clips = [
        generate_clip(np.random.SeedSequence([seed, split_index, i]), size, length, options)
        for i in indices
    ]
    return {key: np.stack([clip[key] for clip in clips]) for key in KEPT}


def _render_in_parallel(jobs, processes):
    """`_render_split_part` of each job in `processes` fresh processes (forkserver: a process
    that holds TensorFlow's threads is not forked), or None when the workers cannot start,
    e.g. from a script without an `if __name__ == "__main__":` guard, which they re-run."""
    import multiprocessing
    from concurrent import futures

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data_pipelines.pushing"])
    try:
        with futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
            return list(pool.map(_render_split_part, jobs))
    except futures.process.BrokenProcessPool as error:
        logging.warning("Rendering in this process only: the worker processes died (%s).", error)
        return None


def _cache_path(cache_dir, split, num_clips, size, length, options, seed):
    """The file of a rendered split in `cache_dir`: named by a hash of every argument, of the
    renderer's code (this module, the scene's and the camera's: a change renders anew) and of
    pybullet's version."""
    from importlib import metadata

    from data_pipelines import pushing_scene, pushing_video

    code = hashlib.sha256()
    for module in (__file__, pushing_scene.__file__, pushing_video.__file__):
        with open(module, "rb") as source:
            code.update(source.read())
    code = code.hexdigest()
    key = repr((code, metadata.version("pybullet"), split, num_clips, size, length, options, seed))
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return os.path.join(os.path.expanduser(cache_dir), f"pushing-{split}-{digest}.npz")


def _load_cached(path):
    """The arrays of a cached split, or None (logged) where the file is missing or unreadable."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as cached:
            return {key: cached[key] for key in KEPT}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        # A truncated or foreign file: render anew, and say so.
        logging.warning("Rendering again: the cached split %s cannot be read (%s).", path, error)
        return None


def _save_cached(path, arrays):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial.npz"
    np.savez(partial, **arrays)
    os.replace(partial, path)


def make_split(
    split,
    num_clips,
    size=64,
    length=CLIP_LENGTH,
    options=PushingOptions(),
    seed=0,
    processes=None,
    cache_dir=None,
):
    """Renders a split as stacked arrays (the keys of `KEPT`, with a leading clip axis).

    Clip `i` of a split is drawn from `SeedSequence([seed, split_index, i])`, so splits never
    share a clip and a clip does not depend on how many are rendered. With more than one CPU the
    clips render in `processes` worker processes (default: one per CPU). With `cache_dir`, a
    split rendered before with the same arguments and the same renderer code is loaded from
    there, and a new one is saved there.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    check_int("num_clips", num_clips)
    check_int("seed", seed, minimum=0)
    check_size(size, "image_size")
    options.check()
    if cache_dir:
        path = _cache_path(cache_dir, split, num_clips, size, length, options, seed)
        cached = _load_cached(path)
        if cached is not None:
            logging.info("Loaded %d pushing %s clips from %s.", num_clips, split, path)
            return cached
        arrays = make_split(split, num_clips, size, length, options, seed, processes)
        _save_cached(path, arrays)
        return arrays
    started = time.perf_counter()
    processes = min(processes or os.cpu_count() or 1, num_clips)
    parts = np.array_split(np.arange(num_clips), max(1, processes * 4))
    jobs = [(SPLITS.index(split), seed, part, size, length, options) for part in parts if len(part)]
    results = _render_in_parallel(jobs, processes) if processes > 1 else None
    if results is None:
        results = [_render_split_part(job) for job in jobs]
    out = {key: np.concatenate([r[key] for r in results]) for key in KEPT}
    seconds = time.perf_counter() - started
    logging.info(
        "Rendered %d pushing %s clips (%dx%d, %d frames) in %.1f s (%.0f frames/s).",
        num_clips,
        split,
        size,
        size,
        length,
        seconds,
        num_clips * length / seconds,
    )
    return out
