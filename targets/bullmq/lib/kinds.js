'use strict';
/**
 * lab's four job kinds in JavaScript, the twins of workers/{sleep,index,synthetic,agent}.py:
 * the same fields and bounds, the same draws from the portable generator (so the same run
 * fails the same jobs in Node and in Python), the same failures.
 *
 *   const { KINDS } = require('./kinds');
 *   const kind = KINDS[job.kind];
 *   const result = await kind.run(job, { progress: (percent, step, line) => {} });
 *
 * `job` is lab's job message ({jobId, runId, seq, kind, attempt, createdAt, payload}); `run`
 * checks the payload first. What it throws says what the worker does with the attempt: a
 * PermanentError (PayloadError among them) is dead-lettered at once, anything else retried.
 */

const portable = require('./portable');
const distributions = require('./distributions');

const MAX_ATTEMPT = 10000;
const MAX_SEED = 2n ** 63n - 1n;

/** A failure no retry can mend: dead-letter it at once (BullMQ: UnrecoverableError). */
class PermanentError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PermanentError';
  }
}

/** A payload field a kind cannot use; `field` names it. */
class PayloadError extends PermanentError {
  constructor(field, message) {
    super(field ? `payload.${field}: ${message}` : `payload: ${message}`);
    this.name = 'PayloadError';
    this.field = field;
  }
}

/** A failure the payload asked for (retried like any other). */
class InjectedFailure extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
class SyntheticFailure extends InjectedFailure {}
class AgentFailure extends InjectedFailure {}

function isPermanent(error) {
  return error instanceof PermanentError;
}

/** Python's round(x, 3) for 0 <= x < 2^40: the decimal nearest x's exact value, a tie to even. */
function round3(x) {
  const scaled = x * 1000; // exact when x has at most four binary places: only then a tie
  if (Number.isInteger(x * 16) && Math.abs(scaled % 1) === 0.5) {
    const down = Math.floor(scaled);
    return (down % 2 === 0 ? down : down + 1) / 1000;
  }
  return Number(x.toFixed(3)); // exact value (toFixed breaks only exact ties, upwards)
}

