'use strict';
/**
 * Uniforms that every language lab drives computes bit for bit: u(seed, key, attempt, index).
 *
 * The twin of lab/runtime/portable.py; the spec is docs/reference/portable-random.md and
 * test/vectors.json holds the answers both must give. Philox-2x64-10 (Random123) over
 *
 *   philox key = seed                                (0 <= seed < 2^64)
 *   counter    = (key64(key), attempt * 2^32 + index) (attempt, index < 2^32)
 *   u          = (first output word >> 11) * 2^-53    (0 <= u <= 1 - 2^-53)
 *
 * with BigInt arithmetic, so every step is exact. A seed above 2^53 - 1 must arrive as a
 * BigInt or a decimal string: JSON.parse has already rounded such a number.
 */

const MASK64 = (1n << 64n) - 1n;
const PHILOX_M = 0xd2b74407b1ce6e93n; // Random123's PHILOX_M2x64_0
const PHILOX_W = 0x9e3779b97f4a7c15n; // Random123's PHILOX_W64_0, bumps the key each round
const ROUNDS = 10;
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const SCALE = 2 ** -53;

// Which index each draw of a job uses (the spec lists them too).
const GATE_ATTEMPT = 0; // the permanent-failure gate's stream: attempt 0, which no delivery has
const SERVICE = 0;
const FAIL = 1;
const DOC = 2;
const AGENT_DRAWS = 5; // per step: action, ms, n, word, fail (index 5 * (step - 1) + j)

const encoder = new TextEncoder();

/** FNV-1a, 64 bits, over the bytes `data` (a Uint8Array). */
function fnv1a64(data) {
  let h = FNV_OFFSET;
  for (const byte of data) h = ((h ^ BigInt(byte)) * FNV_PRIME) & MASK64;
  return h;
}

function word64(value, what) {
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= MASK64) return value;
  } else if (typeof value === 'number') {
    // Above 2^53 - 1 a Number is not the integer it was written as: refuse, never round.
    if (Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  } else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) {
    const parsed = BigInt(value);
    if (parsed <= MASK64) return parsed;
  }
  throw new RangeError(
    `${what} is an integer from 0 to 2^64 - 1 (a Number only up to 2^53 - 1), ` +
      `not ${String(value).slice(0, 40)}`,
  );
}

const textKeys = new Map();

/**
 * A job's key as 64 bits: an integer (a run's seq; a Number or a BigInt) as itself, a text (a
 * single job's id) as FNV-1a 64 of its UTF-8 bytes.
 */
function key64(key) {
  if (typeof key === 'string') {
    let found = textKeys.get(key);
    if (found === undefined) {
      // TextEncoder would quietly write U+FFFD for a lone surrogate; Python refuses it too.
      if (!key.isWellFormed()) {
        throw new RangeError('a key must be valid Unicode (it has a lone surrogate)');
      }
      found = fnv1a64(encoder.encode(key));
      if (textKeys.size >= 1024) textKeys.clear();
      textKeys.set(key, found);
    }
    return found;
  }
  if (typeof key === 'number' || typeof key === 'bigint') return word64(key, 'an integer key');
  throw new TypeError(`a key is an integer or a text, not ${typeof key}`);
}

function roundKeys(seed) {
  const keys = new Array(ROUNDS);
  let k = word64(seed, 'a seed');
  for (let i = 0; i < ROUNDS; i += 1) {
    keys[i] = k;
    k = (k + PHILOX_W) & MASK64;
  }
  return keys;
}

function words(c0, c1, keys) {
  for (const k of keys) {
    const product = PHILOX_M * c0;
    const high = product >> 64n;
    [c0, c1] = [high ^ k ^ c1, product & MASK64];
  }
  return [c0, c1];
}

/** Philox-2x64-10 of the counter [c0, c1] (BigInts) under `key`: Random123's philox2x64. */
function philox2x64(c0, c1, key) {
  return words(word64(c0, 'a counter word'), word64(c1, 'a counter word'), roundKeys(key));
}

function small(value, what) {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
    throw new RangeError(`${what} is from 0 to 2^32 - 1, not ${String(value).slice(0, 40)}`);
  }
  return BigInt(value);
}

/**
 * One attempt's uniforms: at(index) by position (what a kind uses), or random() for the next
 * one from index 0 (what a distribution's sample also takes).
 */
class Stream {
  constructor(seed, key, attempt) {
    this.keys = roundKeys(seed);
    this.c0 = key64(key);
    this.high = small(attempt, 'an attempt') << 32n;
    this.next = 0;
  }

  at(index) {
    const [x0] = words(this.c0, this.high | small(index, 'an index'), this.keys);
    return Number(x0 >> 11n) * SCALE;
  }

  random() {
    const index = this.next;
    this.next += 1;
    return this.at(index);
  }
}

/** The uniform at (seed, key, attempt, index): 53 bits, 0 <= u <= 1 - 2^-53. */
function u(seed, key, attempt, index) {
  return new Stream(seed, key, attempt).at(index);
}

module.exports = {
  AGENT_DRAWS,
  DOC,
  FAIL,
  GATE_ATTEMPT,
  MASK64,
  SERVICE,
  Stream,
  fnv1a64,
  key64,
  philox2x64,
  u,
};
