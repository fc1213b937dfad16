// Thin QR: orthonormal q, Σ r q reproducing every column, and a column that is a combination of
// earlier ones (here exactly, and to rounding) adding no direction.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SeededRandom } from '../util/seededRandom.ts';
import { thinQr } from './qr.ts';

test('thin QR reproduces the columns with orthonormal q and drops dependent columns', () => {
  const rng = new SeededRandom(11);
  const length = 40;
  const base = Array.from({ length: 5 }, () => Float64Array.from({ length }, () => rng.next() * 2 - 1));
  // nearly parallel columns are where a single Gram–Schmidt pass loses orthogonality
  const nearly = base[0]!.map((x, i) => x + 1e-7 * base[4]![i]!);
  const columns = [base[0]!, base[1]!, base[0]!.map((x, i) => 2 * x - 3 * base[1]![i]!), nearly, base[2]!, base[3]!, base[2]!.map((x) => -x)];
  const { q, r } = thinQr(columns);
  assert.equal(q.length, 5, 'the exact combinations add no q; the nearly parallel column does');
  assert.equal(r.rows, 5);
  assert.equal(r.cols, columns.length);
  for (let i = 0; i < q.length; i++) {
    for (let j = 0; j < q.length; j++) {
      const d = q[i]!.reduce((s, x, k) => s + x * q[j]![k]!, 0);
      assert.ok(Math.abs(d - (i === j ? 1 : 0)) < 1e-12, `q${i}·q${j} = ${d}`);
    }
  }
  columns.forEach((c, j) => {
    for (let k = 0; k < length; k++) {
      const rebuilt = q.reduce((s, qi, i) => s + r.data[i * r.cols + j]! * qi[k]!, 0);
      assert.ok(Math.abs(rebuilt - c[k]!) < 1e-12 * (1 + Math.abs(c[k]!)), `column ${j}[${k}]: ${rebuilt} vs ${c[k]}`);
    }
  });
  assert.deepEqual(thinQr([]).q, []);
  assert.equal(thinQr([new Float64Array(3)]).q.length, 0, 'a zero column has no direction');
});