/** Python's round(x) for x >= 0: a tie to even. */
function roundEven(x) {
  const r = Math.round(x);
  return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function field(name, type, options = {}) {
  return { name, type, default: undefined, low: null, high: null, maxLength: null, ...options };
}

function bounds(f) {
  if (f.low !== null && f.high !== null) return `from ${f.low} to ${f.high}`;
  return f.low !== null ? `at least ${f.low}` : `at most ${f.high}`;
}

const TYPES = {
  number: (v) => typeof v === 'number',
  integer: (v) => Number.isInteger(v),
  string: (v) => typeof v === 'string',
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  any: () => true,
};

const NAMES = {
  number: 'a number', integer: 'a whole number', string: 'a string', object: 'a JSON object',
};

function shown(value) {
  let text;
  try {
    text = String(JSON.stringify(value)); // a BigInt has no JSON form: said as itself
  } catch {
    text = String(value);
  }
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

function read(f, value) {
  if (value === undefined || value === null) return f.default;
  if (!TYPES[f.type](value)) {
    throw new PayloadError(f.name, `must be ${NAMES[f.type]}, got ${shown(value)}`);
  }
  if (f.type === 'number' || f.type === 'integer') {
    if (!Number.isFinite(value)) {
      throw new PayloadError(f.name, `must be a finite number ${bounds(f)}`);
    }
    if ((f.low !== null && value < f.low) || (f.high !== null && value > f.high)) {
      throw new PayloadError(f.name, `must be ${bounds(f)}, got ${shown(value)}`);
    }
  }
  if (f.type === 'string' && f.maxLength !== null && [...value].length > f.maxLength) {
    throw new PayloadError(f.name, `must be at most ${f.maxLength} characters`);
  }
  return value;
}

/** A seed as Python reads it, exactly: a Number up to 2^53 - 1, a BigInt or a decimal text. */
function readSeed(value) {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new PayloadError(
      'seed',
      'above 2^53 - 1 a JSON number has lost digits in JavaScript; ' +
        'send it as a BigInt or a decimal text',
    );
  }
  let seed;
  if (typeof value === 'bigint') seed = value;
  else if (typeof value === 'string' && /^[0-9]{1,19}$/.test(value)) seed = BigInt(value);
  else if (Number.isSafeInteger(value)) seed = BigInt(value);
  if (seed === undefined || seed < 0n || seed > MAX_SEED) {
    throw new PayloadError('seed', `must be a whole number from 0 to ${MAX_SEED}`);
  }
  return seed;
}

/** The payload's settings, every field checked and defaulted (unknown fields refused). */
function check(payload, fields, kind) {
  if (!TYPES.object(payload)) throw new PayloadError('', 'must be a JSON object');
  const declared = new Map(fields.map((f) => [f.name, f]));
  const unknown = Object.keys(payload).filter((k) => !declared.has(k)).sort();
  if (unknown.length) {
    throw new PayloadError(unknown[0].slice(0, 64), `is not a setting of the ${kind} kind`);
  }
  const settings = {};
  for (const f of fields) {
    settings[f.name] = f.name === 'seed' ? readSeed(payload.seed) : read(f, payload[f.name]);
  }
  return settings;
}

/** A value as JSON text; what has none (a BigInt, a cycle: only a JavaScript caller) is refused. */
function json(value, name) {
  try {
    return String(JSON.stringify(value));
  } catch {
    throw new PayloadError(name, 'must be a JSON value');
  }
}

/**
 * At least `ms` as `performance.now()` measures it, as Python's `time.sleep` is: Node's timers
 * run on the event loop's cached millisecond clock and can fire up to a millisecond early on
 * this one (5 ms asked, 4.39 ms taken once).
 */
async function sleepMs(ms) {
  const end = performance.now() + Math.max(0, ms);
  for (let left = ms; left > 0; left = end - performance.now()) {
    await new Promise((resolve) => setTimeout(resolve, left));
  }
}

// --- sleep -------------------------------------------------------------------------------

const sleep = {
  batchable: false,
  fields: [field('seconds', 'number', { default: 1.0, low: 0, high: 60 })],
  check(payload) {
    return check(payload, this.fields, 'sleep');
  },
  async run(job, ctx = {}) {
    const { seconds } = this.check(job.payload ?? {});
    const started = Date.now();
    await (ctx.sleep ?? sleepMs)(seconds * 1000);
    return { startedMs: started, endedMs: Date.now() };
  },
};

// --- index -------------------------------------------------------------------------------

const MAX_DATA_BYTES = 16 * 1024;
const MAX_DATA_DEPTH = 8;
const MAX_DATA_KEYS = 100;

function shape(value) {
  // Depth and key count of a JSON value, one pass (a list or object is one level).
  let keys = 0;
  let deepest = 0;
  const stack = [[value, 0]];
  while (stack.length) {
    const [item, level] = stack.pop();
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, level + 1);
    const children = Array.isArray(item) ? item : Object.values(item);
    if (!Array.isArray(item)) keys += children.length;
    for (const child of children) stack.push([child, level + 1]);
  }
  return { keys, deepest };
}

const index = {
  batchable: true,
  fields: [field('failAttempts', 'integer', { low: 0, high: MAX_ATTEMPT }), field('data', 'any')],
  check(payload) {
    const settings = check(payload, this.fields, 'index');
    if (settings.data === undefined) return settings;
    // Measured compactly (Python counts its default `json.dumps` spacing): near the limit a
    // payload lab's door refused cannot reach a worker anyway.
    if (json(settings.data, 'data').length > MAX_DATA_BYTES) {
      throw new PayloadError('data', `is larger than ${MAX_DATA_BYTES} bytes`);
    }
    const { keys, deepest } = shape(settings.data);
    if (deepest > MAX_DATA_DEPTH) {
      throw new PayloadError('data', `nests deeper than ${MAX_DATA_DEPTH} levels`);
    }
    if (keys > MAX_DATA_KEYS) throw new PayloadError('data', `has more than ${MAX_DATA_KEYS} keys`);
    return settings;
  },
  async run(job) {
    const { failAttempts, data } = this.check(job.payload ?? {});
    if (failAttempts !== undefined && job.attempt <= failAttempts) {
      throw new InjectedFailure(`injected failure on attempt ${job.attempt} of ${failAttempts}`);
    }
    return data === undefined ? {} : { data };
  },
};

