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
import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile

import numpy as np
from absl import logging

from fgbg_common.checks import check_int

SPLITS = ("train", "validation", "test")
CLIP_LENGTH = 30  # BAIR's

# Models of pybullet_data that the arm pushes, with (min, max) scales: a few centimetres each.
OBJECT_MODELS = (
    ("cube_small.urdf", (1.4, 2.0)),
    ("lego/lego.urdf", (2.2, 3.0)),
    ("jenga/jenga.urdf", (0.8, 1.1)),
    ("duck_vhacd.urdf", (0.9, 1.2)),
    ("teddy_vhacd.urdf", (0.9, 1.1)),
    ("random_urdfs/{:03d}/{:03d}.urdf", (0.8, 1.1)),
)
RANDOM_URDFS = 1000

# The scene, in metres: the arm's base at the origin, the bin in front of it.
_BIN_CENTRE = (0.6, 0.0)
_FLOOR_HALF_WIDTH = 0.2  # of the bin's flat floor, inside its sloping walls
_WORKSPACE = ((0.44, 0.76), (-0.19, 0.19))  # where the end effector moves: x, y ranges
_PUSH_HEIGHT = 0.075  # the last link's origin; its tip is about 5 cm below
_CAMERA_EYE = (1.2, 0.0, 0.95)
_CAMERA_TARGET = (0.57, 0.0, 0.0)
_FOV = 48.0
_SETTLE_STEPS = 480  # at most two seconds
_SUBSTEPS = 24  # physics steps of 1/240 s per frame: 10 frames per second, as BAIR
_END_EFFECTOR_LINK = 6
# The elbow-up pose the inverse kinematics keeps close to (its null space).
_REST_POSE = (0.0, 0.5, 0.0, -1.6, 0.0, 1.0, 0.0)
_DISTRACTOR_AT = (0.62, 0.38)  # outside the bin, out of the arm's reach of the path
_SCREEN_AT = (0.62, -0.39)
# Each pixel is the mean of SUPERSAMPLE x SUPERSAMPLE rendered ones, as a camera's sensor
# integrates light over its pixels: without it the renderer's aliasing makes every textured
# pixel flicker when the camera moves by a fraction of a pixel, which no real camera does.
SUPERSAMPLE = 2
# The size that the pixel-valued options (speed, shake) are given at.
REFERENCE_SIZE = 64


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
        reach = _workspace_pixels()
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


NUISANCES = ("shake", "noise", "light", "crf", "distractor", "flicker")


def check_size(size, flag="size", multiple=16):
    """The frame size must be at least 32 and a multiple of `multiple` (the networks'
    downsampling of every shipped configuration)."""
    check_int(flag, size, minimum=32)
    if size % multiple:
        raise ValueError(
            f"--{flag}={size}: the pushing set renders square frames whose side is a multiple "
            f"of {multiple} (the networks downsample by up to {multiple}), e.g. 64, 128 or 256."
        )


def _camera_basis():
    eye, target = np.array(_CAMERA_EYE), np.array(_CAMERA_TARGET)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return eye, target, right, up


def _metres_per_pixel(size):
    """Size of a pixel at the camera's target point, in metres, for `size`-pixel frames."""
    eye, target, _, _ = _camera_basis()
    distance = float(np.linalg.norm(target - eye))
    return 2.0 * distance * math.tan(math.radians(_FOV) / 2.0) / size


def _workspace_pixels():
    """The workspace's shorter side, in pixels of a 64x64 frame (roughly)."""
    (x0, x1), (y0, y1) = _WORKSPACE
    return min(x1 - x0, y1 - y0) / _metres_per_pixel(REFERENCE_SIZE)


