'use strict';
/**
 * lab's shim for a BullMQ worker: the one thing a user's Node app adds to be measured.
 *
 *   const { measured } = require('lab-bullmq/lib/shim');
 *   new Worker(queue, measured(processor), { connection });
 *
 * `measured` wraps a processor: for every job whose id is a lab job id (`<runId>-<seq>`) it
 * tells lab the attempt started, and how it ended (`done`; `retry` while BullMQ will run it
 * again; `failed` when it will not), counted with lab's own counting script
 * (lab/runtime/lua/record.lua, by the SHA lab publishes under `<LAB_PREFIX>:scripts`), so
 * exactly-once counts, latency histograms and the delivery verdict come from the same code as
 * for every other target. A job's end is counted before the processor's promise settles
 * (`durable`, the default), so BullMQ never records an end lab has not counted: the ends of one
 * turn of Node's event loop go in one call at its end (at most 500 jobs a call), and the calls
 * of several turns run at once, so a job waits one round trip, not a queue of them. With
 * `durable: false` ends are counted every 50 ms instead. The shim also measures this host's
 * offset from Redis' clock (`TIME`) and heartbeats the worker into lab's `/status`.
 *
 * Settings come from the `LAB_*` environment (lib/settings.js). A job lab did not send (its id
 * is not a lab job id) runs untouched.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Keys, batchOf, jobOf, recordCall } = require('./record');
const settingsOf = require('./settings');

const FLUSH_MS = 50;
const MAX_BATCH = 500;
const OFFSET_EVERY_MS = 30000;
// BullMQ's errors that move a job elsewhere without ending it (worker.ts handleFailed).
const NOT_ENDED = new Set(['DelayedError', 'WaitingChildrenError', 'RateLimitError']);
const SINGLE = /^job-[A-Za-z0-9_.-]{1,124}$/; // a single job's id (lab/runtime/jobs.py new_job_id)

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

class Shim {
  /**
   * @param {object} [options]
   * @param {object} [options.settings] lib/settings.js's, from process.env by default
   * @param {object} [options.redis] an ioredis client (made from LAB_REDIS_URL by default)
   * @param {string} [options.workerId] how /status names this worker
   */
  constructor({ settings, redis, workerId } = {}) {
    this.settings = settings ?? settingsOf.load();
    this.keys = new Keys(this.settings.prefix);
    this.redis = redis ?? makeRedis(this.settings);
    const tag = crypto.randomBytes(2).toString('hex');
    this.workerId = workerId ?? `${os.hostname()}-${process.pid}-${tag}`;
    this.offsetMs = 0;
    this.ended_ = [];
    this.running = new Set();
    this.totals = { processed: 0, failed: 0 };
    this.startedMs = Date.now();
    this.sha = null;
    this.counting = new Set(); // the counting calls on their way
    this.next = null; // the call the ends of this turn of the event loop go in
    this.timer = null;
    this.beatAt = 0;
    this.offsetAt = -Infinity;
  }

  // --- what a framework's hooks call -------------------------------------------------------
  started(jobId, attempt, kind, createdMs = 0, releasedMs = 0) {
    this.start();
    const now = this.nowMs();
    const begun = {
      jobId, attempt: Math.max(1, attempt), kind, createdMs: createdMs || now,
      releasedMs: releasedMs || createdMs || now, startedMs: now, startedMono: performance.now(),
    };
    this.running.add(begun);
    return begun;
  }

  /** `begun` ended; with `durable`, resolves once its end is counted (a retry: at once).
   * `servedMono` (performance.now()) ends its service time earlier than its end: when a kind
   * of lab's returned, before its document was written, as lab's own worker counts it. */
  ended(begun, outcome, durable = false, servedMono = 0) {
    const endedMs = begun.startedMs + (performance.now() - begun.startedMono);
    const servedMs = servedMono ? begun.startedMs + (servedMono - begun.startedMono) : endedMs;
    this.running.delete(begun);
    const found = outcome === 'retry' ? null : jobOf(begun.jobId);
    if (found === null) return Promise.resolve(0);
    this.ended_.push({
      runId: found[0], seq: found[1], kind: begun.kind, outcome, createdMs: begun.createdMs,
      releasedMs: begun.releasedMs, startedMs: begun.startedMs, servedMs, endedMs,
    });
    this.totals[outcome === 'done' ? 'processed' : 'failed'] += 1;
    if (durable || this.ended_.length >= MAX_BATCH) return this.soon();
    return Promise.resolve(0);
  }

  /** A job lab counts nothing of (not a run's), held while `work` runs: in /status as one the
   * worker runs, and by its id when it is a single job of lab's (`job-...`). */
  async holding(jobId, work) {
    this.start();
    const held = { jobId };
    this.running.add(held);
    try {
      return await work;
    } finally {
      this.running.delete(held);
    }
  }

  nowMs() {
    return Date.now() + this.offsetMs;
  }

  // --- counting ------------------------------------------------------------------------------
  /** What ended in this turn of the event loop, counted in one call at its end (a job that
   * waits for its count waits for one round trip; calls of several turns run at once). */
  soon() {
    this.next ??= new Promise((resolve) => {
      setImmediate(() => {
        this.next = null;
        resolve(this.flushNow());
      });
    });
    return this.next;
  }

  /** Count what has ended, now (at most MAX_BATCH jobs a call); resolves to how many. */
  flushNow() {
    const calls = [];
    while (this.ended_.length) calls.push(this.count(this.ended_.splice(0, MAX_BATCH)));
    if (!calls.length) return Promise.resolve(0);
    const all = Promise.all(calls).then((counted) => counted.reduce((a, b) => a + b, 0));
    this.counting.add(all);
    all.finally(() => this.counting.delete(all));
    return all;
  }

  /** Count what ended before this call, and wait for the counts already on their way: when it
   * resolves, every job that ended before it is counted (or given back, Redis refusing it five
   * times, to the next flush). */
  async flush() {
    const earlier = [...this.counting];
    const counted = await this.flushNow();
    await Promise.all(earlier);
    return counted;
  }

  async count(ended) {
    const batch = batchOf(ended, this.keys);
    const callId = crypto.randomBytes(16).toString('hex');
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      try {
        // Added up first; the script answers -1 when a job was counted before: job by job.
        const answer = await this.record(recordCall(this.keys, this.settings, batch, callId));
        if (Number(answer[0]) < 0) {
          await this.record(recordCall(this.keys, this.settings, batch, callId, 'detail'));
        }
        return ended.length;
      } catch (error) {
        console.warn(`lab shim: counting ${ended.length} jobs failed (${error.message}); try ${attempt}`);
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
    this.ended_.unshift(...ended); // given back: counted at the next flush
    return 0;
  }

  /** record.lua by the SHA lab published; its source from LAB_LUA_DIR when Redis lost it. */
  async record({ keys, args }) {
    if (this.sha === null) this.sha = await this.redis.hget(this.keys.scripts, 'record');
    if (this.sha === null) await this.load();
    try {
      return await this.redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String(error.message).startsWith('NOSCRIPT')) throw error;
      await this.load();
      return this.redis.evalsha(this.sha, keys.length, ...keys, ...args);
    }
  }

  async load() {
    const dir = this.settings.luaDir;
    let source;
    try {
      source = ['common', 'record']
        .map((name) => fs.readFileSync(path.join(dir, `${name}.lua`), 'utf8')).join('\n');
    } catch {
      throw new Error(`lab's counting script is not in Redis and ${dir} does not hold it: ` +
        'set LAB_LUA_DIR to lab/runtime/lua of the lab you run, or start its API first');
    }
    this.sha = await this.redis.script('LOAD', source);
  }

  // --- the timer -----------------------------------------------------------------------------
  /** Flush, heartbeat and measure the clock from now on (every call of `started` does too). */
  start() {
    if (this.timer !== null) return this;
    this.timer = setInterval(() => this.tick(), FLUSH_MS);
    this.timer.unref();
    return this;
  }

  async tick() {
    if (this.ticking) return;
    this.ticking = true;
    try {
      if (performance.now() - this.offsetAt >= OFFSET_EVERY_MS) await this.measureOffset();
      await this.flush();
      if (performance.now() - this.beatAt >= this.settings.heartbeatS * 1000) {
        await this.heartbeat();
        this.beatAt = performance.now();
      }
    } catch (error) {
      console.warn(`lab shim: ${error.message}`);
    } finally {
      this.ticking = false;
    }
  }

  async measureOffset() {
    const before = Date.now();
    const [seconds, micros] = await this.redis.time();
    const after = Date.now();
    this.offsetMs = Number(seconds) * 1000 + Number(micros) / 1000 - (before + after) / 2;
    this.offsetAt = performance.now();
  }

  /** The worker's heartbeat: lab/runtime/beats.py's WORKER fields, as its `encode` writes. */
  beat() {
    const cpu = process.cpuUsage();
    return {
      id: this.workerId, pid: process.pid, host: os.hostname(), waitingFor: '',
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
      rssBytes: process.memoryUsage.rss(), processed: this.totals.processed,
      failed: this.totals.failed, deadLettered: this.totals.failed, inFlight: this.running.size,
      running: this.running.size, waitingSinceMs: 0, paused: '',
      jobs: [...this.running].map((r) => r.jobId).filter((id) => SINGLE.test(id)).sort().join(','),
      startedMs: this.startedMs, seenMs: Date.now(),
    };
  }

  async heartbeat() {
    const key = this.keys.worker(this.workerId);
    await this.redis.multi()
      .hset(key, this.beat())
      .pexpire(key, Math.round(this.settings.heartbeatTtlS * 1000))
      .sadd(this.keys.workers, this.workerId)
      .exec();
  }

  /** Stop the timer, count what is left and leave /status. */
  async close() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    try {
      await this.flush();
      await this.redis.multi().del(this.keys.worker(this.workerId))
        .srem(this.keys.workers, this.workerId).exec();
    } catch (error) {
      console.warn(`lab shim: at exit: ${error.message}`);
    }
  }
}

