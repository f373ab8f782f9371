// The page: loads LiteRT.js and the one-step model of export.tflite, finds the object in an
// image, and draws a frame for each move the visitor makes. See export/web.py.
import {centroid, checkModel, Controls, preprocess, toRgba} from './fgbg.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// LiteRT.js, imported by loadRuntime so that a browser that cannot load it gets a message.
let litert = null;

const state = {
  model: null,
  size: 0,
  first: null, // {frame, mask}: the image and the mask the model found in it
  frame: null,
  mask: null,
  history: [], // [{frame, mask}], the first frame first
  controls: new Controls(),
  moves: [], // arrow, button and play moves waiting, one frame each
  drag: [0, 0], // dragged model pixels not yet sent
  lastMove: [0, 0],
  busy: false,
  epoch: 0, // counts resets: a step that was running during one is dropped
  playing: false,
  times: [],
  stamps: [], // when each frame was drawn (performance.now), for the frames per second shown
  firstMs: null,
};

class PageError extends Error {}

function fail(message) {
  state.playing = false;
  $('error').textContent = message;
  $('error').hidden = false;
  $('status').textContent = '';
  document.body.dataset.state = 'error';
}

function status(message) {
  $('status').textContent = message;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new PageError(`Cannot fetch ${what} ${url}: ${error.message}`);
  }
  if (!response.ok) {
    throw new PageError(`Cannot fetch ${what} ${url}: HTTP ${response.status}.`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function loadRuntime() {
  if (typeof WebAssembly !== 'object') {
    throw new PageError(
      'This browser cannot run LiteRT.js: it has no WebAssembly. Try a recent Chrome, Edge, ' +
        'Firefox or Safari.'
    );
  }
  try {
    litert = await import('@litertjs/core');
    // The threaded build needs SharedArrayBuffer, which a cross-origin-isolated page has
    // (export.web --serve sends the COOP/COEP headers), and relaxed SIMD.
    const threads =
      self.crossOriginIsolated &&
      navigator.hardwareConcurrency > 1 &&
      (await litert.supportsFeature('relaxedSimd'));
    await litert.loadLiteRt('./runtime/litertjs/core/wasm/', {threads});
    return threads;
  } catch (error) {
    throw new PageError(`This browser cannot run LiteRT.js: ${error.message}`);
  }
}

async function loadModel(bytes, label, expectedSize) {
  const options = {accelerator: 'wasm'};
  const threads = Math.min(navigator.hardwareConcurrency || 1, 4);
  if (state.threaded) options.cpuOptions = {numThreads: threads};
  let model;
  try {
    model = await litert.loadAndCompile(bytes, options);
  } catch (error) {
    throw new PageError(`${label} is not a TFLite model that LiteRT.js can load: ${error.message}`);
  }
  const describe = (details) =>
    details.map((d) => ({name: d.name, shape: Array.from(d.shape), dtype: d.dtype}));
  const problem = checkModel(
    describe(model.getInputDetails()),
    describe(model.getOutputDetails()),
    expectedSize,
    label
  );
  if (problem) {
    model.delete();
    throw new PageError(problem);
  }
  if (state.model) state.model.delete();
  state.model = model;
  state.size = model.getInputDetails().find((d) => d.name.includes('frame')).shape[1];
  const cpu = state.threaded ? `${threads} threads` : 'one thread';
  $('backend').textContent = `WebAssembly (XNNPACK), ${cpu}`;
}

// An image (URL or File) as float32 [S, S, 3] in [-1, 1], composited over white and resized as
// the training preprocessing does; says so on the page when it was resized.
async function loadImage(source, label) {
  const blob = source instanceof Blob ? source : new Blob([await fetchBytes(source, 'the image')]);
  let bitmap;
  try {
    // Raw pixels, as PIL reads them: no colour-space conversion, no premultiplied alpha.
    bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    });
  } catch (error) {
    throw new PageError(`${label} cannot be read as an image: ${error.message}`);
  }
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.fillStyle = 'white';
  context.fillRect(0, 0, bitmap.width, bitmap.height);
  context.drawImage(bitmap, 0, 0);
  const pixels = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const size = state.size;
  $('note').textContent =
    bitmap.width === size && bitmap.height === size
      ? `${label}, ${size}x${size}.`
      : `${label} is ${bitmap.width}x${bitmap.height}; the model takes ${size}x${size} ` +
        `frames, so it was resized to ${size}x${size}.`;
  state.image = {pixels, width: bitmap.width, height: bitmap.height, label};
  return preprocess(pixels, bitmap.width, bitmap.height, size);
}

