#!/usr/bin/env node
'use strict';
/**
 * lab's BullMQ worker: `node targets/bullmq/worker.js --concurrency N`, what `lab worker
 * --target bullmq` becomes (so `lab up --target bullmq --workers 2` supervises it: its log, its
 * restarts, a freeze or a kill hit this one Node process, which holds its N jobs).
 *
 * One BullMQ `Worker` on `<LAB_QUEUE>.bullmq` runs lab's kinds (lib/run.js) with N slots on
 * Node's one thread, measured by lab's shim (lib/shim.js) exactly as a user's worker would be.
 * A job's lock lasts LAB_BULLMQ_LOCK_MS and is renewed every half of it; every worker checks for
 * stalled jobs (a lock that lapsed: its worker frozen, killed or blocked) as often, and BullMQ
 * runs such a job again, once (`maxStalledCount` 1; a second stall fails it). SIGTERM finishes
 * the jobs at hand, counts them and leaves.
 */

const IORedis = require('ioredis');
const { Worker } = require('bullmq');

const { Elastic } = require('./lib/elastic');
const { backoffStrategy, processor } = require('./lib/run');
const { Keys } = require('./lib/record');
const settingsOf = require('./lib/settings');
const { measured, shim } = require('./lib/shim');

function concurrencyOf(argv, fallback) {
  const at = argv.indexOf('--concurrency');
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new settingsOf.SettingError('--concurrency takes a whole number from 1 to 1000');
  }
  return value;
}

async function ready(store) {
  // The index with lab's mappings before any job: else Elasticsearch would guess them.
  for (let waited = 0; ; waited += 1) {
    try {
      return await store.ensureIndex();
    } catch (error) {
      if (waited % 10 === 0) console.warn(`lab bullmq worker: waiting for Elasticsearch: ${error.message}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function main() {
  let settings;
  let concurrency;
  try {
    settings = settingsOf.load();
    concurrency = concurrencyOf(process.argv.slice(2), settings.concurrency);
  } catch (error) {
    console.error(`lab bullmq worker: ${error.message}`);
    return 2;
  }
  const reporter = shim().start(); // in /status from now on, before its first job
  const keys = new Keys(settings.prefix);
  const store = new Elastic(settings);
  await ready(store);
  // A single job stops once lab's record asks it to, or is gone (cancelled while queued, or
  // deleted); lab's record is only read here, the API's relay writes it.
  const cancelled = async (jobId) => {
    const [state, cancel] = await reporter.redis.hmget(keys.job(jobId), 'state', 'cancelRequested');
    return cancel === '1' || state === null || state === 'cancelled';
  };
  const run = processor({ store, workerId: reporter.workerId, cancelled });
  const connection = new IORedis(settings.redisUrl, { maxRetriesPerRequest: null });
  const lockDuration = settings.bullmqLockMs;
  const worker = new Worker(settingsOf.queueName(settings), measured(run), {
    name: reporter.workerId, // BullMQ's `processedBy` of each job: the worker /status shows
    connection, concurrency, lockDuration, stalledInterval: Math.max(500, lockDuration / 2),
    maxStalledCount: 1, settings: { backoffStrategy },
  });
  worker.on('error', (error) => console.warn(`lab bullmq worker: ${error.message}`));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await worker.close();
    await reporter.close();
    await connection.quit().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`lab bullmq worker ${reporter.workerId}: ${settingsOf.queueName(settings)}, ` +
    `concurrency ${concurrency}, lock ${lockDuration} ms`);
  return null;
}

main().then((code) => {
  if (code !== null) process.exit(code);
}, (error) => {
  console.error(`lab bullmq worker: ${error.stack ?? error}`);
  process.exit(1);
});
