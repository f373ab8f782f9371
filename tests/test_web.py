"""The web page of `export.web` in a real headless Chromium (Playwright with the system browser):
the frames it draws match `export.litert`'s interpreter for the same image and moves, arrows and
drags move the mask by whole pixels, play and reset work, the session downloads as a GIF, and
models, files and browsers that cannot run get a message on the page."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from export import litert, step_model, webpage
from fgbg_keras import runs

pytest.importorskip("ai_edge_litert.interpreter")

# Measured on a 2-core Xeon (Chromium 156, LiteRT.js 2.5.3 on WebAssembly, against LiteRT's
# Python interpreter): the frames differed by at most 6e-6 (an image of the model's size, two
# steps) and 1e-5 (an image the page resized itself, three steps of the trained model); the masks
# were equal, and the page's resize differed from TensorFlow's by at most 4e-7.
FRAME_ATOL = 1e-4


def red_square_image(size=32, top_left=(10, 12), side=8):
    """uint8 `[size, size, 3]`: a red square on a grey, lightly textured background."""
    rng = np.random.default_rng(0)
    image = rng.integers(90, 140, (size, size, 3), dtype=np.uint8)
    y, x = top_left
    image[y : y + side, x : x + side] = (230, 20, 20)
    return image


def red_mask_network(size):
    """A stand-in mask network that finds the red pixels, so that the page's moves can be checked
    on a mask of known shape."""
    import keras

    frames = keras.Input((size, size, 3), batch_size=1)
    masks = keras.ops.sigmoid(40.0 * (frames[..., :1] - frames[..., 1:2] - 0.5))
    return keras.Model(frames, masks)


def keep_generator(size):
    """A stand-in frame generator that returns its frame (for a model of another size)."""
    import keras

    inputs = {
        "frame": keras.Input((size, size, 3), batch_size=1, name="frame"),
        "mask": keras.Input((size, size, 1), batch_size=1, name="mask"),
        "target_mask": keras.Input((size, size, 1), batch_size=1, name="target_mask"),
    }
    return keras.Model(inputs, {"frame": keras.layers.Identity()(inputs["frame"])})


@pytest.fixture(scope="module")
def site(unet_run_dir, tmp_path_factory):
    """A site of the tiny run's 32x32 model with the red-square mask network (model.tflite), its
    own model (`trained.tflite`), a 48x40 image, a 16x16 model and files that are no models."""
    import tensorflow as tf
    from PIL import Image

    try:
        webpage.runtime_modules()
    except ValueError as error:
        pytest.skip(f"no LiteRT.js runtime: {error}")
    folder = tmp_path_factory.mktemp("web")
    run = runs.restore_networks(unet_run_dir, precision="float32")
    red = step_model.step_function(red_mask_network(32), run.frame_generator, 32)
    (folder / "red.tflite").write_bytes(step_model.to_tflite(red))
    Image.fromarray(red_square_image()).save(folder / "square.png")
    webpage.build_site(str(folder / "red.tflite"), str(folder / "site"), str(folder / "square.png"))
    site = folder / "site"
    trained, _ = step_model.convert(run)
    (site / "trained.tflite").write_bytes(trained)
    image = np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(image).save(site / "wide.png")
    small = step_model.step_function(red_mask_network(16), keep_generator(16), 16)
    (site / "small.tflite").write_bytes(step_model.to_tflite(small))
    (site / "junk.tflite").write_bytes(b"not a flatbuffer")
    double = tf.function(lambda x: {"y": 2.0 * x}, input_signature=[tf.TensorSpec([1, 4])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [double.get_concrete_function()], double
    )
    (site / "other.tflite").write_bytes(converter.convert())
    return {"dir": str(site), "red": str(folder / "red.tflite"), "trained": trained}


@pytest.fixture(scope="module")
def server(site):
    with webpage.serving(site["dir"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason='pip install -e ".[test]"')
    path = webpage.chromium_path()
    if path is None:
        pytest.skip("no Chromium on this machine: bash tools/web/setup.sh installs it")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


PAGE_ERRORS = {}


def open_page(browser, url, init_script=None):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    errors = PAGE_ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=120_000)
    assert not errors, errors
    return page


def close(page):
    """Closes a page, failing if a script error was thrown in it at any time."""
    errors = PAGE_ERRORS.pop(id(page))
    page.close()
    assert not errors, errors


def ready_page(browser, url):
    page = open_page(browser, url)
    assert page.evaluate("document.body.dataset.state") == "ready", page.text_content("#error")
    return page


def page_state(page):
    """The page's current frame `[S, S, 3]` and mask `[S, S, 1]`, and its frame count."""
    values = page.evaluate(
        "({frame: Array.from(fgbg.state.frame), mask: Array.from(fgbg.state.mask), "
        "size: fgbg.state.size, frames: fgbg.state.history.length - 1})"
    )
    size = values["size"]
    return (
        np.array(values["frame"], np.float32).reshape(size, size, 3),
        np.array(values["mask"], np.float32).reshape(size, size, 1),
        values["frames"],
    )