// --- synthetic -----------------------------------------------------------------------------

const MAX_SERVICE_MS = 600000;
const MAX_DOC_BYTES = 512 * 1024;
const parsed = new Map(); // one parse per distinct spec, as Python's lru_cache

function distribution(payload, name, high, fallback) {
  // As Python reads it: absent takes the default, anything else (null too) is parsed.
  const spec = Object.hasOwn(payload, name) ? payload[name] : fallback;
  const key = `${high}:${json(spec, name)}`;
  let found = parsed.get(key);
  if (found === undefined) {
    try {
      found = distributions.parse(spec, high);
    } catch (error) {
      if (!(error instanceof distributions.DistributionError)) throw error;
      const message = error.field ? error.message.slice(error.field.length + 2) : error.message;
      throw new PayloadError(error.field ? `${name}.${error.field}` : name, message);
    }
    if (parsed.size >= 256) parsed.clear();
    parsed.set(key, found);
  }
  return found;
}

const synthetic = {
  batchable: false,
  fields: [
    field('serviceMs', 'object', { default: { dist: 'fixed', value: 50 } }),
    field('cpuShare', 'number', { default: 0.0, low: 0, high: 1 }),
    field('failRate', 'number', { default: 0.0, low: 0, high: 1 }),
    field('permanentFailRate', 'number', { default: 0.0, low: 0, high: 1 }),
    field('docBytes', 'object', { default: { dist: 'fixed', value: 0 } }),
    field('seed', 'integer', { default: 0, low: 0 }),
  ],
  check(payload) {
    const s = check(payload, this.fields, 'synthetic');
    s.service = distribution(payload, 'serviceMs', MAX_SERVICE_MS, this.fields[0].default);
    s.size = distribution(payload, 'docBytes', MAX_DOC_BYTES, this.fields[4].default);
    return s;
  },
  /** What attempt `attempt` of job `key` (its seq, or a single job's id) does: pure. */
  draw(payload, key, attempt) {
    return drawn(this.check(payload), key, attempt);
  },
  async run(job, ctx = {}) {
    const s = this.check(job.payload ?? {});
    const d = drawn(s, job.seq ?? job.jobId, job.attempt);
    if (d.permanent) throw new PermanentError('synthetic: fails for good (permanentFailRate)');
    const started = performance.now();
    await work(d.serviceMs, s.cpuShare, ctx.sleep ?? sleepMs);
    const tookMs = performance.now() - started;
    if (d.fails) throw new SyntheticFailure(`synthetic: attempt ${job.attempt} fails (failRate)`);
    return { serviceMs: round3(d.serviceMs), tookMs: round3(tookMs), pad: 'x'.repeat(d.docBytes) };
  },
};

/** Each draw has its own index (docs/reference/portable-random.md): one skipped shifts none. */
function drawn(s, key, attempt) {
  // The gate has a stream of its own (attempt 0), drawn on the first attempt only.
  const gate = new portable.Stream(s.seed, key, portable.GATE_ATTEMPT);
  const stream = new portable.Stream(s.seed, key, attempt);
  return {
    permanent: attempt === 1 && s.permanentFailRate > 0 && gate.at(0) < s.permanentFailRate,
    serviceMs: s.service.sample(stream.at(portable.SERVICE)),
    fails: s.failRate > 0 && stream.at(portable.FAIL) < s.failRate,
    docBytes: Math.trunc(s.size.sample(stream.at(portable.DOC))),
  };
}

/** `cpuShare` of the time on the CPU (a busy loop: it holds Node's one thread), the rest waits. */
async function work(serviceMs, cpuShare, wait) {
  const cpuMs = serviceMs * cpuShare;
  if (cpuMs > 0) {
    const end = performance.now() + cpuMs;
    while (performance.now() < end) {
      // busy on purpose
    }
  }
  const waitMs = serviceMs - cpuMs;
  if (waitMs > 0) await wait(waitMs);
}

// --- agent ---------------------------------------------------------------------------------

