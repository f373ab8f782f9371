// What the page computes besides the model: the training preprocessing, the whole-pixel controls
// of export.litert, the model check and the overlay. No DOM here, so each piece can be checked
// against its Python counterpart.

// TF's antialiased bilinear resize along one axis (tf.image.resize(..., antialias=True), the
// ScaleAndTranslate kernel): for each output index, the input indices it reads and their weights.
function resizeSpans(inSize, outSize) {
  const invScale = inSize / outSize;
  const kernelScale = Math.max(invScale, 1);
  const spans = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * invScale;
    const start = Math.min(Math.max(Math.ceil(center - kernelScale - 0.5), 0), inSize - 1);
    const end = Math.min(Math.max(Math.floor(center + kernelScale - 0.5), 0), inSize - 1) + 1;
    const weights = [];
    let total = 0;
    for (let j = start; j < end; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / kernelScale));
      weights.push(w);
      total += w;
    }
    spans.push({start, weights: total > 1e-4 ? weights.map((w) => w / total) : weights});
  }
  return spans;
}

// RGBA bytes `[height, width, 4]` (opaque: the caller composites over white, as
// fgbg_keras.media.load_image does) -> float32 `[size, size, 3]` in [-1, 1], resized as
// data_pipelines.preprocess.preprocess_frames resizes.
export function preprocess(rgba, width, height, size) {
  const rows = resizeSpans(height, size);
  const cols = resizeSpans(width, size);
  // Columns first, then rows, as two separable passes.
  const tmp = new Float64Array(height * size * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < size; x++) {
      const {start, weights} = cols[x];
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) {
          sum += weights[k] * rgba[(y * width + start + k) * 4 + c];
        }
        tmp[(y * size + x) * 3 + c] = sum;
      }
    }
  }
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const {start, weights} = rows[y];
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) {
          sum += weights[k] * tmp[((start + k) * size + x) * 3 + c];
        }
        out[(y * size + x) * 3 + c] = Math.min(1, Math.max(-1, sum * (1 / 127.5) - 1));
      }
    }
  }
  return out;
}

// The moves a visitor makes add up in model pixels; the model moves masks by whole pixels, so
// each step sends the whole-pixel step of the rounded running sum, as export.litert's
// whole_pixel_steps does: fractions carry over to later steps instead of being lost.
export class Controls {
  constructor() {
    this.reset();
  }

  reset() {
    this.total = [0, 0];
    this.sent = [0, 0];
  }

  add(dx, dy) {
    this.total = [this.total[0] + dx, this.total[1] + dy];
  }

  // The whole-pixel step not yet sent (halves round to even, as numpy's np.round).
  next() {
    return this.total.map((v, i) => roundHalfEven(v) - this.sent[i]);
  }

  // The whole-pixel control of the next step, counted as sent.
  take() {
    const control = this.next();
    this.sent = [this.sent[0] + control[0], this.sent[1] + control[1]];
    return control;
  }

  pending() {
    return this.next().some((v) => v !== 0);
  }
}

export function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// Why a model is not an fgbg step model of the expected size, or null when it is one.
// `inputs`, `outputs`: [{name, shape, dtype}] as LiteRT.js describes them.
export function checkModel(inputs, outputs, expectedSize, label) {
  const byName = {};
  for (const d of inputs) {
    for (const key of ['frame', 'mask', 'control']) {
      if (d.name.includes(key)) byName[key] = d;
    }
  }
  const shape = (d) => (d ? Array.from(d.shape) : []);
  const frame = shape(byName.frame);
  const size = frame.length === 4 ? frame[1] : 0;
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  const ok =
    size > 0 &&
    inputs.length === 3 &&
    same(frame, [1, size, size, 3]) &&
    same(shape(byName.mask), [1, size, size, 1]) &&
    same(shape(byName.control), [1, 2]) &&
    outputs.length === 2 &&
    outputs.some((d) => same(shape(d), [1, size, size, 3])) &&
    outputs.some((d) => same(shape(d), [1, size, size, 1])) &&
    inputs.concat(outputs).every((d) => d.dtype === 'float32');
  if (!ok) {
    const described = inputs.map((d) => `${d.name} [${shape(d)}] ${d.dtype}`).join(', ');
    return (
      `${label} is not a one-step model of export.tflite: it takes ${described || 'no inputs'}; ` +
      'expected float32 frame [1, S, S, 3], mask [1, S, S, 1] and control [1, 2], returning ' +
      'the next frame and mask.'
    );
  }
  if (expectedSize && size !== expectedSize) {
    return (
      `${label} takes ${size}x${size} frames, but this page was built for a ` +
      `${expectedSize}x${expectedSize} model (site.json). Rebuild the page for it: ` +
      'python -m export.web --model=MODEL --output=DIR.'
    );
  }
  return null;
}

// The mask's centroid (x, y) in model pixels, or null for an empty mask.
export function centroid(mask, size) {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] > 0.5) {
      n += 1;
      sx += i % size;
      sy += Math.floor(i / size);
    }
  }
  return n ? [sx / n, sy / n] : null;
}

// A frame in [-1, 1] `[size, size, 3]` as RGBA bytes, tinted by its mask as
// fgbg_keras.media.overlay tints it (red, alpha 0.55) when `tint` is set.
export function toRgba(frame, mask, size, tint) {
  const color = [1.0, 0.15, 0.15];
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    const w = tint && mask && mask[i] > 0.5 ? 0.55 : 0;
    for (let c = 0; c < 3; c++) {
      const value = ((frame[i * 3 + c] + 1) / 2) * (1 - w) + color[c] * w;
      rgba[i * 4 + c] = Math.round(Math.min(1, Math.max(0, value)) * 255);
    }
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}