function makeRedis(settings) {
  const Redis = require('ioredis');
  const ms = Math.round(settings.redisTimeoutS * 1000);
  return new Redis(settings.redisUrl, {
    connectTimeout: ms, commandTimeout: ms, maxRetriesPerRequest: 1, lazyConnect: false,
  });
}

/** How attempt `job` ended when its processor threw `error`, as BullMQ will treat it. */
function outcomeOf(job, error) {
  if (NOT_ENDED.has(error?.name)) return 'retry';
  if (error?.name === 'UnrecoverableError' || job.discarded) return 'failed';
  return (job.attemptsMade ?? 0) + 1 < (job.opts?.attempts ?? 0) ? 'retry' : 'failed';
}

/** When lab released the job, and its kind: what lab's submit puts in `data.lab`. */
function labOf(job) {
  const lab = job.data?.lab;
  return lab !== null && typeof lab === 'object' ? lab : {};
}

let made = null;
const servedAt = new WeakMap();

/** The processor's own work on `job` is done now (what is left, writing its effect, is not
 * service time): lab's processor calls it when a kind returns. */
function served(job) {
  servedAt.set(job, performance.now());
}

/** This process's shim, made on first use from the `LAB_*` environment. */
function shim() {
  made ??= new Shim();
  return made;
}

/**
 * `processor` measured by lab. Options: `shim` (default: this process's), `durable` (default
 * true: a job's end is counted before BullMQ records it; false: in the next batch, cheaper,
 * and a kill -9 then loses the counts of the jobs that ended in its last 50 ms).
 */
function measured(processor, { shim: given, durable = true } = {}) {
  return async function labMeasured(job, token) {
    const reporter = given ?? shim();
    if (jobOf(job.id) === null) return reporter.holding(job.id, processor(job, token));
    const lab = labOf(job);
    const created = Number(lab.createdAt) || 0;
    // BullMQ keeps no record of when a retry became due: a retried attempt's queue wait
    // counts from the job's first release (docs/guides/your-pipeline.md, "bullmq").
    const begun = reporter.started(job.id, (job.attemptsMade ?? 0) + 1,
      String(lab.kind ?? 'task'), created, created);
    let result;
    try {
      result = await processor(job, token);
    } catch (error) {
      await reporter.ended(begun, outcomeOf(job, error), durable);
      throw error;
    }
    await reporter.ended(begun, 'done', durable, servedAt.get(job));
    return result;
  };
}

module.exports = { FLUSH_MS, MAX_BATCH, Shim, labOf, measured, outcomeOf, served, shim };
