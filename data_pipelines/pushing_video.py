"""The pushing set's camera: lens noise and an H.264 encode and decode (x264 through PyAV),
deterministic as everything in the set. YUV 4:2:0 is converted here, not by FFmpeg's scaler,
whose threaded conversions differ from run to run."""

import numpy as np


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


def add_nuisances(frames, options, rng):
    """Rendered float frames `[T, H, W, 3]` (0-255) to uint8, with lens noise and compression."""
    if options.noise:
        frames = frames + rng.normal(0.0, options.noise, size=frames.shape)
    frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    if options.crf:
        frames = compress(frames, options.crf)
    return frames