def preview_step(model, image, offsets):
    """What `export.preview` computes for `image` (uint8) and `offsets` (model pixels)."""
    from data_pipelines.preprocess import preprocess_frames

    step = litert.StepModel(model)
    frame = np.asarray(preprocess_frames(image[None], step.image_size))
    return litert.run_loop(step, frame, np.asarray(offsets, np.float32))


def set_step(page, value):
    """Types the step size, then leaves the box (whose arrow keys would change it)."""
    page.fill("#step", value)
    page.locator("#step").blur()


def press(page, key, times=1):
    for _ in range(times):
        page.keyboard.press(key)
    page.evaluate("fgbg.idle()")


def test_the_site_holds_the_page_the_model_and_every_file_the_import_map_names(site):
    folder = site["dir"]
    with open(os.path.join(folder, "site.json")) as f:
        manifest = json.load(f)
    assert manifest == {"model": "model.tflite", "image": "example.png", "image_size": 32}
    with open(os.path.join(folder, "model.tflite"), "rb") as f, open(site["red"], "rb") as g:
        assert f.read() == g.read()
    with open(os.path.join(folder, "index.html")) as f:
        html = f.read()
    imports = json.loads(html.split('<script type="importmap">')[1].split("</script>")[0])
    for path in imports["imports"].values():
        assert os.path.isfile(os.path.join(folder, path)), path
    for build in ("", "compat_", "threaded_"):
        for ext in ("js", "wasm"):
            name = f"litert_wasm_{build}internal.{ext}"
            assert os.path.isfile(os.path.join(folder, "runtime/litertjs/core/wasm", name))


def test_the_server_isolates_the_page_and_serves_wasm_as_wasm(server, site):
    with urllib.request.urlopen(
        server + "runtime/litertjs/core/wasm/litert_wasm_internal.wasm"
    ) as r:
        assert r.headers["Content-Type"] == "application/wasm"
        assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    with webpage.serving(site["dir"], isolated=False) as url, urllib.request.urlopen(url) as r:
        assert "Cross-Origin-Opener-Policy" not in r.headers


def test_models_images_and_folders_that_cannot_make_a_site_are_named(site, tmp_path):
    with pytest.raises(ValueError, match="junk.tflite.* is not a TFLite model"):
        webpage.build_site(os.path.join(site["dir"], "junk.tflite"), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="other.tflite.* is not a one-step model"):
        webpage.build_site(os.path.join(site["dir"], "other.tflite"), str(tmp_path / "b"))
    (tmp_path / "bad.png").write_bytes(b"no image")
    with pytest.raises(ValueError, match="bad.png.* cannot be read as an image"):
        webpage.build_site(site["red"], str(tmp_path / "c"), str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="holds no site"):
        webpage.make_server(str(tmp_path), port=0)


