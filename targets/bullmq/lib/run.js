'use strict';
/**
 * lab's kinds as a BullMQ processor: the twin of lab/targets/tasks.py's `run_attempt`. A job's
 * data is what lab/targets/bullmq.py submits:
 *
 *   { message: lab's job message ({jobId, runId, seq, kind, payload, createdAt}),
 *     lab: { createdAt, kind, ladder: [ms, ...], attemptBase, single } }
 *
 * The attempt is BullMQ's (`attemptsMade + 1`, after `attemptBase` earlier attempts of a single
 * job retried by hand), so a kind draws by (seed, seq, attempt) as on lab's own worker. The
 * document is written by the job's id with `index` (a second write is its `_version` 2). A
 * failure the kind says is permanent becomes BullMQ's `UnrecoverableError` (no retry); any
 * other is thrown as it is, and BullMQ retries it after the step of lab's ladder that
 * `backoffStrategy` gives (the job's `backoff` is `{type: 'lab'}`). A single job reports each
 * step as the job's BullMQ progress and stops at its next step once lab's record of it asks
 * for a cancel.
 */

const { UnrecoverableError } = require('bullmq');
const { KINDS, isPermanent } = require('./kinds');
const { served } = require('./shim');

class Cancelled extends UnrecoverableError {
  constructor() {
    super('cancelled: a cancel was requested');
    this.name = 'UnrecoverableError'; // as BullMQ and the shim tell one: by name
  }
}

/** lab's ladder as BullMQ's custom backoff: the delay before attempt `attemptsMade + 1`. */
function backoffStrategy(attemptsMade, type, _error, job) {
  const ladder = job?.data?.lab?.ladder;
  if (type !== 'lab' || !Array.isArray(ladder) || !ladder.length) return 1000;
  return ladder[Math.min(Math.max(0, attemptsMade - 1), ladder.length - 1)];
}

/** The attempt of lab's job that BullMQ runs now. */
function attemptOf(job) {
  const base = Number(job.data?.lab?.attemptBase) || 0;
  return base + (job.attemptsMade ?? 0) + 1;
}

/** The job's document (lab/runtime/batch.py's `document`). */
function document(job, result, worker, startedMs) {
  return {
    jobId: job.jobId, runId: job.runId ?? null, seq: job.seq ?? null, kind: job.kind,
    attempt: job.attempt, createdAt: job.createdAt, releasedAt: job.dueAt || job.createdAt,
    startedAt: Math.trunc(startedMs), processedAt: Date.now(), worker, result,
  };
}

/**
 * The processor: `store` writes documents (lib/elastic.js), `cancelled(jobId)` answers whether
 * lab's record asks a single job to stop.
 */
function processor({ store, workerId, cancelled = async () => false }) {
  return async function runLabJob(job) {
    const message = job.data?.message;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      throw new UnrecoverableError('not a lab job: its data has no message');
    }
    const labJob = { ...message, attempt: attemptOf(job) };
    const kind = Object.hasOwn(KINDS, labJob.kind) ? KINDS[labJob.kind] : undefined;
    if (kind === undefined) throw new UnrecoverableError(`unknown kind ${String(labJob.kind)}`);
    const single = Boolean(job.data?.lab?.single);
    const ctx = {};
    if (single) {
      if (await cancelled(job.id)) throw new Cancelled();
      ctx.progress = async (percent, step, line) => {
        if (await cancelled(job.id)) throw new Cancelled();
        await job.updateProgress({ percent, step, message: line, attempt: labJob.attempt });
      };
    }
    const started = Date.now();
    let result;
    try {
      result = await kind.run(labJob, ctx);
      served(job); // as lab's own worker counts a kind run one by one: its handler's time
    } catch (error) {
      if (isPermanent(error)) throw new UnrecoverableError(`${error.name}: ${error.message}`);
      throw error;
    }
    await store.upsert(document(labJob, result, workerId, started));
    // A single job's result is its record's; a run's stays in its document, not in Redis.
    return single ? result : null;
  };
}

module.exports = { Cancelled, attemptOf, backoffStrategy, document, processor };
