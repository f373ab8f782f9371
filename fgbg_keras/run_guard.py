"""What keeps a run directory whole: one writer at a time, and checkpoints that read whole.

- `sole_writer(model_dir)`: training holds an advisory lock (`fcntl.flock`) on
  `<model_dir>/writer.lock`, which names the process that holds it. A second `train.py` on the
  same directory is refused at start, naming that process, instead of writing its checkpoints
  over the first one's. The kernel releases the lock when its process ends, however it ends,
  so a crashed run leaves nothing stuck. (A multi-worker run takes it in its chief, the one
  task that writes the run.)
- `usable_checkpoint(directory)`: the newest checkpoint that reads whole. A checkpoint cut short
  (a crash or a full disk while it was written), damaged, or missing files is named in the log,
  moved into `<checkpoints>/set_aside/` and dropped from the directory's list, and the run goes
  on from the one before it: training resumes from it, and evaluation, generation and the
  exports read it.
- `save_checkpoint(manager, step)`: a checkpoint that cannot be written (a full disk) stops the
  run with `CheckpointNotWritten`, which says why; its partial files are removed, and the earlier
  checkpoints stay as they were (TensorFlow writes a checkpoint whole before it lists it).
"""

import contextlib
import glob
import json
import os
import shutil
import socket

import tensorflow as tf
from absl import logging

LOCK_FILE = "writer.lock"
SET_ASIDE = "set_aside"

# The run directories this process writes: real path -> [lock file, depth]. train.py holds
# the lock over its whole run and the training loop takes it again inside.
_held = {}


class RunDirectoryBusy(ValueError):
    """Another process writes the run directory."""


class CheckpointNotWritten(RuntimeError):
    """A checkpoint could not be written; the earlier ones are intact."""


@contextlib.contextmanager
def sole_writer(model_dir):
    """Holds the writer's lock of `model_dir` (an existing directory) while the context runs;
    taken again by the process that holds it, it just goes on.

    Raises:
        RunDirectoryBusy: another process holds it; the message names the directory and that
            process.
    """
    key = os.path.realpath(model_dir)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        logging.warning("No file locks here: nothing stops a second writer of %s.", model_dir)
        yield
        return
    # Held open for the whole run: the lock lives as long as the file descriptor.
    lock = open(os.path.join(model_dir, LOCK_FILE), "a+")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise RunDirectoryBusy(
            f"--model_dir={model_dir!r} is being written by {holder}: one run writes a "
            "directory at a time. Wait for that run to end, or use another --model_dir."
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    lock.flush()
    _held[key] = [lock, 1]
    try:
        yield
    finally:
        del _held[key]
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _read_error(path):
    """Why the checkpoint at `path` (a prefix) does not read whole, or None when it does: every
    tensor is read, so a file cut short or a checksum that does not match is found."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (IndexError, ValueError, tf.errors.OpError) as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def _listed(directory):
    """The checkpoints that `directory`'s state file lists, oldest first, with their
    timestamps (None where it has none), as prefixes under `directory` (TensorFlow joins a
    relative entry of the state file with `directory`, relative or not, as here)."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return [], []
    paths = list(state.all_model_checkpoint_paths)
    timestamps = list(state.all_model_checkpoint_timestamps)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    if len(timestamps) != len(paths):
        timestamps = [None] * len(paths)
    return paths, timestamps


def _set_aside(directory, bad, paths, timestamps, last_preserved):
    """Moves the files of the checkpoints `bad` into `directory/set_aside/` and lists only the
    others."""
    target = os.path.join(directory, SET_ASIDE)
    os.makedirs(target, exist_ok=True)
    for path in bad:
        for name in glob.glob(glob.escape(path) + ".*"):
            shutil.move(name, os.path.join(target, os.path.basename(name)))
    kept = [(p, t) for p, t in zip(paths, timestamps) if p not in bad]
    state_file = os.path.join(directory, "checkpoint")
    if not kept:
        shutil.move(state_file, os.path.join(target, "checkpoint"))
        return
    # The state file (a `CheckpointState` in text format), written whole and then renamed.
    names = [json.dumps(os.path.relpath(p, directory)) for p, _ in kept]
    lines = [f"model_checkpoint_path: {names[-1]}"]
    lines += [f"all_model_checkpoint_paths: {name}" for name in names]
    if None not in timestamps:
        lines += [f"all_model_checkpoint_timestamps: {t!r}" for _, t in kept]
    if last_preserved:
        lines.append(f"last_preserved_timestamp: {last_preserved!r}")
    with open(state_file + ".partial", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(state_file + ".partial", state_file)


def usable_checkpoint(directory, set_aside=True):
    """The newest checkpoint under `directory` that reads whole (its prefix), or None when there
    is none.

    The checkpoints listed after it, which do not read whole, are named in the log and, with
    `set_aside`, moved into `directory/set_aside/` and dropped from the directory's list (a
    run's other readers, such as the tasks of a multi-worker run other than its chief, pass
    False and only skip them).
    """
    paths, timestamps = _listed(directory)
    bad, usable = [], None
    for path in reversed(paths):
        error = _read_error(path)
        if error is None:
            usable = path
            break
        bad.append(path)
        logging.warning("Checkpoint %s does not read whole: %s.", path, error)
    if not bad:
        return usable
    if set_aside:
        try:
            last_preserved = tf.train.get_checkpoint_state(directory).last_preserved_timestamp
            _set_aside(directory, bad, paths, timestamps, last_preserved)
            logging.warning(
                "Set aside in %s: %s.",
                os.path.join(directory, SET_ASIDE),
                ", ".join(os.path.basename(p) for p in bad),
            )
        except OSError as error:
            logging.warning("Could not set them aside (%s); skipping them.", error)
    logging.warning("Going on from %s.", usable or "no checkpoint: none reads whole")
    return usable


def _reason(error):
    """The operating system's words in a TensorFlow error ("...; No space left on device
    [Op:SaveV2]" -> "No space left on device")."""
    text = str(error).split(";")[-1].split("[Op:")[0].strip()
    return text or type(error).__name__


def save_checkpoint(manager, step):
    """`manager.save(checkpoint_number=step)`; returns the path written.

    Raises:
        CheckpointNotWritten: the write failed. Its partial files are removed; the earlier
            checkpoints, and the directory's list of them, are as they were.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
        prefix = os.path.join(manager.directory, f"ckpt-{step}")
        if prefix not in _listed(manager.directory)[0]:
            for name in glob.glob(glob.escape(prefix) + "[._]*"):
                if os.path.isdir(name):
                    shutil.rmtree(name, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(name)
        latest = tf.train.latest_checkpoint(manager.directory)
        raise CheckpointNotWritten(
            f"The checkpoint of step {step} could not be written to {manager.directory}: "
            f"{_reason(error)}. The earlier checkpoints are intact"
            + (f" (the latest: {latest}); " if latest else "; ")
            + "make room and run the same command again to resume."
        ) from None