def test_the_command_writes_the_site_and_names_a_bad_model(site, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def command(model):
        args = [sys.executable, "-m", "export.web", f"--model={model}"]
        args.append(f"--output={tmp_path / 'out'}")
        return subprocess.run(
            args, capture_output=True, text=True, cwd=root, timeout=300, check=False
        )

    good = command(site["red"])
    assert good.returncode == 0, good.stderr[-3000:]
    assert "32x32 model" in good.stdout and (tmp_path / "out" / "index.html").is_file()
    bad = command(os.path.join(site["dir"], "junk.tflite"))
    assert bad.returncode != 0 and "junk.tflite' is not a TFLite model" in bad.stderr


def test_the_page_draws_the_frames_the_litert_preview_draws(browser, server, site):
    page = ready_page(browser, server)
    # Served with the isolation headers, the page runs LiteRT.js's threaded build.
    assert page.evaluate("crossOriginIsolated")
    threads = min(os.cpu_count(), 4)
    assert page.text_content("#backend") == (
        f"WebAssembly (XNNPACK), {threads} threads"
        if threads > 1
        else "WebAssembly (XNNPACK), one thread"
    )
    press(page, "ArrowRight")
    press(page, "ArrowDown")
    frame, mask, count = page_state(page)
    expected = preview_step(site["red"], red_square_image(), [[2, 0], [0, 2]])
    assert count == 2
    np.testing.assert_array_equal(mask, expected["masks"][-1])
    np.testing.assert_allclose(frame, expected["frames"][-1], atol=FRAME_ATOL)
    screenshot = os.environ.get("FGBG_WEB_SCREENSHOT")
    page.screenshot(path=screenshot or os.path.join(site["dir"], "..", "page.png"))
    close(page)


def test_the_trained_model_on_a_resized_image_matches_the_preview(browser, server, site):
    from PIL import Image

    page = ready_page(browser, server + "?model=trained.tflite&image=wide.png")
    assert "wide.png is 48x40; the model takes 32x32 frames" in page.text_content("#note")
    set_step(page, "1.5")
    press(page, "ArrowLeft", times=3)
    frame, mask, _ = page_state(page)
    image = np.asarray(Image.open(os.path.join(site["dir"], "wide.png")))
    model = os.path.join(site["dir"], "trained.tflite")
    expected = preview_step(model, image, [[-1.5, 0]] * 3)
    np.testing.assert_array_equal(expected["controls"][:, 0], [-2, -1, -1])  # -2, -3, -4
    np.testing.assert_array_equal(mask, expected["masks"][-1])
    np.testing.assert_allclose(frame, expected["frames"][-1], atol=FRAME_ATOL)
    close(page)


def test_five_arrow_presses_move_the_mask_five_steps(browser, server):
    page = ready_page(browser, server)
    start = page.evaluate("fgbg.centroid()")
    set_step(page, "1")
    press(page, "ArrowRight", times=5)
    moved = page.evaluate("fgbg.centroid()")
    np.testing.assert_allclose(np.subtract(moved, start), [5, 0], atol=1e-9)
    page.click(".arrows .up")
    page.evaluate("fgbg.idle()")
    np.testing.assert_allclose(np.subtract(page.evaluate("fgbg.centroid()"), start), [5, -1])
    close(page)


def test_a_drag_moves_the_mask_by_the_whole_pixels_dragged(browser, server):
    page = ready_page(browser, server)
    start = page.evaluate("fgbg.centroid()")
    box = page.locator("#view").bounding_box()
    per_pixel = box["width"] / 32  # screen pixels per model pixel
    x, y = box["x"] + start[0] * per_pixel, box["y"] + start[1] * per_pixel
    page.mouse.move(x, y)
    page.mouse.down()
    # 3.4 model pixels right and 2.6 up, in ten moves: whole-pixel steps of the running sum.
    for i in range(1, 11):
        page.mouse.move(x + 0.34 * i * per_pixel, y - 0.26 * i * per_pixel)
    page.mouse.up()
    page.evaluate("fgbg.idle()")
    moved = page.evaluate("fgbg.centroid()")
    np.testing.assert_allclose(np.subtract(moved, start), [3, -3], atol=1e-9)
    close(page)


def test_play_repeats_the_last_move_and_reset_goes_back(browser, server):
    page = ready_page(browser, server)
    start = page.evaluate("fgbg.centroid()")
    first, _, _ = page_state(page)
    # A quarter pixel a frame: play runs on until the second click, and the square (12 px from
    # the edge) has room for 48 frames.
    set_step(page, "0.25")
    press(page, "ArrowLeft")
    # Play is stopped from inside the page as soon as 6 frames are made, by a mutation observer
    # of the frame counter set up before play starts: it runs as the frame is shown, before the
    # next step starts. A click from the test process, or an observer set up after play starts,
    # can come many frames later on a loaded machine (the page's steps run ahead of the
    # test's calls).
    page.evaluate(
        """() => {
          window.stopped = new Promise((done) => {
            const observer = new MutationObserver(() => {
              if (fgbg.state.history.length < 6) return;
              observer.disconnect();
              document.querySelector("#play").click();
              done();
            });
            observer.observe(document.querySelector("#frames"), {
              childList: true, characterData: true, subtree: true,
            });
          });
        }"""
    )
    page.click("#play")
    page.evaluate("window.stopped")
    page.evaluate("fgbg.idle()")
    _, _, count = page_state(page)
    assert 5 <= count < 48
    moved = page.evaluate("fgbg.centroid()")
    expected = litert.whole_pixel_steps(np.tile([[-0.25, 0.0]], (count, 1))).sum(axis=0)
    np.testing.assert_allclose(np.subtract(moved, start), expected, atol=1e-9)
    assert "frames/s" in page.text_content("#ms")
    page.click("#reset")
    frame, _, count = page_state(page)
    assert count == 0
    np.testing.assert_array_equal(frame, first)
    assert page.evaluate("fgbg.centroid()") == start
    close(page)


def test_the_session_downloads_as_a_gif_with_a_frame_per_step(browser, server, tmp_path):
    from PIL import Image, ImageSequence

    page = ready_page(browser, server)
    press(page, "ArrowRight", times=3)
    with page.expect_download() as download:
        page.click("#gif")
    path = tmp_path / "session.gif"
    download.value.save_as(path)
    with Image.open(path) as gif:
        frames = list(ImageSequence.Iterator(gif))
        assert gif.size == (256, 256)  # 32 x 8
    # The first frame and three generated ones (Pillow merges equal frames; these differ).
    assert len(frames) == 4
    close(page)


def test_the_session_downloads_as_webm(browser, server, tmp_path):
    page = ready_page(browser, server)
    press(page, "ArrowRight", times=2)
    with page.expect_download(timeout=60_000) as download:
        page.click("#webm")
    path = tmp_path / "session.webm"
    download.value.save_as(path)
    data = path.read_bytes()
    assert data[:4] == bytes.fromhex("1a45dfa3") and b"webm" in data[:64]  # EBML, doctype webm
    assert len(data) > 1000
    close(page)


@pytest.mark.parametrize(
    "model, message",
    [
        ("small.tflite", "takes 16x16 frames, but this page was built for a 32x32 model"),
        ("junk.tflite", "is not a TFLite model that LiteRT.js can load"),
        ("other.tflite", "is not a one-step model of export.tflite"),
        ("missing.tflite", "Cannot fetch the model missing.tflite: HTTP 404"),
    ],
)
def test_models_the_page_cannot_use_are_named_on_the_page(browser, site, model, message):
    folder = os.path.join(site["dir"], "..", f"site_{model}")
    if not os.path.exists(folder):
        shutil.copytree(site["dir"], folder)
        target = os.path.join(folder, "model.tflite")
        os.remove(target)
        if model != "missing.tflite":
            shutil.copyfile(os.path.join(site["dir"], model), target)
        with open(os.path.join(folder, "site.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(folder, "site.json"), "w") as f:
            json.dump(
                {**manifest, "model": "model.tflite" if model != "missing.tflite" else model}, f
            )
    with webpage.serving(folder) as url:
        page = open_page(browser, url)
        assert page.evaluate("document.body.dataset.state") == "error"
        assert message in page.text_content("#error")
        assert page.is_visible("#error")
        close(page)


def test_without_the_isolation_headers_the_page_runs_on_one_thread(browser, site):
    with webpage.serving(site["dir"], isolated=False) as url:
        page = ready_page(browser, url)
        assert not page.evaluate("crossOriginIsolated")
        assert page.text_content("#backend") == "WebAssembly (XNNPACK), one thread"
        press(page, "ArrowRight")
        assert page_state(page)[2] == 1
        close(page)


def test_the_visitor_can_pick_an_image_and_a_model(browser, server, site):
    page = ready_page(browser, server)
    page.set_input_files("#image-file", os.path.join(site["dir"], "wide.png"))
    page.wait_for_function("fgbg.state.image && fgbg.state.image.label === 'wide.png'")
    page.evaluate("fgbg.idle()")
    assert "wide.png is 48x40; the model takes 32x32 frames" in page.text_content("#note")
    page.set_input_files("#model-file", os.path.join(site["dir"], "small.tflite"))
    page.wait_for_function("fgbg.state.size === 16", timeout=60_000)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    assert "resized for small.tflite (16x16)" in page.text_content("#note")
    press(page, "ArrowDown")
    frame, _, count = page_state(page)
    assert frame.shape == (16, 16, 3) and count == 1
    page.set_input_files("#model-file", os.path.join(site["dir"], "junk.tflite"))
    page.wait_for_function("document.body.dataset.state === 'error'")
    assert "junk.tflite is not a TFLite model that LiteRT.js can load" in page.text_content(
        "#error"
    )
    close(page)


def test_the_command_serves_a_temporary_site(site):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-m", "export.web", f"--model={site['red']}", "--serve", "--port=0"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[1].startswith("Serving on http://127.0.0.1:"), lines
        url = lines[1].split()[2]
        with urllib.request.urlopen(url + "site.json") as r:
            assert json.load(r)["image_size"] == 32
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_browser_without_webassembly_is_told_so(browser, server):
    page = open_page(browser, server, init_script="delete globalThis.WebAssembly;")
    assert page.evaluate("document.body.dataset.state") == "error"
    assert "cannot run LiteRT.js: it has no WebAssembly" in page.text_content("#error")
    close(page)


def test_an_image_the_browser_cannot_decode_is_named(browser, server):
    page = open_page(browser, server + "?image=site.json")
    assert page.evaluate("document.body.dataset.state") == "error"
    assert "site.json cannot be read as an image" in page.text_content("#error")
    close(page)


def test_the_page_resizes_and_rounds_as_the_python_code_does(browser, server):
    from data_pipelines.preprocess import preprocess_frames

    page = ready_page(browser, server)
    rng = np.random.default_rng(2)
    cases = [((40, 48), 32), ((20, 24), 32), ((64, 64), 32), ((32, 32), 32)]
    for (height, width), size in cases:
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        rgba = np.concatenate([image, np.full((height, width, 1), 255, np.uint8)], -1)
        got = page.evaluate(
            "async ([rgba, w, h, s]) => Array.from((await import('./fgbg.js'))"
            ".preprocess(new Uint8Array(rgba), w, h, s))",
            [rgba.ravel().tolist(), width, height, size],
        )
        expected = np.asarray(preprocess_frames(image[None], size))[0]
        np.testing.assert_allclose(np.reshape(got, (size, size, 3)), expected, atol=1e-5)
    offsets = rng.uniform(-2, 2, (30, 2)).round(1)
    offsets[:4] = [[0.5, 1.5], [0.5, -2.5], [1.0, 0.5], [-0.5, 0.0]]  # halves round to even
    sent = page.evaluate(
        "async (moves) => { const {Controls} = await import('./fgbg.js'); const c = new Controls();"
        " return moves.map(([dx, dy]) => { c.add(dx, dy); return c.take(); }); }",
        offsets.tolist(),
    )
    np.testing.assert_array_equal(sent, litert.whole_pixel_steps(offsets))
    close(page)
