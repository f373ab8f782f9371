"""`--source=videos`: every video file under `--input`, decoded with PyAV."""

from data_pipelines import sources
from data_pipelines.sources import Skipped, fit_frame, recording_clips, relative

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")


@sources.register("videos")
class VideoFiles(sources.Source):
    """Any folder tree of video files (mp4, avi, mov, mkv, webm, gif), one recording each."""

    recorded = True
    wanted = f"video files ({', '.join(VIDEO_EXTENSIONS)})"

    def find(self, root):
        return sources.walk_files(root, lambda name: name.lower().endswith(VIDEO_EXTENSIONS))

    def read(self, item, root, options):
        yield from read_video(item, root, options)


def read_video(path, root, options):
    """Clips of one video file (PyAV), fitted to the size; a corrupt file is skipped."""
    import av  # imported here: the other sources do not need FFmpeg

    frames, fps, problem = [], 0.0, None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                yield Skipped(path, "no video stream")
                return
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            step = 1.0 / options.fps if options.fps else 0.0
            next_time = 0.0
            for index, frame in enumerate(container.decode(stream)):
                if step:
                    time = frame.time if frame.time is not None else index / (fps or 1.0)
                    if time + 1e-6 < next_time:
                        continue
                    next_time += step
                    while next_time <= time:
                        next_time += step
                frames.append(
                    fit_frame(frame.to_ndarray(format="rgb24"), options.size, options.resize)
                )
                if options.max_frames and len(frames) >= options.max_frames:
                    break
    except (av.error.FFmpegError, OSError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    if not frames:
        yield Skipped(path, f"unreadable video: {problem or 'no frame could be decoded'}")
        return
    if problem:
        yield Skipped(path, f"decoding stopped after {len(frames)} frames ({problem}); kept them")
    if options.fps:
        fps = min(fps, options.fps) if fps else options.fps  # resampling never adds frames
    yield from recording_clips(frames, relative(path, root), path, options, fps=fps)
