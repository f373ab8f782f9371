r"""A static web page that steers the object in the visitor's browser: the one-step TFLite model
of `export.tflite` runs client-side with LiteRT.js (WebAssembly, XNNPACK), no server inference.

    python -m export.web --model=model.tflite --output=site/ [--image=IMG] [--serve --port=8000]
    python -m export.web --model=model.tflite --serve --port=8000   # a temporary site

writes `site/`: `index.html`, its scripts (`app.js`, `fgbg.js`), `site.json`, the model, the
example image and the LiteRT.js runtime (`runtime/`). Any static file server can host it;
`--serve` serves it on localhost with the headers that let LiteRT.js use threads
(`Cross-Origin-Opener-Policy`/`-Embedder-Policy`; without them it runs on one thread).

The runtime comes from npm, pinned by `export/site/package-lock.json`: the first build runs
`npm ci` into a cache folder (`web-<lock hash>` in `$FGBG_WEB_CACHE`, else in
`$XDG_CACHE_HOME/fgbg` or `~/.cache/fgbg`), later builds copy from it. Nothing is fetched from
a CDN when the page runs. The library is `export.webpage`.

The page (`export/site/`): the mask the model finds over the image; drag the object (mouse or
touch), the arrow keys or buttons with a step size; play repeats the last move; reset; the
milliseconds per frame and the backend; the session as GIF or WebM. Controls are the whole-pixel
steps of the rounded running sum of the moves, as `export.preview` sends them, so the page and
the preview give the same frames for the same moves.
"""

import sys
import tempfile

from absl import app, flags

from export import webpage

FLAGS = flags.FLAGS


def define_flags():
    """This command's flags."""
    flags.DEFINE_string("model", None, "A .tflite file written by export.tflite.")
    flags.DEFINE_string(
        "output",
        None,
        "The site's folder (made if missing); with --serve, default: a temporary one.",
    )
    flags.DEFINE_string(
        "image", None, "The page's example image (any size); default: the README's example."
    )
    flags.DEFINE_boolean("serve", False, "Also serve the site on --host:--port until Ctrl-C.")
    flags.DEFINE_integer("port", 8000, "Port of --serve (0: any free port).")
    flags.DEFINE_string("host", "127.0.0.1", "Address of --serve (0.0.0.0: every interface).")
    flags.mark_flags_as_required(["model"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.output is None and not FLAGS.serve:
        raise app.UsageError(
            "--output: the site's folder is needed (or --serve, to serve a temporary one)."
        )
    with tempfile.TemporaryDirectory(prefix="fgbg_site_") as temporary:
        output = FLAGS.output or temporary
        try:
            site = webpage.build_site(FLAGS.model, output, FLAGS.image)
            server = webpage.make_server(output, FLAGS.port, FLAGS.host) if FLAGS.serve else None
        except ValueError as error:
            raise app.UsageError(str(error)) from None
        size = site["image_size"]
        sys.stdout.write(
            f"Wrote {output}: {site['bytes'] / 2**20:.1f} MiB ({size}x{size} model "
            f"{site['model_bytes'] / 2**20:.1f} MiB, LiteRT.js "
            f"{site['runtime_bytes'] / 2**20:.1f} MiB).\n"
        )
        if server is None:
            return
        host, port = server.server_address[:2]
        sys.stdout.write(f"Serving on http://{host}:{port}/ (Ctrl-C stops).\n")
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    define_flags()
    app.run(main)