def _photo_texture(rng, directory, name, detail, size=128):
    """A random crop of a random photo, tinted, with at most `detail` x `detail` texels of
    detail (then upsampled to `size` for the renderer), written as a PNG for `p.loadTexture`.

    The renderer samples textures without filtering, so detail finer than a pixel's footprint
    aliases: it flickers under a camera move of a tenth of a pixel, which a real camera's
    optics and sensor smooth away. `detail` keeps every texel larger than a pixel."""
    from PIL import Image

    from data_pipelines import synthetic

    photos = synthetic._raw_photos()
    photo = photos[rng.integers(len(photos))]
    side = int(rng.uniform(0.3, 0.8) * min(photo.shape[:2]))
    top = rng.integers(photo.shape[0] - side + 1)
    left = rng.integers(photo.shape[1] - side + 1)
    crop = photo[top : top + side, left : left + side].astype(np.float32)
    crop = np.clip(crop * rng.uniform(0.7, 1.2, size=3), 0, 255).astype(np.uint8)
    path = os.path.join(directory, name)
    small = Image.fromarray(crop).resize((detail, detail), Image.BILINEAR, reducing_gap=2.0)
    small.resize((size, size), Image.BILINEAR).save(path)
    return path


@contextlib.contextmanager
def _quiet_c_output():
    """Silences what C code prints to the process's stdout and stderr (pybullet's build time on
    import, `argv[0]=` on connecting), which would break progress bars and logs. Python's own
    exceptions are unaffected: they are printed after the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


class Scene:
    """One pybullet client (DIRECT, TinyRenderer) that renders clips; reused across clips."""

    def __init__(self):
        with _quiet_c_output():
            import pybullet
            import pybullet_data
            from pybullet_utils import bullet_client

            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.textures = tempfile.mkdtemp(prefix="fgbg_pushing_")
        self._texture_count = 0

    def _texture(self, rng, name, detail, size=128):
        """`_photo_texture` under a name never used before in this scene: pybullet keeps a
        texture by its file name, even across `resetSimulation`, so a reused name would give
        every later clip the first clip's texture."""
        self._texture_count += 1
        name = f"{self._texture_count}-{name}"
        return _photo_texture(rng, self.textures, name, detail, size)

    def close(self):
        self.client.disconnect()
        shutil.rmtree(self.textures, ignore_errors=True)

    def _load_objects(self, rng, count, start):
        """`count` objects at random places on the bin's floor, clear of each other and of the
        end effector's `start`; a model that finds no room is replaced by another draw, up to
        `3 * count` draws (at least one object is always placed: a small one fits anywhere).
        Raises pybullet's error when a model cannot be loaded."""
        c = self.client
        bodies, placed = [], []
        for k in range(3 * count):
            if len(bodies) == count:
                break
            model, scales = OBJECT_MODELS[rng.integers(len(OBJECT_MODELS))]
            if "{" in model:
                index = int(rng.integers(RANDOM_URDFS))
                model = model.format(index, index)
            orientation = c.getQuaternionFromEuler([0.0, 0.0, rng.uniform(0, 2 * math.pi)])
            scale = float(rng.uniform(*scales))
            body = c.loadURDF(model, [0.0, 0.0, 5.0], orientation, globalScaling=scale)
            low, high = (np.array(corner) for corner in c.getAABB(body))
            radius = 0.5 * float(np.hypot(*(high - low)[:2]))
            if radius > 0.6 * _FLOOR_HALF_WIDTH:  # too large to push around the bin
                c.removeBody(body)
                continue
            # The whole footprint on the bin's flat floor, off its sloping walls.
            room = _FLOOR_HALF_WIDTH - radius
            for _ in range(100):
                xy = np.array(_BIN_CENTRE) + rng.uniform(-room, room, size=2)
                clear = np.hypot(*(xy - start)) > radius + 0.07 and all(
                    np.hypot(*(xy - q)) > radius + r + 0.02 for q, r in placed
                )
                if clear:
                    break
            else:
                c.removeBody(body)
                continue
            placed.append((xy, radius))
            # Its footprint's centre at xy, its bottom 1 cm above the bin's floor.
            centre = (low + high)[:2] / 2.0  # from the base, loaded at x = y = 0
            position = [*(xy - centre), 5.0 - low[2] + 0.01]
            c.resetBasePositionAndOrientation(body, position, orientation)
            colour = [*rng.uniform(0.15, 1.0, size=3), 1.0]
            if rng.uniform() < 0.4:
                path = self._texture(rng, f"object{k}.png", detail=8, size=64)
                texture = c.loadTexture(path)
                c.changeVisualShape(body, -1, textureUniqueId=texture, rgbaColor=colour)
            else:
                c.changeVisualShape(body, -1, rgbaColor=colour)
            # Rolling and spinning friction and damping: objects come to rest soon after a
            # push, as on BAIR's cloth-lined bin, instead of rolling on forever.
            c.changeDynamics(
                body,
                -1,
                lateralFriction=float(rng.uniform(0.4, 0.8)),
                rollingFriction=0.01,
                spinningFriction=0.01,
                linearDamping=0.5,
                angularDamping=0.5,
            )
            bodies.append(body)
        return bodies

    def _settle(self, objects):
        """Steps the physics until every object rests (it was dropped from 1 cm), stopping
        those that still roll or rock, so that nothing moves before the arm touches it."""
        c = self.client
        for _ in range(_SETTLE_STEPS // 60):
            for _ in range(60):
                c.stepSimulation()
            speeds = [np.abs(np.concatenate(c.getBaseVelocity(body))).max() for body in objects]
            if max(speeds, default=0.0) < 1e-3:
                return
            for body in objects:
                c.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])

    def _solve_ik(self, arm, target, reset=False):
        """Joint angles that put the end effector at `target`, pointing down; with `reset` the
        arm is also put there (iterating from the rest pose), as at the start of a clip."""
        c = self.client
        limits = [c.getJointInfo(arm, j)[8:10] for j in range(7)]
        lower, upper = [low for low, _ in limits], [high for _, high in limits]
        if reset:
            for j in range(7):
                c.resetJointState(arm, j, _REST_POSE[j])
        for _ in range(10 if reset else 1):
            joints = c.calculateInverseKinematics(
                arm,
                _END_EFFECTOR_LINK,
                target,
                c.getQuaternionFromEuler([0.0, math.pi, 0.0]),  # pointing down
                lowerLimits=lower,
                upperLimits=upper,
                jointRanges=[high - low for low, high in limits],
                restPoses=_REST_POSE,
                maxNumIterations=100,
                residualThreshold=1e-4,
            )
            if reset:
                for j in range(7):
                    c.resetJointState(arm, j, joints[j])
        return joints

    def _build(self, rng, options):
        """A new scene: the textured table, the bin, the arm over its start, the objects at
        rest and the nuisances' bodies. Returns `(arm, objects, start, distractor, screen)`:
        `distractor` is `(body, heading)` and `screen` `(body, colour)`, or None."""
        c = self.client
        c.resetSimulation()
        for name in os.listdir(self.textures):  # the last clip's, loaded already
            os.remove(os.path.join(self.textures, name))
        c.setGravity(0, 0, -9.81)
        c.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        plane = c.loadURDF("plane.urdf")
        # The plane repeats its texture every metre: 24 texels of about 4 cm.
        table = c.loadTexture(self._texture(rng, "table.png", detail=24))
        c.changeVisualShape(plane, -1, textureUniqueId=table)
        tray = c.loadURDF("tray/traybox.urdf", [*_BIN_CENTRE, 0.0])
        lining = c.loadTexture(self._texture(rng, "bin.png", detail=12))
        colour = [*rng.uniform(0.5, 1.0, size=3), 1.0]
        c.changeVisualShape(tray, -1, textureUniqueId=lining, rgbaColor=colour)
        arm = c.loadURDF("kuka_iiwa/model.urdf", [0, 0, 0], useFixedBase=True)
        start = np.array([rng.uniform(*_WORKSPACE[0]), rng.uniform(*_WORKSPACE[1])])
        count = int(rng.integers(1, options.objects + 1))
        objects = self._load_objects(rng, count, start)
        self._solve_ik(arm, [*start, _PUSH_HEIGHT], reset=True)
        distractor = screen = None
        heading = rng.uniform(0, 2 * math.pi)
        if options.distractor:
            body = c.loadURDF(
                "cube_small.urdf", [*_DISTRACTOR_AT, 0.025], useFixedBase=True, globalScaling=1.3
            )
            c.changeVisualShape(body, -1, rgbaColor=[*rng.uniform(0.2, 1.0, size=3), 1.0])
            distractor = (body, heading)
        if options.flicker > 0:
            shape = c.createVisualShape(c.GEOM_BOX, halfExtents=[0.07, 0.1, 0.005])
            body = c.createMultiBody(0, -1, shape, [*_SCREEN_AT, 0.005])
            screen = (body, rng.uniform(0.4, 0.9, size=3))
        self._settle(objects)
        return arm, objects, start, distractor, screen

    def _move_distractor(self, rng, distractor, heading, pixel):
        """Slides the distractor 0.3 pixels (of a 64x64 frame) along a wandering heading,
        inside a 10 cm square outside the bin; returns the new heading."""
        c = self.client
        heading += rng.normal(0, 0.3)
        old, _ = c.getBasePositionAndOrientation(distractor)
        step = 0.3 * pixel * np.array([math.cos(heading), math.sin(heading)])
        low, high = np.subtract(_DISTRACTOR_AT, 0.05), np.add(_DISTRACTOR_AT, 0.05)
        xy = np.clip(np.array(old[:2]) + step, low, high)
        c.resetBasePositionAndOrientation(distractor, [*xy, old[2]], [0, 0, 0, 1])
        return heading

    def _step_physics(self, arm, objects, disturbed):
        """One frame of physics; returns which objects were touched by the arm, or by an
        object the arm had disturbed (`disturbed`, updated)."""
        c = self.client
        touched = np.zeros(len(objects), bool)
        for _ in range(_SUBSTEPS):
            c.stepSimulation()
            for i, body in enumerate(objects):
                pushers = [arm] + [o for j, o in enumerate(objects) if disturbed[j]]
                if any(c.getContactPoints(p, body) for p in pushers if p != body):
                    touched[i] = disturbed[i] = True
        return touched

    def render(self, rng, size, length, options):
        """One clip: the dict of `generate_clip`."""
        c = self.client
        arm, objects, start, distractor, screen = self._build(rng, options)
        pixel = _metres_per_pixel(REFERENCE_SIZE)
        speed = options.speed * pixel  # metres per frame
        eye, target, right, up = _camera_basis()
        projection = c.computeProjectionMatrixFOV(_FOV, 1.0, 0.05, 5.0)
        light_start = rng.uniform(0, 2 * math.pi)
        light_turn = options.light * rng.choice([-1.0, 1.0]) * 4.0  # radians over the clip
        gains = 1.0 + options.light * rng.choice([-1.0, 1.0]) * np.linspace(-0.5, 0.5, length)
        lows, highs = np.array(_WORKSPACE).T

        position, velocity, goal = start.copy(), np.zeros(2), None
        frames = np.empty((length, size, size, 3), np.float32)
        high = size * SUPERSAMPLE
        segmentation = np.empty((length, high, high), np.int32)
        poses = np.empty((length, len(objects), 7))
        end_effector = np.empty((length, 3), np.float32)
        end_effector_xy = np.empty((length, 2), np.float32)
        actions = np.zeros((length, 4), np.float32)
        touched = np.zeros((length, len(objects)), bool)
        disturbed = np.zeros(len(objects), bool)
        for t in range(length):
            if t:
                if goal is None or np.hypot(*(goal - position)) < 2 * speed:
                    goal = self._next_goal(rng, position, objects)
                heading = (goal - position) / max(np.hypot(*(goal - position)), 1e-9)
                velocity = 0.6 * velocity + 0.4 * heading * speed * rng.uniform(0.6, 1.4)
                new = np.clip(position + velocity, lows, highs)
                actions[t - 1, :2] = new - position
                position = new
                joints = self._solve_ik(arm, [*position, _PUSH_HEIGHT])
                for j in range(7):
                    c.setJointMotorControl2(
                        arm, j, c.POSITION_CONTROL, joints[j], force=400, maxVelocity=2.0
                    )
                if distractor is not None:
                    body, heading = distractor
                    distractor = (body, self._move_distractor(rng, body, heading, pixel))
                touched[t] = self._step_physics(arm, objects, disturbed)
            if screen is not None:
                level = 1.0 + options.flicker * rng.uniform(-1.0, 1.0)
                colour = np.clip(screen[1] * level, 0.0, 1.0)
                c.changeVisualShape(screen[0], -1, rgbaColor=[*colour, 1.0])
            # Shake turns the camera (as a hand or a tripod's wobble mostly does): the point it
            # looks at moves, so the image moves by about `jitter` pixels, without parallax.
            jitter = rng.normal(0.0, options.shake * pixel, size=2) if options.shake else (0, 0)
            shift = jitter[0] * right + jitter[1] * up
            view = c.computeViewMatrix(list(eye), list(target + shift), [0, 0, 1])
            angle = light_start + light_turn * t / max(length - 1, 1)
            _, _, rgb, _, seg = c.getCameraImage(
                size * SUPERSAMPLE,
                size * SUPERSAMPLE,
                view,
                projection,
                renderer=c.ER_TINY_RENDERER,
                lightDirection=[math.cos(angle), math.sin(angle), 2.0],
                shadow=1,
            )
            rgb = np.asarray(rgb, np.float32).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 4)
            frames[t] = rgb[..., :3].mean(axis=(1, 3)) * gains[t]
            segmentation[t] = np.asarray(seg, np.int32).reshape(high, high)
            for i, body in enumerate(objects):
                xyz, quaternion = c.getBasePositionAndOrientation(body)
                poses[t, i] = [*xyz, *quaternion]
            end_effector[t] = c.getLinkState(arm, _END_EFFECTOR_LINK)[4]
            end_effector_xy[t] = _project(end_effector[t], view, projection, size)
        clip = _ground_truth(segmentation, arm, objects, poses)
        clip.update(
            frames=_nuisances(frames, options, rng),
            touched=touched,
            endeffector_pos=end_effector,
            endeffector_xy=end_effector_xy,
            actions=actions,
        )
        return clip

    def _next_goal(self, rng, position, objects):
        """Mostly a point just past an object, as seen from the end effector (a push), else
        anywhere in the bin."""
        lows, highs = np.array(_WORKSPACE).T
        if objects and rng.uniform() < 0.7:
            body = objects[rng.integers(len(objects))]
            xy = np.array(self.client.getBasePositionAndOrientation(body)[0][:2])
            direction = (xy - position) / max(np.hypot(*(xy - position)), 1e-9)
            return np.clip(xy + direction * rng.uniform(0.04, 0.1), lows, highs)
        return rng.uniform(lows, highs)


