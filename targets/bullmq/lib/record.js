'use strict';
/**
 * What lab's one counting script (lab/runtime/lua/record.lua) takes for a batch of ended jobs,
 * built in JavaScript exactly as Python builds it: the twins of `Keys` (lab/runtime/keys.py),
 * `timing` and `RunTimings` (lab/runtime/latency.py), `batch_of` (lab/targets/shim.py) and
 * `Counting._record` (lab/runtime/stores/counting.py). test/record-vectors.json holds Python's
 * answers for sample batches (scripts/record_vectors.py writes it); the test holds these to them
 * key for key and byte for byte. Pure: no I/O.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 buckets per power of two
const WINDOW_S = 10;
// Prometheus' coarse buckets in µs (latency.PROMETHEUS_LE_US).
const PROMETHEUS_LE_US = [
  1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
  10000000, 25000000, 50000000, 100000000, 250000000, 600000000, 1800000000, 3600000000,
];

/** Every Redis key name the shim uses, as lab/runtime/keys.py makes them. */
class Keys {
  constructor(prefix) {
    this.prefix = prefix;
  }
  get activeRun() { return `${this.prefix}:active-run`; }
  get events() { return `${this.prefix}:events`; }
  get totals() { return `${this.prefix}:totals`; }
  get latency() { return `${this.prefix}:latency`; }
  get workers() { return `${this.prefix}:workers`; }
  get scripts() { return `${this.prefix}:scripts`; }
  history(bucket = '%d') { return `${this.prefix}:history:${bucket}`; }
  applied(callId) { return `${this.prefix}:applied:${callId}`; }
  worker(id) { return `${this.prefix}:worker:${id}`; }
  job(id) { return `${this.prefix}:job:${id}`; }
  run(id) { return `${this.prefix}:run:${id}`; }
  /** The run's keys the counting script takes, in its order (`Keys.run_keys`). */
  runKeys(id) {
    const run = this.run(id);
    return [run, `${run}:done`, `${run}:failed`, `${run}:rate:p:%d`, `${run}:timeline`,
      `${run}:latency`, `${run}:owned`, `${run}:again`];
  }
}

/** An int's bit length (Python's int.bit_length), exact below 2^53. */
function bitLength(n) {
  if (n < 2 ** 31) return 32 - Math.clz32(n);
  return 32 + (32 - Math.clz32(Math.floor(n / 2 ** 32)));
}

/** The log-linear bucket of a duration in µs (latency.bucket_of, in µs). */
function bucketOf(us) {
  if (us < SUB) return us;
  const shift = bitLength(us) - SUB_BITS - 1;
  return (shift + 1) * SUB + (Math.floor(us / 2 ** shift) - SUB);
}

/** Python's bisect_left. */
function bisectLeft(sorted, x) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A job's nine numbers as the script takes them (latency.timing). */
function timing(created, released, started, finished, served = 0) {
  const out = new Array(9).fill(-1);
  const spans = [[released, started], [started, served || finished], [created, finished]];
  spans.forEach(([start, end], m) => {
    if (start) {
      let us = Math.trunc(end * 1000 - start * 1000);
      us = us > 0 ? us : 0;
      out[m] = bucketOf(us);
      out[3 + m] = bisectLeft(PROMETHEUS_LE_US, us);
      out[6 + m] = us;
    }
  });
  return out;
}

/** One run's ended jobs of a batch (latency.RunTimings): jobs are
 * [seq, kind index, created, released, started, served, ended]. */
class RunTimings {
  constructor(window, kinds = [], finished = 0, jobs = []) {
    Object.assign(this, { window, kinds, finished, jobs });
  }

  detail() {
    return {
      window: this.window,
      kinds: this.kinds,
      jobs: this.jobs.map((j) => [j[0], j[1], ...timing(j[2], j[3], j[4], j[6], j[5])]),
    };
  }