// One step of the model: the next frame and mask, and the milliseconds it took.
async function runStep(frame, mask, control) {
  const size = state.size;
  const values = {frame, mask, control: new Float32Array(control)};
  const shapes = {frame: [1, size, size, 3], mask: [1, size, size, 1], control: [1, 2]};
  const inputs = {};
  let outputs;
  try {
    for (const d of state.model.getInputDetails()) {
      const key = ['frame', 'mask', 'control'].find((k) => d.name.includes(k));
      inputs[d.name] = new litert.Tensor(values[key], shapes[key]);
    }
    const start = performance.now();
    outputs = await state.model.run(inputs);
    const result = {};
    for (const tensor of Object.values(outputs)) {
      const cpu = tensor.accelerator === 'wasm' ? tensor : await tensor.copyTo('wasm');
      const array = cpu.toTypedArray().slice();
      result[array.length === size * size * 3 ? 'frame' : 'mask'] = array;
      if (cpu !== tensor) cpu.delete();
    }
    result.ms = performance.now() - start;
    return result;
  } finally {
    for (const tensor of Object.values(inputs)) tensor.delete();
    for (const tensor of Object.values(outputs || {})) tensor.delete();
  }
}

function render() {
  const canvas = $('view');
  const size = state.size;
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  const rgba = toRgba(state.frame, state.mask, size, $('tint').checked);
  canvas.getContext('2d').putImageData(new ImageData(rgba, size, size), 0, 0);
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
  // Frames per second as drawn: the median gap between the last 30 frames (pauses between a
  // visitor's moves are outliers the median ignores).
  const stamps = state.stamps.slice(-31);
  const gaps = stamps.slice(1).map((t, i) => t - stamps[i]);
  $('ms').textContent = state.times.length
    ? `${state.times.at(-1).toFixed(1)} ms model (median ${median(state.times).toFixed(1)} ms` +
      ` over ${state.times.length})` +
      (gaps.length ? `, ${(1000 / median(gaps)).toFixed(1)} frames/s drawn` : '')
    : '–';
  $('first-ms').textContent =
    state.firstMs === null ? '–' : `${state.firstMs.toFixed(1)} ms (with the mask network)`;
  $('frames').textContent = String(state.history.length - 1);
  $('play').textContent = state.playing ? 'Stop' : 'Play';
}

// Finds the object in the image: one step with an empty mask and no motion.
async function start(frame) {
  stop();
  $('error').hidden = true;
  const size = state.size;
  const result = await runStep(frame, new Float32Array(size * size), [0, 0]);
  state.firstMs = result.ms;
  state.first = {frame, mask: result.mask};
  state.times = [];
  state.stamps = [];
  reset();
  if (!centroid(result.mask, size)) {
    status('The model finds no object in this image: the moves will not change it.');
  } else {
    status('Drag the object, or use the arrow keys.');
  }
  document.body.dataset.state = 'ready';
}

function reset() {
  state.epoch += 1;
  state.playing = false;
  state.moves = [];
  state.drag = [0, 0];
  state.controls.reset();
  state.frame = state.first.frame;
  state.mask = state.first.mask;
  state.history = [state.first];
  render();
}

function stop() {
  state.playing = false;
  state.moves = [];
}

// Runs the waiting moves one frame at a time; a drag sends a step once it adds up to a whole
// pixel; in play mode the last move repeats.
async function pump() {
  if (state.busy || !state.model) return;
  state.busy = true;
  document.body.dataset.busy = 'true';
  try {
    for (;;) {
      let move;
      let dragged = false;
      if (state.moves.length) {
        move = state.moves.shift();
      } else if (state.drag[0] || state.drag[1]) {
        move = state.drag;
        state.drag = [0, 0];
        dragged = true;
      } else if (state.playing) {
        move = state.lastMove;
      } else {
        break;
      }
      state.controls.add(move[0], move[1]);
      if (dragged && !state.controls.pending()) continue;
      const control = state.controls.take();
      if (dragged) state.lastMove = control;
      const epoch = state.epoch;
      const result = await runStep(state.frame, state.mask, control);
      if (epoch !== state.epoch) continue; // reset (or a new image) while it ran
      state.times.push(result.ms);
      state.frame = result.frame;
      state.mask = result.mask;
      state.history.push({frame: result.frame, mask: result.mask});
      state.stamps.push(performance.now());
      render();
      // Lets the page paint and take input before the next frame: a task, not an animation
      // frame (which caps the rate near half the display's when a step takes longer than a
      // frame), and by a message, which browsers do not delay as they delay nested timeouts.
      await nextTask();
    }
  } catch (error) {
    fail(`The model failed on a step: ${error.message}`);
  } finally {
    state.busy = false;
    document.body.dataset.busy = 'false';
  }
}

function nextTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function move(dx, dy) {
  if (!state.first) return;
  const step = Number($('step').value) || 1;
  state.lastMove = [dx * step, dy * step];
  state.moves.push(state.lastMove);
  pump();
}