def _project(point, view, projection, size):
    """A world point's (x, y) position in the image, in pixels (column, row)."""
    view = np.array(view).reshape(4, 4).T
    projection = np.array(projection).reshape(4, 4).T
    clip = projection @ view @ np.array([*point, 1.0])
    ndc = clip[:3] / clip[3]
    return np.array([(ndc[0] + 1) / 2 * size - 0.5, (1 - ndc[1]) / 2 * size - 0.5], np.float32)


# An object moved in a step when its centre moved or it turned by more than this.
MOVED_METRES = 1e-3
MOVED_RADIANS = math.radians(1.0)


def moved_objects(poses):
    """`[T, K]` bool: object k moves between frame t and t + 1 (the last frame: between T - 2
    and T - 1), from its poses `[T, K, 7]` (position, quaternion)."""
    shift = np.linalg.norm(np.diff(poses[..., :3], axis=0), axis=-1)
    dots = np.abs(np.sum(poses[1:, :, 3:] * poses[:-1, :, 3:], axis=-1))
    turn = 2.0 * np.arccos(np.clip(dots, 0.0, 1.0))
    moved = (shift > MOVED_METRES) | (turn > MOVED_RADIANS)
    return np.concatenate([moved, moved[-1:]], axis=0)


def _centroids(masks):
    """(x, y) = (column, row) mean of each mask's pixels `[T, 2]` (NaN where empty)."""
    rows, cols = np.indices(masks.shape[1:3])
    count = masks.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (masks * cols).sum(axis=(1, 2)) / count
        y = (masks * rows).sum(axis=(1, 2)) / count
    return np.stack([x, y], axis=-1).astype(np.float32)


