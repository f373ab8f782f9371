"""The pushing set's scene: a KUKA arm over a bin, objects from `pybullet_data`, photo textures,
the camera, the arm's path by inverse kinematics, rendering with pybullet's TinyRenderer on the
CPU, and each frame's ground truth (the moving foreground, the arm's mask and centroid).
`data_pipelines.pushing` holds the options and renders clips and splits with it."""

import contextlib
import math
import os
import shutil
import sys
import tempfile

import numpy as np

from data_pipelines.pushing_video import add_nuisances

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


def workspace_pixels():
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
            frames=add_nuisances(frames, options, rng),
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