  addedUp() {
    const byKind = new Map(); // kind → [queue waits, services, ends to end] in µs
    for (const [, k, c, r, s, v, ended] of this.jobs) {
      const endUs = ended * 1000;
      if (!byKind.has(k)) byKind.set(k, [[], [], []]);
      const lists = byKind.get(k);
      if (r) lists[0].push(Math.trunc(s * 1000 - r * 1000));
      lists[1].push(Math.trunc((v ? v * 1000 : endUs) - s * 1000));
      if (c) lists[2].push(Math.trunc(endUs - c * 1000));
    }
    const fine = new Map();
    const coarse = new Map();
    const sums = new Map();
    const add = (map, key, n) => map.set(key.join(','), [key, (map.get(key.join(','))?.[1] ?? 0) + n]);
    for (const [kind, lists] of byKind) {
      lists.forEach((values, index) => {
        if (!values.length) return;
        const m = index + 1;
        const counted = new Map(); // each distinct duration once, in first-seen order (Counter)
        for (const us of values) counted.set(us, (counted.get(us) ?? 0) + 1);
        let total = 0;
        for (const [raw, n] of counted) {
          const us = raw > 0 ? raw : 0;
          add(fine, [m, kind, bucketOf(us)], n);
          add(coarse, [m, kind, bisectLeft(PROMETHEUS_LE_US, us)], n);
          total += us * n;
        }
        sums.set(`${m},${kind}`, [[m, kind], total]);
      });
    }
    const listed = (map) => [...map.values()].map(([key, n]) => [...key, n]);
    return {
      window: this.window,
      kinds: this.kinds,
      agg: { fine: listed(fine), coarse: listed(coarse), sums: listed(sums) },
    };
  }
}

/**
 * What one counting call takes for `ended` (each {runId, seq, kind, outcome, createdMs,
 * releasedMs, startedMs, endedMs}, and `servedMs` when its service ended before it did):
 * outcomes, timings and the counts of negative durations, per run, as Maps in first-seen order
 * (shim.batch_of).
 */
function batchOf(ended, keys) {
  const outcomes = new Map();
  const timings = new Map();
  const counts = new Map();
  const last = Math.max(...ended.map((e) => e.endedMs));
  const window = Math.floor(Math.floor(last / 1000) / WINDOW_S);
  for (const e of ended) {
    if (!outcomes.has(e.runId)) outcomes.set(e.runId, [[], []]);
    outcomes.get(e.runId)[e.outcome === 'done' ? 0 : 1].push(e.seq);
    if (!timings.has(e.runId)) timings.set(e.runId, new RunTimings(window, [], last));
    const run = timings.get(e.runId);
    if (!run.kinds.includes(e.kind)) run.kinds.push(e.kind);
    const kind = run.kinds.indexOf(e.kind) + 1;
    run.jobs.push([e.seq, kind, e.createdMs, e.releasedMs, e.startedMs, e.servedMs ?? e.endedMs,
      e.endedMs]);
    const negative = (e.startedMs - e.releasedMs < 0) + (e.endedMs - e.createdMs < 0);
    if (negative) {
      if (!counts.has(e.runId)) counts.set(e.runId, new Map());
      counts.get(e.runId).set(e.seq, [{ key: keys.run(e.runId), field: 'negativeDurations', n: negative }]);
    }
  }
  return { outcomes, timings, counts };
}

/**
 * The KEYS and ARGV of one record.lua call (Counting._record): `mode` 'agg' sends each run's
 * latency added up, 'detail' job by job (what the script asks for when a job was seen before).
 */
function recordCall(keys, settings, batch, callId, mode = 'agg') {
  const runKeys = [];
  const extraKeys = new Map(); // a middleware key → its 1-based index after the runs' keys
  const entries = [];
  for (const [runId, [done, failed]] of batch.outcomes) {
    runKeys.push(...keys.runKeys(runId));
    const ops = [];
    for (const [seq, found] of batch.counts.get(runId) ?? []) {
      if (!found.length) continue;
      ops.push([seq, found.map((c) => {
        if (!extraKeys.has(c.key)) extraKeys.set(c.key, extraKeys.size + 1);
        return [extraKeys.get(c.key), c.field, c.n];
      })]);
    }
    const run = batch.timings.get(runId);
    const timed = run === undefined ? {} : mode === 'agg' ? run.addedUp() : run.detail();
    entries.push([runId, done, failed, ops, timed]);
  }
  return {
    keys: [keys.activeRun, keys.events, keys.totals, keys.history(), keys.latency,
      keys.applied(callId || '-'), ...runKeys, ...extraKeys.keys()],
    args: [String(settings.eventStreamLen), JSON.stringify(entries), String(settings.historyS),
      callId],
  };
}

/** (runId, seq) of a run's job id `<runId>-<seq>`, or null (shim.job_of). */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MAX_SEQ = 10_000_000;
function jobOf(jobId) {
  if (typeof jobId !== 'string') return null;
  const dash = jobId.lastIndexOf('-');
  const runId = jobId.slice(0, dash);
  const seq = jobId.slice(dash + 1);
  if (dash < 1 || !/^[0-9]{1,8}$/.test(seq) || !RUN_ID.test(runId)) return null;
  return Number(seq) < MAX_SEQ ? [runId, Number(seq)] : null;
}

module.exports = {
  Keys, PROMETHEUS_LE_US, RunTimings, WINDOW_S, batchOf, bucketOf, jobOf, recordCall, timing,
};