def downsample_mask(mask):
    """A supersampled bool mask `[T, SH, SW]` at the frames' size `[T, H, W]`: a pixel is in
    where at least half of its SUPERSAMPLE x SUPERSAMPLE samples are."""
    length, high, wide = mask.shape
    blocks = mask.reshape(length, high // SUPERSAMPLE, SUPERSAMPLE, wide // SUPERSAMPLE, -1)
    return blocks.mean(axis=(2, 4)) >= 0.5


def _ground_truth(segmentation, arm, objects, poses):
    """Masks, the arm's centroids and its steps from the supersampled segmentation."""
    moved = moved_objects(poses) if objects else np.zeros((len(segmentation), 0), bool)
    arm_pixels = segmentation == arm
    foreground = arm_pixels.copy()
    for k, body in enumerate(objects):
        foreground |= (segmentation == body) & moved[:, k, None, None]
    arm_masks, foreground = downsample_mask(arm_pixels), downsample_mask(foreground)
    centroids = _centroids(arm_masks)
    return {
        "masks": foreground[..., None].astype(np.uint8),
        "agent_masks": arm_masks[..., None].astype(np.uint8),
        "centroids": centroids,
        "offsets": np.diff(centroids, axis=0),
        "moved": moved,
        "segmentation": segmentation,
        "object_ids": np.array(objects, np.int32),
        "arm_id": np.int32(arm),
    }


def _to_yuv420(frame):
    """RGB uint8 `[H, W, 3]` to a planar YUV 4:2:0 array `[3 H / 2, W]` (BT.601, limited range,
    as FFmpeg converts by default). Converted here, not by FFmpeg's scaler, whose threaded
    conversions differ from run to run."""
    rgb = frame.astype(np.float64) / 255.0
    height, width = frame.shape[:2]
    y = 16.0 + rgb @ np.array([65.481, 128.553, 24.966])
    cb = 128.0 + rgb @ np.array([-37.797, -74.203, 112.0])
    cr = 128.0 + rgb @ np.array([112.0, -93.786, -18.214])

    def half(plane):
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)).reshape(-1, width)

    planes = np.concatenate([y, half(cb), half(cr)], axis=0)
    return np.clip(np.round(planes), 0, 255).astype(np.uint8)


