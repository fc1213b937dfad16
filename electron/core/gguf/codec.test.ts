// The addon's encode/decode must produce exactly what ggml stores; checked against
// independent reimplementations of the F16 and Q8_0 formats.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import { SeededRandom } from '../util/seededRandom.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

/** IEEE half precision, round to nearest even, as a float32 value. */
function roundToHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const sign = Math.sign(x);
  const a = Math.abs(x);
  if (a >= 65520) return sign * Infinity;
  const exponent = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (exponent - 10);
  let q = a / ulp;
  const floor = Math.floor(q);
  const frac = q - floor;
  q = frac > 0.5 || (frac === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return sign * q * ulp;
}

test('f16 encoding rounds like IEEE half precision', () => {
  const values = new SeededRandom(1).fill(4096, 3);
  values[0] = 1e-6;
  values[1] = 70000;
  values[2] = -0.333333;
  const decoded = native.decode(native.encode(values, 'f16'), 'f16', values.length);
  for (let i = 0; i < values.length; i++) {
    assert.equal(decoded[i], Math.fround(roundToHalf(values[i]!)), `value ${values[i]}`);
  }
});

test('q8_0 stores a half-precision scale per 32 values and rounded multiples of it', () => {
  const values = new SeededRandom(2).fill(32 * 64, 0.5);
  const bytes = native.encode(values, 'q8_0');
  assert.equal(bytes.length, 64 * 34);
  const decoded = native.decode(bytes, 'q8_0', values.length);
  for (let block = 0; block < 64; block++) {
    const slice = values.subarray(block * 32, block * 32 + 32);
    const amax = Math.max(...slice.map(Math.abs));
    // ggml computes in float32 and rounds half away from zero (roundf).
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const scale = roundToHalf(d);
    for (let i = 0; i < 32; i++) {
      const x = Math.fround(slice[i]! * id);
      const q = Math.sign(x) * Math.floor(Math.abs(x) + 0.5) + 0; // an int8 has no negative zero
      assert.equal(decoded[block * 32 + i], Math.fround(q * scale), `block ${block} item ${i}`);
    }
  }
});

test('types are named and described like ggml does', () => {
  assert.deepEqual(native.typeInfo('Q4_K'), { id: 12, name: 'q4_K', blockSize: 256, typeSize: 144, quantized: true, canEncode: true });
  assert.equal(native.typeInfo('f32').blockSize, 1);
  assert.throws(() => native.typeInfo('q9_9'), /unknown tensor type 'q9_9'/);
});
