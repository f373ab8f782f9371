"""The static web page of `python -m export.web` (its library): the site's files, the LiteRT.js
runtime fetched once with npm, and a local server with the headers that let the runtime use
threads. The page itself is `export/site/`; `docs/web.md` says what it does and how to host it.
"""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from typing import ClassVar

from absl import logging

SITE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = os.path.join(ROOT, "examples", "sprite_on_colorwheel.png")
PAGE_FILES = ("index.html", "app.js", "fgbg.js", "style.css")
# node_modules path -> path in the site. The three WebAssembly builds LiteRT.js picks from:
# `compat` (no relaxed SIMD), the default, and `threaded` (a cross-origin-isolated page).
# The JSPI build, which only WebGPU partitioning and WebNN need, is left out (9.6 MB).
RUNTIME_FILES = {
    "@litertjs/core/dist/index.js": "litertjs/core/index.js",
    "@litertjs/wasm-utils/dist/index.js": "litertjs/wasm-utils/index.js",
    "gifenc/dist/gifenc.esm.js": "gifenc/gifenc.esm.js",
    "gifenc/LICENSE.md": "gifenc/LICENSE.md",
    **{
        f"@litertjs/core/wasm/litert_wasm_{build}internal.{ext}": (
            f"litertjs/core/wasm/litert_wasm_{build}internal.{ext}"
        )
        for build in ("", "compat_", "threaded_")
        for ext in ("js", "wasm")
    },
}
# Served with these, the page is cross-origin isolated, so LiteRT.js may use its threaded build.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


def _cache_dir():
    with open(os.path.join(SITE_SOURCE, "package-lock.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    base = os.environ.get("FGBG_WEB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fgbg"
    )
    return os.path.join(base, f"web-{digest}")


def runtime_modules():
    """The `node_modules` folder holding the pinned runtime, installed with `npm ci` into the
    cache on first use.

    Raises:
        ValueError: npm is missing or `npm ci` failed (its output is in the message).
    """
    cache = _cache_dir()
    modules = os.path.join(cache, "node_modules")
    if all(os.path.exists(os.path.join(modules, path)) for path in RUNTIME_FILES):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise ValueError(
            "export.web fetches LiteRT.js once with npm, and there is no npm on this machine: "
            "install Node.js (for example apt-get install npm) and run the command again."
        )
    try:
        os.makedirs(cache, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(SITE_SOURCE, name), os.path.join(cache, name))
    except OSError as error:
        raise ValueError(
            f"Cannot write the LiteRT.js cache {cache}: {error}. Set $FGBG_WEB_CACHE to a "
            "writable folder."
        ) from None
    logging.info("Installing LiteRT.js with npm ci into %s (once).", cache)
    command = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        result = subprocess.run(
            command, cwd=cache, capture_output=True, text=True, check=False, timeout=600
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"npm ci in {cache} took over 10 minutes: is the registry reachable?"
        ) from None
    missing = [path for path in RUNTIME_FILES if not os.path.exists(os.path.join(modules, path))]
    if result.returncode != 0 or missing:
        raise ValueError(
            f"npm ci in {cache} failed (exit {result.returncode}; missing: {missing}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}"
        )
    return modules


def build_site(model, output, image=None):
    """Writes the static site for `model` into `output`.

    Args:
        model: a `.tflite` file of `export.tflite`.
        output: the site's folder (made if missing; the site's own files are replaced).
        image: the example image, any size and format; by default the README's example.

    Returns:
        A dict: `"image_size"` (the model's), `"bytes"` (the whole site), `"model_bytes"` and
        `"runtime_bytes"`.

    Raises:
        ValueError: a model that is not a one-step model of export.tflite, an image that
            cannot be read, or no npm to fetch the runtime with.
    """
    from PIL import Image

    from export.litert import StepModel
    from fgbg_keras.media import load_image

    size = StepModel(model).image_size
    image = image or DEFAULT_IMAGE
    pixels = load_image(image)
    modules = runtime_modules()
    os.makedirs(output, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(os.path.join(SITE_SOURCE, name), os.path.join(output, name))
    target = os.path.join(output, "model.tflite")
    if not (os.path.exists(target) and os.path.samefile(model, target)):
        shutil.copyfile(model, target)
    # Saved as the pixels Python reads (alpha over white), so page and preview start alike.
    Image.fromarray(pixels).save(os.path.join(output, "example.png"))
    runtime = os.path.join(output, "runtime")
    for module_path, site_path in RUNTIME_FILES.items():
        os.makedirs(os.path.dirname(os.path.join(runtime, site_path)), exist_ok=True)
        shutil.copyfile(os.path.join(modules, module_path), os.path.join(runtime, site_path))
    manifest = {"model": "model.tflite", "image": "example.png", "image_size": size}
    with open(os.path.join(output, "site.json"), "w") as f:
        json.dump(manifest, f, indent=2)

    def total(folder):
        return sum(
            os.path.getsize(os.path.join(d, name))
            for d, _, names in os.walk(folder)
            for name in names
        )

    return {
        "image_size": size,
        "bytes": total(output),
        "model_bytes": os.path.getsize(model),
        "runtime_bytes": total(runtime),
    }


class _Handler(http.server.SimpleHTTPRequestHandler):
    isolated = True
    extensions_map: ClassVar[dict] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".tflite": "application/octet-stream",
    }

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items() if self.isolated else ():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):
        logging.debug("%s %s", self.address_string(), format % args)


def make_server(directory, port=8000, host="127.0.0.1", isolated=True):
    """A threaded HTTP server of the site in `directory` (`port=0`: any free port;
    `server.server_address` says which). Call `serve_forever()` on it. `isolated`: send the
    cross-origin isolation headers (without them, as on a static host that cannot send headers,
    LiteRT.js runs on one thread)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port={port}: must be between 0 (any free port) and 65535.")
    if not os.path.isfile(os.path.join(directory, "index.html")):
        raise ValueError(f"{directory!r} holds no site: build it with --output first.")
    handler = type("Handler", (_Handler,), {"isolated": isolated})
    try:
        return http.server.ThreadingHTTPServer(
            (host, port), functools.partial(handler, directory=directory)
        )
    except OSError as error:
        raise ValueError(f"--port={port}: cannot serve on {host}:{port}: {error}") from None


@contextlib.contextmanager
def serving(directory, isolated=True):
    """Serves the site in `directory` on a free localhost port in a thread; yields its URL."""
    server = make_server(directory, port=0, isolated=isolated)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium_path():
    """The system's Chromium (`$FGBG_CHROMIUM`, else `chromium`, `chromium-browser` or
    `google-chrome` on the PATH), or None."""
    for name in (os.environ.get("FGBG_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = name and shutil.which(name)
        if path:
            return path
    return None