def _from_yuv420(planes, height, width):
    """The inverse of `_to_yuv420`: RGB uint8 `[H, W, 3]`, chroma upsampled by repetition."""
    planes = planes.astype(np.float64)
    y = planes[:height]
    chroma = planes[height:].reshape(2, height // 2, width // 2)
    cb, cr = (np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) - 128.0 for c in chroma)
    luma = 1.164 * (y - 16.0)
    rgb = np.stack([luma + 1.596 * cr, luma - 0.392 * cb - 0.813 * cr, luma + 2.017 * cb], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def compress(frames, crf):
    """Frames uint8 `[T, H, W, 3]` (H, W even) through an H.264 encode (x264 at `crf`) and
    decode: deterministic, like everything in the set."""
    import io

    import av

    length, height, width = frames.shape[:3]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # One thread and no B-frames (as phones and webcams often encode): x264's lookahead
        # over B-frames gave other bytes from one run to the next here.
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "bframes=0"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            packet = av.VideoFrame.from_ndarray(_to_yuv420(frame), format="yuv420p")
            container.mux(stream.encode(packet))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        decoded = [
            _from_yuv420(f.to_ndarray(format="yuv420p"), height, width)
            for f in container.decode(stream)
        ]
    if len(decoded) != length:
        raise RuntimeError(f"H.264 round trip gave {len(decoded)} frames for {length}")
    return np.stack(decoded)


def _nuisances(frames, options, rng):
    """Rendered float frames `[T, H, W, 3]` (0-255) to uint8, with lens noise and compression."""
    if options.noise:
        frames = frames + rng.normal(0.0, options.noise, size=frames.shape)
    frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    if options.crf:
        frames = compress(frames, options.crf)
    return frames


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
          `[T, SUPERSAMPLE * H, SUPERSAMPLE * W]` (pybullet body ids, -1 for nothing, as
          rendered before the frames are averaged down; `downsample_mask` gives the masks),
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
    """The file of a rendered split in `cache_dir`: named by a hash of every argument, of this
    module's code (a change to the renderer renders anew) and of pybullet's version."""
    from importlib import metadata

    with open(__file__, "rb") as source:
        code = hashlib.sha256(source.read()).hexdigest()
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