function bindInput() {
  const keys = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
  document.addEventListener('keydown', (event) => {
    // Arrow keys change the step box while it has the focus.
    if (!(event.key in keys) || event.target === $('step')) return;
    event.preventDefault();
    // A held key repeats only as fast as frames are drawn.
    if (event.repeat && state.moves.length) return;
    move(...keys[event.key]);
  });
  for (const button of document.querySelectorAll('.arrows button')) {
    const {dx, dy} = button.dataset;
    button.addEventListener('click', () => move(Number(dx), Number(dy)));
  }
  const canvas = $('view');
  let pointer = null;
  canvas.addEventListener('pointerdown', (event) => {
    if (!state.first) return;
    canvas.setPointerCapture(event.pointerId);
    pointer = [event.clientX, event.clientY];
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!pointer) return;
    // Screen pixels to model pixels.
    const scale = state.size / canvas.clientWidth;
    state.drag = [
      state.drag[0] + (event.clientX - pointer[0]) * scale,
      state.drag[1] + (event.clientY - pointer[1]) * scale,
    ];
    pointer = [event.clientX, event.clientY];
    pump();
  });
  const release = () => {
    pointer = null;
  };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  // Enter in the step box hands the arrow keys back to the object.
  $('step').addEventListener('change', () => $('step').blur());
  $('play').addEventListener('click', () => {
    if (!state.first) return;
    state.playing = !state.playing;
    render();
    if (state.playing) pump();
  });
  $('reset').addEventListener('click', () => state.first && reset());
  $('tint').addEventListener('change', () => state.first && render());
  $('gif').addEventListener('click', () => state.first && guarded(downloadGif));
  $('webm').addEventListener('click', () => state.first && guarded(downloadWebm));
  $('image-file').addEventListener('change', (event) => {
    const file = event.target.files[0];
    if (!file || !state.model) return;
    guarded(async () => {
      await settle();
      await start(await loadImage(file, file.name));
    });
  });
  $('model-file').addEventListener('change', (event) => {
    const file = event.target.files[0];
    if (!file) return;
    guarded(async () => {
      await settle();
      await loadModel(new Uint8Array(await file.arrayBuffer()), file.name, null);
      if (!state.image) return; // no image yet: pick one
      const {pixels, width, height, label} = state.image;
      await start(preprocess(pixels, width, height, state.size));
      $('note').textContent = `${label}, resized for ${file.name} (${state.size}x${state.size}).`;
    });
  });
}

// Stops play and waits for the step that is running, before the model or image changes.
async function settle() {
  stop();
  state.epoch += 1;
  while (state.busy) await new Promise((resolve) => setTimeout(resolve, 10));
}

// The session's frames (the first one included) as RGBA at `scale` times the model's size.
function sessionFrames(scale) {
  const size = state.size;
  const out = size * scale;
  const tint = $('tint').checked;
  return state.history.map(({frame, mask}) => {
    const rgba = toRgba(frame, mask, size, tint);
    const big = new Uint8ClampedArray(out * out * 4);
    for (let y = 0; y < out; y++) {
      for (let x = 0; x < out; x++) {
        const from = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 4;
        big.set(rgba.subarray(from, from + 4), (y * out + x) * 4);
      }
    }
    return {rgba: big, size: out};
  });
}

function save(blob, name) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function downloadGif() {
  const {GIFEncoder, quantize, applyPalette} = await import('gifenc');
  const gif = GIFEncoder();
  for (const {rgba, size} of sessionFrames(Math.max(1, Math.round(256 / state.size)))) {
    const palette = quantize(rgba, 256);
    gif.writeFrame(applyPalette(rgba, palette), size, size, {palette, delay: 100});
  }
  gif.finish();
  save(new Blob([gif.bytes()], {type: 'image/gif'}), 'fgbg.gif');
}

// WebM through MediaRecorder, at 10 frames a second (it records in real time).
async function downloadWebm() {
  if (typeof MediaRecorder === 'undefined' || !MediaRecorder.isTypeSupported('video/webm')) {
    throw new PageError('This browser cannot record WebM (MediaRecorder); download the GIF.');
  }
  const frames = sessionFrames(Math.max(1, Math.round(256 / state.size)));
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = frames[0].size;
  const context = canvas.getContext('2d');
  const recorder = new MediaRecorder(canvas.captureStream(10), {mimeType: 'video/webm'});
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const done = new Promise((resolve) => (recorder.onstop = resolve));
  recorder.start();
  for (const {rgba, size} of frames) {
    context.putImageData(new ImageData(rgba, size, size), 0, 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  recorder.stop();
  await done;
  save(new Blob(chunks, {type: 'video/webm'}), 'fgbg.webm');
}

async function guarded(action) {
  try {
    await action();
  } catch (error) {
    fail(error instanceof PageError ? error.message : `Unexpected error: ${error.stack || error}`);
  }
}

// For tests and benchmarks (tests/test_web.py, benchmarks/web.py): the page's state.
window.fgbg = {
  state,
  idle: async () => {
    while (state.busy || state.moves.length) await new Promise((r) => setTimeout(r, 10));
  },
  centroid: () => centroid(state.mask, state.size),
};

window.fgbg.ready = guarded(async () => {
  // Bound first, so that after an error the visitor can still pick another model or image.
  bindInput();
  const site = JSON.parse(new TextDecoder().decode(await fetchBytes('site.json', 'the manifest')));
  state.threaded = await loadRuntime();
  const modelUrl = params.get('model') || site.model;
  // A model named in the URL (?model=) may be of any size; the site's own must be site.json's.
  const expectedSize = params.get('model') ? null : site.image_size;
  await loadModel(await fetchBytes(modelUrl, 'the model'), modelUrl, expectedSize);
  const imageUrl = params.get('image') || site.image;
  await start(await loadImage(imageUrl, imageUrl));
});
