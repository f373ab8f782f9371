"""Milliseconds per frame of the web page (`export.web`) in headless Chromium, beside LiteRT's
Python interpreter on the same machine, and the size of the site.

    python benchmarks/web.py --flagfile=configs/synthetic.flags --phase=2 [--sizes=64,128]
    python benchmarks/web.py --model_dir=runs/synthetic/phase2 --quantizations=none,dynamic

For each size and each TFLite quantisation in `--quantizations`, the one-step model of the
networks the flags describe (fresh weights: speed does not depend on them), or of `--model_dir`'s
run at its size, is built into a site and opened in the system's Chromium (Playwright; see
tools/web/setup.sh). The page plays `--frames` frames of a 1 px move; the figures are the median
of the page's own per-frame model times (model run and output copy; the first step, which runs
the mask network, is reported apart) and the frames per second it drew (frames over the wall
time between the first and last played frame). Twice: served with the cross-origin isolation
headers (the threaded WebAssembly build) and without them (one thread, as a static host without
headers serves it). Then `export.litert.median_step_ms` with 1 and 2 interpreter threads.
"""

import os
import statistics
import sys
import tempfile

from absl import app, flags

from export import litert, step_model, webpage
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import runs
from fgbg_keras.training import phases

FLAGS = flags.FLAGS


def define_flags():
    # train.py's flags: --phase and the networks a flagfile describes, or --model_dir.
    fgbg_flags.define_train_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.DEFINE_list("sizes", ["64", "128"], "Frame sizes to time (fresh networks).")
    flags.DEFINE_list("quantizations", ["none", "float16"], "TFLite weight quantisations.")
    flags.DEFINE_integer("frames", 40, "Frames the page plays per measurement.")
    flags.DEFINE_string(
        "screenshot", None, "Also save a screenshot of the first page after its frames (.png)."
    )
    flags.DEFINE_list(
        "screenshot_keys",
        [],
        "With --screenshot: take it on a fresh page after these key presses (e.g. "
        "ArrowLeft,ArrowLeft: two 1-px moves), not after the timed frames.",
    )
    flags.DEFINE_string(
        "image", None, "The page's image (default: export.web's, the README's example)."
    )


def screenshot_after(browser, url, keys, path):
    """Saves a screenshot of a fresh page after each of `keys` was pressed (1-px moves)."""
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=300_000)
    page.fill("#step", "1")
    page.locator("#step").blur()
    for key in keys:
        page.keyboard.press(key)
        page.evaluate("fgbg.idle()")
    page.screenshot(path=path)
    page.close()


def page_times(browser, url, frames, screenshot=None):
    """The page's median model milliseconds over `frames` played frames, the frames per second
    it drew, its first step and its backend line; saves a `screenshot` if given."""
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=300_000)
    if page.evaluate("document.body.dataset.state") != "ready":
        raise ValueError(f"The page did not load: {page.text_content('#error')}")
    page.fill("#step", "1")
    page.locator("#step").blur()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.click("#play")
    page.wait_for_function(f"fgbg.state.history.length > {frames}", timeout=600_000)
    page.click("#play")
    page.evaluate("fgbg.idle()")
    result = page.evaluate(
        "({times: fgbg.state.times, stamps: fgbg.state.stamps, first: fgbg.state.firstMs})"
    )
    backend = page.text_content("#backend")
    if screenshot and not FLAGS.screenshot_keys:
        page.screenshot(path=screenshot)
    page.close()
    if screenshot and FLAGS.screenshot_keys:
        screenshot_after(browser, url, FLAGS.screenshot_keys, screenshot)
    # The first frame was a key press; the others were played.
    played = result["stamps"][1:]
    drawn = 1000 * (len(played) - 1) / (played[-1] - played[0])
    return statistics.median(result["times"][1:]), drawn, result["first"], backend


def models():
    """(size label, quantisation, .tflite bytes) per size and quantisation."""
    if FLAGS.model_dir:
        run = runs.restore_networks(FLAGS.model_dir, precision="float32")
        sized = [run]
    else:
        phase = phases.get(FLAGS.phase)
        sized = []
        for size in FLAGS.sizes:
            config = fgbg_flags.config_from_flags()  # one per run, which keeps it
            config.model.image_size = int(size)
            phase.validate(config)
            sized.append(runs.fresh_run(config, phase, "float32"))
    for run in sized:
        size = run.config.model.image_size
        for quantize in FLAGS.quantizations:
            content, _ = step_model.convert(run, quantize)
            yield f"{size}x{size}", quantize, content


def main(argv):
    from playwright.sync_api import sync_playwright

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    chromium = webpage.chromium_path()
    if chromium is None:
        raise app.UsageError("No Chromium: bash tools/web/setup.sh installs it.")
    columns = (
        "size",
        "weights",
        "site (MiB)",
        "model (MiB)",
        "page, isolated: ms (frames/s drawn)",
        "page, not isolated: ms (frames/s drawn)",
        "first step (ms)",
        "LiteRT 1 thread (ms)",
        "LiteRT 2 threads (ms)",
    )
    lines = [
        (
            f"The page in headless Chromium ({os.cpu_count()} CPUs), {FLAGS.frames} frames, "
            "median ms per frame (the first step, with the mask network, apart); LiteRT's "
            "Python interpreter beside it."
        ),
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    backends = set()
    screenshot = FLAGS.screenshot
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for size, quantize, content in models():
                model = os.path.join(folder, f"{size}_{quantize}.tflite")
                with open(model, "wb") as f:
                    f.write(content)
                directory = os.path.join(folder, f"site_{size}_{quantize}")
                site = webpage.build_site(model, directory, FLAGS.image)
                cells = [size, quantize, f"{site['bytes'] / 2**20:.1f}"]
                cells.append(f"{site['model_bytes'] / 2**20:.1f}")
                first = None
                for isolated in (True, False):
                    shot, screenshot = screenshot, None
                    with webpage.serving(directory, isolated=isolated) as url:
                        ms, drawn, first_ms, backend = page_times(browser, url, FLAGS.frames, shot)
                    backends.add(backend)
                    cells.append(f"{ms:.1f} ({drawn:.0f})")
                    first = first if first is not None else first_ms
                cells.append(f"{first:.1f}")
                for threads in (1, 2):
                    cells.append(f"{litert.median_step_ms(content, threads, FLAGS.frames):.1f}")
                lines.append("| " + " | ".join(cells) + " |")
                sys.stdout.write(lines[-1] + "\n")
                sys.stdout.flush()
        finally:
            browser.close()
    lines.append(f"Page backends: {'; '.join(sorted(backends))}.")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