const ACTIONS = [
  ['Navigating to page', 'opened {url}'],
  ['Waiting for page load', 'DOMContentLoaded after {ms} ms'],
  ['Clicking button', 'clicked button#{word}'],
  ['Typing text', 'typed {n} characters into input[name={word}]'],
  ['Scrolling', 'scrolled {n}0 px down'],
  ['Taking screenshot', 'saved screenshot-{n}.png'],
  ['Extracting text', 'extracted {n}0 characters from main'],
  ['Filling form', 'filled {n} fields of form#{word}'],
  ['Submitting form', 'submitted form#{word}, HTTP 200'],
  ['Reading table', 'read {n} rows of table.{word}'],
  ['Hovering menu', "opened menu '{word}'"],
  ['Closing dialog', "dismissed dialog '{word}'"],
];
const WORDS = ['search', 'login', 'results', 'checkout', 'settings', 'profile', 'cart', 'pricing'];
const MAX_STEPS = 1000;

/** One of 0..n-1 from a uniform: exact in every language (u * n is one rounding). */
function pick(u, n) {
  return Math.min(n - 1, Math.floor(u * n));
}

/** Step `number` (1-based): its label, its log line, the uniform `failRate` is compared with. */
function step(jobId, attempt, number, url) {
  const stream = new portable.Stream(0, jobId, attempt);
  const at = portable.AGENT_DRAWS * (number - 1);
  const [label, detail] = number === 1 ? ACTIONS[0] : ACTIONS[1 + pick(stream.at(at), 11)];
  const values = {
    url,
    ms: 80 + pick(stream.at(at + 1), 821),
    n: 2 + pick(stream.at(at + 2), 39),
    word: WORDS[pick(stream.at(at + 3), WORDS.length)],
  };
  const line = detail.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
  return [label, line, stream.at(at + 4)];
}

const agent = {
  batchable: false,
  fields: [
    field('durationSeconds', 'number', { default: 10.0, low: 0, high: 3600 }),
    field('stepIntervalSeconds', 'number', { default: 1.0, low: 0.01, high: 60 }),
    field('url', 'string', { default: 'https://example.com/', maxLength: 2000 }),
    field('failAtStep', 'integer', { low: 1, high: MAX_STEPS }),
    field('failAttempts', 'integer', { low: 0, high: MAX_ATTEMPT }),
    field('failRate', 'number', { default: 0.0, low: 0, high: 1 }),
  ],
  check(payload) {
    const s = check(payload, this.fields, 'agent');
    // Python's `or`: a duration or interval of 0 reads as its default.
    const duration = s.durationSeconds || 10.0;
    const interval = s.stepIntervalSeconds || 1.0;
    if (duration < interval) {
      throw new PayloadError('durationSeconds', 'must be at least one step interval');
    }
    if (duration / interval > MAX_STEPS) {
      const steps = roundEven(duration / interval);
      throw new PayloadError('stepIntervalSeconds', `makes ${steps} steps; at most ${MAX_STEPS}`);
    }
    return s;
  },
  async run(job, ctx = {}) {
    const s = this.check(job.payload ?? {});
    const wait = ctx.sleep ?? sleepMs;
    const steps = Math.max(1, roundEven(s.durationSeconds / s.stepIntervalSeconds));
    const failsNow = s.failAttempts === undefined || job.attempt <= s.failAttempts;
    const started = Date.now();
    const done = [];
    for (let number = 1; number <= steps; number += 1) {
      await wait(started + number * s.stepIntervalSeconds * 1000 - Date.now());
      // Same job and attempt, same story: a rerun shows the same steps.
      const [label, line, chance] = step(job.jobId, job.attempt, number, s.url);
      if (failsNow && (number === s.failAtStep || chance < s.failRate)) {
        throw new AgentFailure(`step ${number} (${label}) failed: element not found`);
      }
      const percent = (number * 100) / steps;
      await ctx.progress?.(percent, label, `step ${number}/${steps}: ${label}: ${line}`);
      done.push(label);
    }
    return { url: s.url, steps, actions: done, seconds: round3((Date.now() - started) / 1000) };
  },
};

const KINDS = { sleep, index, synthetic, agent };

module.exports = {
  ACTIONS,
  AgentFailure,
  InjectedFailure,
  KINDS,
  MAX_DOC_BYTES,
  MAX_SERVICE_MS,
  PayloadError,
  PermanentError,
  SyntheticFailure,
  WORDS,
  isPermanent,
  pick,
  round3,
  roundEven,
  step,
};
