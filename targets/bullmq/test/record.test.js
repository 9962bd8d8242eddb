'use strict';
// The Node shim hands lab's counting script what lab's Python hands it for the same batch (the
// vectors are Python's: scripts/record_vectors.py), names lab's keys as lab/runtime/keys.py
// does, reads the settings' defaults as lab/config.py has them and heartbeats only fields that
// lab/runtime/beats.py names.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const record = require('../lib/record');
const settings = require('../lib/settings');
const { Shim, outcomeOf } = require('../lib/shim');

const VECTORS = JSON.parse(fs.readFileSync(path.join(__dirname, 'record-vectors.json'), 'utf8'));

test('a batch becomes the KEYS and ARGV Python gives record.lua, byte for byte', () => {
  for (const batch of VECTORS.batches) {
    const keys = new record.Keys(batch.prefix);
    const made = record.batchOf(batch.ended, keys);
    const options = { eventStreamLen: batch.eventStreamLen, historyS: batch.historyS };
    for (const mode of ['agg', 'detail']) {
      const call = record.recordCall(keys, options, made, batch.callId, mode);
      assert.deepEqual(call.keys, batch[mode].keys, `${batch.prefix} ${mode} keys`);
      assert.equal(call.args.length, batch[mode].args.length);
      call.args.forEach((arg, i) => assert.equal(arg, batch[mode].args[i], `${mode} ARGV[${i + 1}]`));
    }
  }
  // The order recordCall builds its fixed KEYS and ARGV in is the script's (lab/runtime/scripts.py).
  assert.deepEqual(VECTORS.recordScript.keys, ['active', 'events', 'totals', 'history', 'latency', 'applied']);
  assert.deepEqual(VECTORS.recordScript.args, ['maxlen', 'entries', 'history_s', 'call']);
});

test('keys, buckets and job ids are named and read as Python names and reads them', () => {
  const keys = new record.Keys(VECTORS.keys.prefix);
  assert.deepEqual(keys.runKeys('r-1'), VECTORS.keys.runKeys);
  assert.equal(keys.scripts, VECTORS.keys.scripts);
  assert.equal(keys.workers, VECTORS.keys.workers);
  assert.equal(keys.worker('w-1'), VECTORS.keys.worker);
  assert.equal(keys.job('j-1'), VECTORS.keys.job);
  assert.equal(keys.history(), VECTORS.keys.history);
  assert.equal(keys.applied('c'), VECTORS.keys.applied);
  assert.deepEqual(record.PROMETHEUS_LE_US, VECTORS.prometheusLeUs);
  for (const [jobId, expected] of VECTORS.jobOf) {
    assert.deepEqual(record.jobOf(jobId), expected, jobId);
  }
  // Past 2^32 µs (71 minutes) a bucket still comes from exact integer arithmetic.
  assert.equal(record.bucketOf(2 ** 32), (32 - 7 + 1) * 128);
  assert.equal(record.bucketOf(2 ** 33 + 2 ** 27), (33 - 7 + 1) * 128 + 2);
});

test("the settings' defaults are lab's", () => {
  const loaded = settings.load({});
  for (const [name, value] of Object.entries(VECTORS.settings)) {
    assert.equal(settings.DEFAULTS[name], value, name);
  }
  assert.deepEqual(loaded.retryLadderMs, [1000, 5000, 30000, 120000, 600000]);
  assert.equal(settings.queueName(loaded), 'lab.jobs.bullmq');
  assert.throws(() => settings.load({ LAB_HEARTBEAT_S: 'soon' }), settings.SettingError);
  assert.ok(fs.existsSync(path.join(settings.LUA_DIR, 'record.lua')));
});

test('the heartbeat writes only the fields lab/runtime/beats.py names', () => {
  const shim = new Shim({ settings: settings.load({}), redis: {}, workerId: 'w-1' });
  const beat = shim.beat();
  for (const name of Object.keys(beat)) assert.ok(VECTORS.workerBeat.includes(name), name);
  assert.equal(beat.id, 'w-1');
  assert.equal(beat.pid, process.pid);
});

test('an attempt ends as BullMQ will treat it', () => {
  const job = (attemptsMade, attempts, extra = {}) => ({ attemptsMade, opts: { attempts }, ...extra });
  const failure = new Error('boom');
  assert.equal(outcomeOf(job(0, 3), failure), 'retry');
  assert.equal(outcomeOf(job(2, 3), failure), 'failed');
  assert.equal(outcomeOf(job(0, 0), failure), 'failed'); // no attempts: BullMQ's one try
  assert.equal(outcomeOf(job(0, 3, { discarded: true }), failure), 'failed');
  const unrecoverable = Object.assign(new Error('no'), { name: 'UnrecoverableError' });
  assert.equal(outcomeOf(job(0, 3), unrecoverable), 'failed');
  const delayed = Object.assign(new Error('later'), { name: 'DelayedError' });
  assert.equal(outcomeOf(job(2, 3), delayed), 'retry');
});
