'use strict';
// JavaScript against the answers lab's Python gives (vectors.json, written by
// scripts/portable_vectors.py): uniforms bit for bit, transcendental quantiles within 1e-12.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');

const portable = require('../lib/portable');
const distributions = require('../lib/distributions');
const { KINDS, PayloadError, round3, roundEven, step } = require('../lib/kinds');

const V = JSON.parse(fs.readFileSync(path.join(__dirname, 'vectors.json'), 'utf8'));
const RELATIVE = 1e-12;

function close(actual, expected, what) {
  const scale = Math.max(Math.abs(actual), Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= RELATIVE * scale, `${what}: ${actual} vs ${expected}`);
}

const hex = (x) => x.toString(16).padStart(16, '0');

test("Philox-2x64-10 gives Random123's known answers", () => {
  for (const { counter, key, out } of V.philox2x64_10) {
    const [c0, c1, k] = [counter[0], counter[1], key].map((h) => BigInt(`0x${h}`));
    const got = portable.philox2x64(c0, c1, k);
    assert.deepEqual(got.map(hex), out);
  }
});

test('a text key is FNV-1a 64 of its UTF-8 bytes, as Python hashes it', () => {
  for (const { text, hash } of V.fnv1a64) assert.equal(hex(portable.key64(text)), hash, text);
  assert.throws(() => portable.key64('lone \ud800 surrogate'), /valid Unicode/);
});

test('every uniform is bit-identical to Python, seeds and keys past 2^53 included', () => {
  assert.ok(V.uniforms.length >= 200);
  for (const c of V.uniforms) {
    const key = c.keyType === 'int' ? BigInt(c.key) : c.key;
    const seed = BigInt(c.seed);
    const counter = (BigInt(c.attempt) << 32n) | BigInt(c.index);
    const [x0] = portable.philox2x64(portable.key64(key), counter, seed);
    assert.equal(hex(x0), c.x0, JSON.stringify(c));
    const u = portable.u(c.seed, key, c.attempt, c.index);
    assert.ok(Object.is(u, c.u) && u === Number(c.bits) * 2 ** -53, JSON.stringify(c));
    assert.ok(u >= 0 && u < 1);
  }
});

test('a stream reads its indices in order, and refuses what it cannot read exactly', () => {
  const stream = new portable.Stream(42, 7, 1);
  const first = [stream.random(), stream.random(), stream.random()];
  assert.deepEqual(first, [0, 1, 2].map((i) => portable.u(42, 7, 1, i)));
  assert.throws(() => portable.u(2 ** 53, 0, 1, 0), /2\^53/); // already rounded by JSON.parse
  assert.throws(() => portable.u(-1, 0, 1, 0), RangeError);
  assert.throws(() => portable.u(0, 1.5, 1, 0), RangeError);
  assert.throws(() => portable.u(0, 0, 2 ** 32, 0), RangeError);
  assert.throws(() => portable.u(0, {}, 1, 0), TypeError);
});

test("the normal quantile and Z99 are Python's", () => {
  assert.ok(Object.is(distributions.Z99, V.z99));
  for (const [p, z] of V.normalInvCdf) close(distributions.normalInvCdf(p), z, `p=${p}`);
});

test('every quantile matches Python: exact without a logarithm, within 1e-12 with one', () => {
  for (const c of V.quantiles) {
    const dist = distributions.parse(c.spec, c.high);
    for (const [u, value] of c.at) {
      const got = dist.sample(u);
      const what = `${JSON.stringify(c.spec)} at ${u}`;
      if (c.exact) assert.ok(Object.is(got, value), `${what}: ${got} vs ${value}`);
      else close(got, value, what);
    }
    close(dist.mean(), c.mean, `${JSON.stringify(c.spec)} mean`);
  }
});

test('what Python refuses, JavaScript refuses with the same words', () => {
  for (const c of V.refused) {
    assert.throws(() => distributions.parse(c.spec, c.high), (error) => {
      assert.ok(error instanceof distributions.DistributionError);
      assert.equal(error.field, c.field);
      assert.equal(error.message, c.message);
      return true;
    });
  }
  for (const c of V.refusedPayloads) {
    assert.throws(() => KINDS[c.kind].check(c.payload), (error) => {
      assert.ok(error instanceof PayloadError, `${c.kind} ${JSON.stringify(c.payload)}: ${error}`);
      assert.equal(error.field, c.field, error.message);
      return true;
    });
  }
});

test('the synthetic kind fails the same jobs, on the same attempts, as Python', () => {
  let failing = 0;
  for (const c of V.synthetic) {
    const drawn = KINDS.synthetic.draw({ ...c.payload, seed: c.seed }, c.key, c.attempt);
    const what = JSON.stringify([c.payload, c.seed, c.key, c.attempt]);
    assert.equal(drawn.permanent, c.drawn.permanent, what);
    assert.equal(drawn.fails, c.drawn.fails, what);
    assert.equal(drawn.docBytes, c.drawn.docBytes, what);
    if (c.exact) assert.ok(Object.is(drawn.serviceMs, c.drawn.serviceMs), what);
    else close(drawn.serviceMs, c.drawn.serviceMs, what);
    failing += drawn.permanent || drawn.fails;
  }
  assert.ok(failing > 50, `only ${failing} failing draws: the vectors would not show a difference`);
});

test('the agent tells the same story, step by step, as Python', () => {
  for (const c of V.agent) {
    c.steps.forEach(([label, line, chance], i) => {
      const got = step(c.jobId, c.attempt, i + 1, 'https://example.com/');
      assert.deepEqual(got, [label, line, chance]);
    });
  }
});

test("rounding for the document is Python's round", () => {
  for (const [x, r] of V.round3) {
    assert.ok(Object.is(round3(x), r), `round3(${x}) = ${round3(x)}, not ${r}`);
  }
  for (const [x, r] of V.roundEven) assert.equal(roundEven(x), r, `round(${x})`);
});
